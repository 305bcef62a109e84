#include <gtest/gtest.h>

#include "tiling/store.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

TEST(StoreRoundTrip, SyntheticSamplesReadBackExactly) {
  auto storage = NewMemoryStorage();
  StoreWriterOptions options;
  options.codec = {Codec::kZstd, 3, true};
  options.shard_target_bytes = 64 << 10;
  auto writer = StoreWriter::Create(storage, "store", options);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  SynthSpec spec{{2, 16, 16}, DType::kU16, 5, 0};
  for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE((*writer)->Append(MakeSynthSample(spec, i)).ok());
  Manifest manifest;
  auto shards = (*writer)->Close();
  ASSERT_TRUE(shards.ok());
  manifest.shards = *shards;
  manifest.fields.push_back({"x", DType::kU16, {2, 16, 16}, {}, {}, {}});
  ASSERT_TRUE(WriteManifest(*storage, "store", manifest).ok());
  auto store = Store::Open(storage, "store");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_GT((*store)->num_shards(), 1u);
  ASSERT_EQ((*store)->size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) {
    auto sample = (*store)->Read(i);
    ASSERT_TRUE(sample.ok());
    EXPECT_EQ(sample->fields[0].array.data, MakeSynthSample(spec, i).fields[0].array.data);
  }
  VerifyReport report;
  EXPECT_TRUE(VerifyStore(*storage, "store", &report).ok());
}

}  // namespace
}  // namespace tilestage
