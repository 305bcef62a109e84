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

enum class AllreduceMode { kOverlap, kBlocking };
Result<AllreduceMode> ParseAllreduceMode(const std::string& name);  // "overlap" | "blocking"

class GradientSync {
 public:
  GradientSync(Communicator* comm, ParamStore* store, AllreduceMode mode,
               int64_t bucket_floats = int64_t{1} << 20);

  void BeginStep();
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

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;
    int request = -1;
    bool started = false;
  };
  Status StartReadyBuckets(int64_t offset);

  Communicator* comm_;
  ParamStore* store_;
  AllreduceMode mode_;
  std::vector<Bucket> buckets_;  // buckets_[0] is the last slice of the buffer
  size_t next_bucket_ = 0;
  Status error_;
  double comm_ms_ = 0.0, exposed_ms_ = 0.0;
};

}  // namespace tilestage::trainer
