// Synthetic samples for benchmarks and tests at any scale (as DLIO generates data).
//
// Sample i is a pure function of (seed, i): smooth fields (a few random plane waves per channel)
// plus noise, quantized to the dtype, so it varies from sample to sample and compresses like real
// imagery rather than like constants or white noise. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <vector>

#include "tiling/sample.h"

namespace tilestage {

struct SynthSpec {
  std::vector<int64_t> shape = {3, 64, 64};  // channel-first
  DType dtype = DType::kF32;
  uint64_t seed = 0;
  // When > 0, each sample also gets field "y": an i32 [1] class label in [0, classes) that
  // depends on the content (the dominant wave's orientation), so a model can learn it.
  int classes = 0;
};

Sample MakeSynthSample(const SynthSpec& spec, uint64_t index);

// splitmix64 of (seed, stream, counter): a counter-based generator keyed by its inputs.
uint64_t CounterHash(uint64_t seed, uint64_t stream, uint64_t counter);
// Uniform in [0, 1) from CounterHash.
double CounterUniform(uint64_t seed, uint64_t stream, uint64_t counter);

}  // namespace tilestage
