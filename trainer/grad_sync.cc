#include "trainer/grad_sync.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace tilestage::trainer {

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<AllreduceMode> ParseAllreduceMode(const std::string& name) {
  if (name == "overlap") return AllreduceMode::kOverlap;
  if (name == "blocking") return AllreduceMode::kBlocking;
  if (name == "auto") return AllreduceMode::kAuto;
  return InvalidArgument("--allreduce ", name, ": expected auto, overlap or blocking");
}

const char* AllreduceModeName(AllreduceMode mode) {
  switch (mode) {
    case AllreduceMode::kOverlap:
      return "overlap";
    case AllreduceMode::kBlocking:
      return "blocking";
    case AllreduceMode::kAuto:
      return "auto";
  }
  return "?";
}

GradientSync::GradientSync(Communicator* comm, ParamStore* store, AllreduceMode mode,
                           int64_t bucket_floats)
    : comm_(comm),
      store_(store),
      mode_(mode),
      active_(mode == AllreduceMode::kAuto ? AllreduceMode::kOverlap : mode) {
  const int64_t total = store->total();
  for (int64_t end = total; end > 0; end -= bucket_floats) {
    buckets_.push_back({std::max<int64_t>(0, end - bucket_floats), end});
  }
}

Status GradientSync::BeginStep() {
  for (Bucket& b : buckets_) b = {b.begin, b.end, -1, false};
  next_bucket_ = 0;
  error_ = Status::Ok();
  comm_ms_ = exposed_ms_ = 0.0;
  const double now = NowMs();
  ++steps_begun_;  // the step beginning now
  if (mode_ == AllreduceMode::kAuto && comm_->size() > 1 && choice_.empty()) {
    const int64_t previous = steps_begun_ - 1;
    if (previous >= 2) {
      trial_ms_[active_ == AllreduceMode::kOverlap ? 0 : 1].push_back(now - last_begin_ms_);
    }
    if (int(trial_ms_[0].size()) == kTrialStepsPerMode &&
        int(trial_ms_[1].size()) == kTrialStepsPerMode) {
      TS_RETURN_IF_ERROR(ChooseMode());
    } else if (steps_begun_ >= 2) {
      active_ = steps_begun_ % 2 == 0 ? AllreduceMode::kBlocking : AllreduceMode::kOverlap;
    }
  }
  last_begin_ms_ = now;
  return Status::Ok();
}

Status GradientSync::ChooseMode() {
  double median_ms[2];
  for (int m = 0; m < 2; ++m) {
    std::vector<double>& v = trial_ms_[m];
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    median_ms[m] = v[v.size() / 2];
  }
  TS_RETURN_IF_ERROR(comm_->AllreduceSum(std::span<double>(median_ms, 2)));
  const double ranks = double(comm_->size());
  active_ = median_ms[0] < median_ms[1] ? AllreduceMode::kOverlap : AllreduceMode::kBlocking;
  char text[160];
  std::snprintf(text, sizeof(text),
                "allreduce auto: %s (median step %.1f ms with overlap, %.1f ms blocking, over %d "
                "steps each)",
                AllreduceModeName(active_), median_ms[0] / ranks, median_ms[1] / ranks,
                kTrialStepsPerMode);
  choice_ = text;
  return Status::Ok();
}

Status GradientSync::StartReadyBuckets(int64_t offset) {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].begin >= offset) {
    Bucket& b = buckets_[next_bucket_++];
    TS_ASSIGN_OR_RETURN(b.request, comm_->StartAllreduceSum({store_->grads().data() + b.begin,
                                                             size_t(b.end - b.begin)}));
    b.started = true;
  }
  for (size_t i = 0; i < next_bucket_; ++i) {
    if (buckets_[i].request < 0) continue;
    TS_ASSIGN_OR_RETURN(bool done, comm_->Test(buckets_[i].request));
    if (done) buckets_[i].request = -1;
  }
  return Status::Ok();
}

void GradientSync::OnGradsReady(int64_t offset) {
  if (active_ != AllreduceMode::kOverlap || comm_->size() == 1 || !error_.ok()) return;
  const double t0 = NowMs();
  error_ = StartReadyBuckets(offset);
  comm_ms_ += NowMs() - t0;
}

Status GradientSync::Finish() {
  TS_RETURN_IF_ERROR(error_);
  if (comm_->size() == 1) return Status::Ok();
  const double t0 = NowMs();
  if (active_ == AllreduceMode::kBlocking) {
    TS_RETURN_IF_ERROR(comm_->AllreduceSum(std::span<float>(store_->grads())));
  } else {
    TS_RETURN_IF_ERROR(StartReadyBuckets(0));
    for (Bucket& b : buckets_) {
      if (b.request >= 0) TS_RETURN_IF_ERROR(comm_->Wait(b.request));
      b.request = -1;
    }
  }
  const double t1 = NowMs();
  exposed_ms_ = t1 - t0;
  comm_ms_ += exposed_ms_;
  const float inv = 1.0f / float(comm_->size());
  for (float& g : store_->grads()) g *= inv;
  return Status::Ok();
}

}  // namespace tilestage::trainer
