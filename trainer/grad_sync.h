// GradientSync: averages gradients across ranks the way PyTorch DDP does.
//
// The flat gradient buffer is cut into buckets from the end (the last layers' gradients, which
// backward finishes first) towards the start. In overlap mode, as the model reports that the
// gradients from some offset upward are final, every bucket lying wholly above it is started
// with a non-blocking allreduce, in bucket order on every rank, and all in-flight requests are
// tested so MPI makes progress while backward continues. Finish() starts what is left, waits,
// and divides by the world size. Blocking mode does one MPI_Allreduce after backward (the
// fallback, and the baseline for how much communication the overlap hides).
//
// Overlap only pays when something other than the training thread moves the bytes: a spare
// core, or a network adapter. With every core computing (2 ranks x 1 thread on 2 cores), the
// non-blocking collective's progress runs on the training thread inside the tests, and costs
// more than one blocking call. Auto mode therefore measures instead of guessing: steps 2 to 7
// alternate blocking and overlap (step 1 warms caches and allocations), and from step 8 on the
// mode whose median step period, summed over the ranks, was shorter is kept. Every rank makes
// the same choice (it rests on the same sums). The choice depends on timing, so a run that must
// be bitwise reproducible across repeats on more than 2 ranks names its mode.
//
// Thread-safety: used by the training thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiling/status.h"
#include "tiling/comm/communicator.h"
#include "trainer/params.h"

namespace tilestage::trainer {

// Monotonic milliseconds, for the trainer's step and allreduce timings.
double NowMs();

enum class AllreduceMode { kOverlap, kBlocking, kAuto };
Result<AllreduceMode> ParseAllreduceMode(const std::string& name);  // "overlap" | "blocking" | "auto"
const char* AllreduceModeName(AllreduceMode mode);

class GradientSync {
 public:
  GradientSync(Communicator* comm, ParamStore* store, AllreduceMode mode,
               int64_t bucket_floats = int64_t{1} << 20);

  // Starts a step. In auto mode, times the previous one and, at the end of the trial, agrees
  // with the other ranks on the mode to keep (a collective call: every rank begins every step).
  Status BeginStep();
  // Gradients at [offset, total) are final. Starts the buckets that became ready and tests the
  // ones in flight. Errors are kept and returned by Finish().
  void OnGradsReady(int64_t offset);
  // Completes the step: every bucket summed and divided by the world size.
  Status Finish();

  // Time spent in communication calls during the last step: total, and the part after backward
  // ended (Finish), which is what the step actually waited for.
  double comm_ms() const { return comm_ms_; }
  double exposed_ms() const { return exposed_ms_; }
  int64_t buckets() const { return int64_t(buckets_.size()); }
  // The mode this step runs (auto: the trial's mode, then the one chosen).
  AllreduceMode active_mode() const { return active_; }
  // Auto mode, once chosen: what the choice rests on, for the training log; empty before.
  const std::string& choice() const { return choice_; }

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;
    int request = -1;
    bool started = false;
  };
  Status StartReadyBuckets(int64_t offset);
  Status ChooseMode();

  static constexpr int kTrialStepsPerMode = 3;

  Communicator* comm_;
  ParamStore* store_;
  AllreduceMode mode_;
  AllreduceMode active_;
  int64_t steps_begun_ = 0;
  double last_begin_ms_ = 0.0;
  std::vector<double> trial_ms_[2];  // step periods measured with overlap [0] and blocking [1]
  std::string choice_;
  std::vector<Bucket> buckets_;  // buckets_[0] is the last slice of the buffer
  size_t next_bucket_ = 0;
  Status error_;
  double comm_ms_ = 0.0, exposed_ms_ = 0.0;
};

}  // namespace tilestage::trainer
