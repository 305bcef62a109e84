#include "tests/loaders/synth_store.h"

#include <gtest/gtest.h>

#include "tiling/stats.h"
#include "tiling/store.h"

namespace tilestage::testing {

Sample SynthStoreSample(const SynthStoreSpec& spec, uint64_t index) {
  SynthSpec s;
  s.shape = spec.shape;
  s.dtype = spec.dtype;
  s.seed = spec.seed;
  s.classes = spec.classes;
  Sample sample = MakeSynthSample(s, index);
  if (spec.edit) spec.edit(index, sample);
  return sample;
}

Manifest WriteSynthStore(const std::shared_ptr<Storage>& storage, const std::string& dir,
                         const SynthStoreSpec& spec) {
  StoreWriterOptions options;
  options.codec = spec.codec;
  options.shard_target_bytes = spec.shard_target_bytes;
  auto writer = StoreWriter::Create(storage, dir, options);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  std::vector<ChannelStats> stats;
  for (uint64_t i = 0; i < spec.samples; ++i) {
    Sample sample = SynthStoreSample(spec, i);
    MergeChannelStats(stats, ComputeChannelStats(*sample.Find("x")));
    Status s = (*writer)->Append(sample);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  Manifest manifest;
  manifest.kind = "synthetic";
  manifest.codec = spec.codec;
  auto shards = (*writer)->Close();
  EXPECT_TRUE(shards.ok()) << shards.status().ToString();
  manifest.shards = *shards;
  FieldSchema x{"x", spec.dtype, spec.shape, {}, {}, stats};
  manifest.fields.push_back(x);
  if (spec.classes > 0) manifest.fields.push_back({"y", DType::kI32, {1}, {"label"}, {}, {}});
  Status s = WriteManifest(*storage, dir, manifest);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return manifest;
}

}  // namespace tilestage::testing
