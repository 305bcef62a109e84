#include "bench/e2e/train_records.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tilestage::bench {

TrainRecordFollower::TrainRecordFollower(MlLogger* log, int epochs, const Progress* progress)
    : log_(log), epochs_(epochs), progress_(progress) {}

Status TrainRecordFollower::LogAt(int64_t time_ms, MlEventType type, const char* key, Json value,
                                  int64_t epoch_num, SourceLocation where) {
  // The records' times are past, so the writer's Start/End (stamped now) do not fit.
  TS_ASSIGN_OR_RETURN(MlEvent event, MakeMlEvent(type, key, std::move(value), time_ms,
                                                 Json{{"epoch_num", epoch_num}}, where));
  return log_->Log(event);
}

void TrainRecordFollower::OnLine(const std::string& line, int64_t arrival_ms) {
  Json r;
  try {
    r = Json::parse(line);
  } catch (...) {
    return;  // not a record
  }
  if (!r.is_object() || !r.contains("type")) return;
  auto keep = [this](Status s) {
    if (status_.ok() && !s.ok()) status_ = std::move(s);
  };
  const int64_t now_ms = r.value("time_ms", arrival_ms);
  if (r["type"] == "run") {
    fig_.params = r.value("parameters", int64_t(0));
    fig_.x_shape = r.value("x_shape", std::vector<int64_t>{});
  } else if (r["type"] == "step") {
    const int64_t epoch = r.value("epoch", int64_t(0));
    if (epoch != current_epoch_) {
      current_epoch_ = epoch;
      // Never before the previous epoch's end (records may arrive in one burst).
      const int64_t start_ms =
          std::max(last_epoch_stop_ms_, now_ms - int64_t(std::llround(r.value("step_ms", 0.0))));
      keep(LogAt(start_ms, MlEventType::kIntervalStart, mlkey::kEpochStart, nullptr, epoch + 1));
    }
    last_step_ms_ = now_ms;
    compute_ms_sum_ += r.value("compute_ms", 0.0);
    allreduce_ms_sum_ += r.value("allreduce_ms", 0.0);
    ++fig_.steps;
  } else if (r["type"] == "epoch") {
    const int64_t epoch = r.value("epoch", int64_t(0));
    const int64_t eval_start_ms =
        std::max(last_step_ms_, now_ms - int64_t(std::llround(r.value("eval_ms", 0.0))));
    keep(LogAt(eval_start_ms, MlEventType::kIntervalStart, mlkey::kEvalStart, nullptr, epoch + 1));
    keep(LogAt(now_ms, MlEventType::kIntervalEnd, mlkey::kEvalStop, nullptr, epoch + 1));
    if (r.contains("eval_loss")) {
      keep(LogAt(now_ms, MlEventType::kPointInTime, "eval_loss", r["eval_loss"], epoch + 1));
    }
    keep(LogAt(now_ms, MlEventType::kIntervalEnd, mlkey::kEpochStop, nullptr, epoch + 1));
    last_epoch_stop_ms_ = now_ms;
    fig_.epoch_samples_per_s.push_back(r.value("samples_per_s", 0.0));
    if (progress_ != nullptr) {
      char text[200];
      std::snprintf(text, sizeof(text),
                    "  epoch %lld/%d: train loss %.4f, eval loss %.4f, %.1f samples/s, "
                    "stall %.1f%%",
                    static_cast<long long>(epoch + 1), epochs_, r.value("train_loss", 0.0),
                    r.value("eval_loss", -1.0), r.value("samples_per_s", 0.0),
                    100.0 * r.value("stall_fraction", 0.0));
      progress_->Line(text);
    }
  }
}

Result<TrainFigures> TrainRecordFollower::Finish(const std::string& where) const {
  TS_RETURN_IF_ERROR(status_);
  if (fig_.epoch_samples_per_s.empty()) {
    return DataLoss("train: no epoch records on stdout (see ", where, ")");
  }
  if (fig_.params <= 0) return DataLoss("train: no run record on stdout (see ", where, ")");
  TrainFigures f = fig_;
  std::vector<double> rates = f.epoch_samples_per_s;
  std::sort(rates.begin(), rates.end());
  f.samples_per_s = rates[rates.size() / 2];
  f.compute_ms_mean = f.steps > 0 ? compute_ms_sum_ / double(f.steps) : 0;
  f.allreduce_s = allreduce_ms_sum_ / 1e3;
  return f;
}

}  // namespace tilestage::bench
