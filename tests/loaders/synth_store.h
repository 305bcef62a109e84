// Small synthetic stores for the loader and stager tests, written with the tiling library itself
// (StoreWriter + MakeSynthSample + ComputeChannelStats), as `tilestage synth` writes them.
// Not thread-safe; one call at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tiling/codec.h"
#include "tiling/manifest.h"
#include "tiling/sample.h"
#include "tiling/storage.h"
#include "tiling/synth.h"

namespace tilestage::testing {

struct SynthStoreSpec {
  uint64_t samples = 64;
  std::vector<int64_t> shape = {3, 8, 8};
  DType dtype = DType::kF32;
  uint64_t seed = 7;
  int classes = 0;
  CodecSpec codec;  // none
  uint64_t shard_target_bytes = 64 << 10;
  // Applied to each sample before it is written (e.g. to plant NaNs).
  std::function<void(uint64_t index, Sample&)> edit;
};

// Writes the store (manifest last) and returns its manifest; aborts the test on error.
Manifest WriteSynthStore(const std::shared_ptr<Storage>& storage, const std::string& dir,
                         const SynthStoreSpec& spec);
// The sample the store holds at global index i (with spec.edit applied).
Sample SynthStoreSample(const SynthStoreSpec& spec, uint64_t index);

}  // namespace tilestage::testing
