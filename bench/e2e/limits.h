// The machine's limits the e2e report sets each stage beside: memory copy bandwidth (for the
// allreduce), the trainer's own GEMM kernel (for training) and raw read bandwidth of the staged
// store and of the inputs (for staging, the loader and ingest). Each probe is the best of a few
// rounds; the figures are measurements, so nothing here asserts a value.
//
// Thread-safety: the probes are safe to call concurrently, but concurrent probes measure each
// other; the e2e run calls them one at a time.
#pragma once

#include <string>
#include <vector>

#include "bench/e2e/mllog.h"  // Json
#include "tiling/status.h"

namespace tilestage::bench {

// memcpy bandwidth (bytes copied per second / 1e9) over `bytes`-sized buffers, best of `rounds`.
double MemcpyGbPerS(size_t bytes = size_t(64) << 20, int rounds = 5);

// GFLOP/s of trainer::Gemm on n^3 (all cores), best of `rounds` after one warm-up.
double SgemmGflops(int64_t n = 512, int rounds = 5);

struct ReadLimits {
  double cold_gb_per_s = 0;           // the staged files after EvictFromPageCache
  double cached_gb_per_s = 0;         // the same files read again at once
  double bytes = 0;                   // of the staged files
  double inputs_cached_mb_per_s = 0;  // the ingest inputs, second read of two
};

// Raw read bandwidth of `staged` (cold, then cached) and of `inputs` (cached). IOError names the
// file; an empty or zero-byte file set is InvalidArgument (no bandwidth to measure).
Result<ReadLimits> MeasureReadLimits(const std::vector<std::string>& staged,
                                     const std::vector<std::string>& inputs);

struct MachineLimits {
  double memcpy_gb_per_s = 0;
  double sgemm_gflop_per_s = 0;
  ReadLimits read;

  // The results document's system.limits object (memcpy_gb_per_s, sgemm_gflop_per_s,
  // read_cold_gb_per_s, read_cached_gb_per_s, read_bytes, read_inputs_cached_mb_per_s).
  Json ToJson() const;
};

}  // namespace tilestage::bench
