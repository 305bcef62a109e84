// Helpers for store tests: write a small synthetic store with a manifest, and edit manifests.
// Not thread-safe; used from a test's main thread.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tiling/store.h"
#include "tiling/synth.h"

namespace tilestage::testing {

struct TestStoreSpec {
  SynthSpec synth{{2, 16, 16}, DType::kF32, 7, 0};
  uint64_t samples = 24;
  StoreWriterOptions options;
  TestStoreSpec() { options.shard_target_bytes = 32 << 10; }
};

// Writes spec.samples synthetic samples to dir and publishes a manifest with statistics.
inline Manifest WriteTestStore(std::shared_ptr<Storage> storage, const std::string& dir,
                               const TestStoreSpec& spec = {}) {
  Manifest manifest;
  auto writer = StoreWriter::Create(storage, dir, spec.options);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  if (!writer.ok()) return manifest;
  std::vector<ChannelStats> stats;
  for (uint64_t i = 0; i < spec.samples; ++i) {
    Sample sample = MakeSynthSample(spec.synth, i);
    MergeChannelStats(stats, ComputeChannelStats(sample.fields[0].array));
    Status s = (*writer)->Append(sample);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  auto shards = (*writer)->Close();
  EXPECT_TRUE(shards.ok()) << shards.status().ToString();
  manifest.kind = "synthetic";
  manifest.codec = spec.options.codec;
  manifest.shards = *shards;
  manifest.fields.push_back({"x", spec.synth.dtype, spec.synth.shape, {}, {}, stats});
  if (spec.synth.classes > 0) manifest.fields.push_back({"y", DType::kI32, {1}, {}, {}, {}});
  Status s = WriteManifest(*storage, dir, manifest);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return manifest;
}

inline nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}
inline void WriteJsonFile(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(2);
}

}  // namespace tilestage::testing
