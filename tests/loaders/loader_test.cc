// The loading pipeline against independent truth: samples regenerated with MakeSynthSample and
// normalized here from the manifest statistics, orders from SampleOrder, checksums flipped with
// FlipByte.
#include "loaders/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "loaders/sample_order.h"
#include "tests/common/test_util.h"
#include "tests/loaders/synth_store.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using testing::SynthStoreSpec;
using testing::TempDir;

struct Fixture {
  TempDir tmp;
  std::string dir = tmp.Sub("store");
  SynthStoreSpec spec;
  Manifest manifest;
  explicit Fixture(SynthStoreSpec s = {}) : spec(std::move(s)) {
    manifest = testing::WriteSynthStore(LocalStorage(), dir, spec);
  }
};

std::unique_ptr<Loader> OpenOrDie(const std::string& dir, const LoaderOptions& options) {
  auto loader = Loader::Open(LocalStorage(), dir, options);
  EXPECT_TRUE(loader.ok()) << loader.status().ToString();
  return loader.ok() ? std::move(loader).value() : nullptr;
}

// All batches of one epoch.
std::vector<Batch> Epoch(Loader& loader) {
  std::vector<Batch> batches;
  Batch batch;
  while (true) {
    auto more = loader.Next(&batch);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    batches.push_back(batch);
  }
  return batches;
}

std::vector<uint64_t> Indices(const std::vector<Batch>& batches) {
  std::vector<uint64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.indices.begin(), b.indices.end());
  return out;
}

// Independent normalization: (x - mean) / std per channel in double, from the manifest.
std::vector<float> ExpectedX(const Fixture& f, uint64_t index) {
  Sample s = testing::SynthStoreSample(f.spec, index);
  const Array& x = *s.Find("x");
  const auto& stats = f.manifest.fields[0].stats;
  const int64_t per_channel = x.NumElements() / x.shape[0];
  std::vector<float> out(x.NumElements());
  for (int64_t i = 0; i < x.NumElements(); ++i) {
    const ChannelStats& c = stats[i / per_channel];
    const double v = ElementAsDouble(x, i);
    out[i] = std::isnan(v) ? 0.0f : static_cast<float>((v - c.mean) / c.std());
  }
  return out;
}

TEST(Loader, NoShuffleDeliversStoreOrderNormalizedWithManifestStats) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 7;
  o.shuffle = ShuffleMode::kNone;
  o.threads = 2;
  auto loader = OpenOrDie(f.dir, o);
  ASSERT_TRUE(loader);
  EXPECT_EQ(loader->batches_per_epoch(), 10u);  // ceil(64 / 7)
  const auto batches = Epoch(*loader);
  ASSERT_EQ(batches.size(), 10u);
  EXPECT_EQ(batches.back().size, 7);  // every batch full: 6 padded samples repeat the start
  std::vector<uint64_t> expected(70);
  std::iota(expected.begin(), expected.begin() + 64, uint64_t{0});
  std::iota(expected.begin() + 64, expected.end(), uint64_t{0});
  EXPECT_EQ(Indices(batches), expected);
  for (const Batch& b : batches) {
    EXPECT_EQ(b.x_shape, (std::vector<int64_t>{3, 8, 8}));
    const int64_t xe = b.x_elements_per_sample();
    for (int64_t s = 0; s < b.size; ++s) {
      const auto want = ExpectedX(f, b.indices[s]);
      for (int64_t i = 0; i < xe; ++i)
        ASSERT_NEAR(b.x[s * xe + i], want[i], 1e-4) << "record " << b.indices[s] << " elem " << i;
    }
  }
  // The next call starts epoch 1.
  Batch b;
  auto more = loader->Next(&b);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(*more);
  EXPECT_EQ(b.epoch, 1u);
  EXPECT_EQ(b.index_in_epoch, 0u);
}

TEST(Loader, GlobalShuffleFollowsSampleOrderForEachRank) {
  Fixture f;
  for (int world = 1; world <= 3; ++world)
    for (int rank = 0; rank < world; ++rank) {
      LoaderOptions o;
      o.batch_size = 5;
      o.seed = 3;
      o.rank = rank;
      o.world_size = world;
      auto loader = OpenOrDie(f.dir, o);
      ASSERT_TRUE(loader);
      OrderSpec spec;
      auto store = Store::Open(LocalStorage(), f.dir);
      ASSERT_TRUE(store.ok());
      for (size_t s = 0; s < (*store)->num_shards(); ++s)
        spec.shard_records.push_back((*store)->shard(s).num_records());
      spec.seed = 3;
      spec.global_batch = 5 * world;
      auto order = SampleOrder::Create(spec);
      ASSERT_TRUE(order.ok());
      for (uint64_t epoch = 0; epoch < 2; ++epoch)
        EXPECT_EQ(Indices(Epoch(*loader)), *order->RankOrder(epoch, rank, world))
            << "rank " << rank << "/" << world << " epoch " << epoch;
    }
}

TEST(Loader, ThreadCountDoesNotChangeBatches) {
  Fixture f;
  auto run = [&](int threads) {
    LoaderOptions o;
    o.batch_size = 6;
    o.seed = 5;
    o.threads = threads;
    o.augment = true;
    o.crop_h = 6;
    o.crop_w = 6;
    auto loader = OpenOrDie(f.dir, o);
    std::vector<float> all;
    for (int e = 0; e < 2; ++e)
      for (const Batch& b : Epoch(*loader)) all.insert(all.end(), b.x.begin(), b.x.end());
    return all;
  };
  const auto one = run(1);
  EXPECT_EQ(one.size(), 2u * 66 * 3 * 6 * 6);  // 11 full batches of 6 per epoch
  EXPECT_EQ(one, run(2));
  EXPECT_EQ(one, run(4));
}

TEST(Loader, StatisticsCountEveryRecordOnceWhateverTheThreadCount) {
  Fixture f;
  auto store = Store::Open(LocalStorage(), f.dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  uint64_t stored_bytes = 0;
  for (size_t s = 0; s < (*store)->num_shards(); ++s)
    for (uint64_t r = 0; r < (*store)->shard(s).num_records(); ++r)
      stored_bytes += (*store)->shard(s).entry(r).stored_size;
  for (int threads : {1, 2, 4}) {
    LoaderOptions o;
    o.batch_size = 8;
    o.threads = threads;
    auto loader = OpenOrDie(f.dir, o);
    for (int e = 0; e < 2; ++e) Epoch(*loader);
    const LoaderStats stats = loader->stats();
    EXPECT_EQ(stats.bytes_read, 2 * stored_bytes) << threads << " threads";
    for (const auto& stage : stats.stages) {
      if (stage.name == "read" || stage.name == "decode" || stage.name == "collate") {
        EXPECT_EQ(stage.items, 2 * f.spec.samples) << stage.name << ", " << threads << " threads";
      }
    }
  }
}

TEST(Loader, InterruptedWaitConsumesNothingAndLoadingContinues) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 3;
  o.threads = 1;
  o.prefetch = 1;
  auto plain = OpenOrDie(f.dir, o);
  const std::vector<uint64_t> want = Indices(Epoch(*plain));
  auto loader = OpenOrDie(f.dir, o);
  std::vector<uint64_t> got;
  int polls = 0, interruptions = 0;
  Batch batch;
  while (true) {
    // Every wait is cut short at its first poll (1 ms), so most calls return no batch.
    auto more = loader->NextUnless(&batch, [&] { return ++polls % 2 == 1; },
                                   std::chrono::milliseconds(1));
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!more->has_value()) {
      ++interruptions;
      EXPECT_EQ(loader->position().samples_consumed, got.size());
      continue;
    }
    if (!**more) break;
    got.insert(got.end(), batch.indices.begin(), batch.indices.end());
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(loader->position().epoch, 1u);
  EXPECT_EQ(loader->stats().batches, want.size() / 4);
}

TEST(Loader, ResumeContinuesWithExactlyTheRemainingBatches) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 9;
  o.augment = true;
  auto full = OpenOrDie(f.dir, o);
  std::vector<Batch> reference = Epoch(*full);
  auto second = Epoch(*full);
  reference.insert(reference.end(), second.begin(), second.end());

  // Consume 5 batches, checkpoint, reopen from the position.
  auto first = OpenOrDie(f.dir, o);
  Batch b;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(*first->Next(&b));
  LoaderPosition pos = first->position();
  EXPECT_EQ(pos.epoch, 0u);
  EXPECT_EQ(pos.samples_consumed, 20u);
  o.start = pos;
  auto resumed = OpenOrDie(f.dir, o);
  std::vector<Batch> rest = Epoch(*resumed);
  auto next_epoch = Epoch(*resumed);
  rest.insert(rest.end(), next_epoch.begin(), next_epoch.end());
  ASSERT_EQ(rest.size() + 5, reference.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i].indices, reference[i + 5].indices);
    EXPECT_EQ(rest[i].x, reference[i + 5].x);
    EXPECT_EQ(rest[i].index_in_epoch, reference[i + 5].index_in_epoch);
  }
  // Without replaying: only the remaining 44 records were read.
  EXPECT_EQ(resumed->stats().stages[0].items, 44u + 64u);
}

TEST(Loader, AugmentIsADihedralTransformOfTheSample) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 8;
  o.augment = true;
  o.shuffle = ShuffleMode::kNone;
  auto loader = OpenOrDie(f.dir, o);
  int changed = 0;
  for (const Batch& b : Epoch(*loader))
    for (int64_t s = 0; s < b.size; ++s) {
      const auto want = ExpectedX(f, b.indices[s]);
      const float* got = b.x.data() + s * 192;
      // One of the 8 transforms (turns k of a flipped or plain tile) must match exactly.
      bool found = false;
      for (int flip = 0; flip < 2 && !found; ++flip)
        for (int k = 0; k < 4 && !found; ++k) {
          bool all = true;
          for (int c = 0; c < 3 && all; ++c)
            for (int i = 0; i < 8 && all; ++i)
              for (int j = 0; j < 8 && all; ++j) {
                int a = i, bb = j;
                for (int t = 0; t < k; ++t) {
                  const int na = bb, nb = 7 - a;
                  a = na;
                  bb = nb;
                }
                if (flip) bb = 7 - bb;
                all = std::abs(got[(c * 8 + i) * 8 + j] - want[(c * 8 + a) * 8 + bb]) < 1e-4;
              }
          if (all) {
            found = true;
            if (flip || k) ++changed;
          }
        }
      EXPECT_TRUE(found) << "record " << b.indices[s];
    }
  EXPECT_GT(changed, 32);  // 7 of 8 transforms change the tile
}

TEST(Loader, CorruptRecordFailsNamingShardAndRecord) {
  Fixture f;
  auto store = Store::Open(LocalStorage(), f.dir);
  ASSERT_TRUE(store.ok());
  const ShardReader& shard = (*store)->shard(1);
  const std::string path = shard.path();
  const long offset = static_cast<long>(shard.entry(2).offset + 40);
  store->reset();
  testing::FlipByte(path, offset);
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = ShuffleMode::kNone;
  auto loader = OpenOrDie(f.dir, o);
  Batch b;
  Status error;
  while (true) {
    auto more = loader->Next(&b);
    if (!more.ok()) {
      error = more.status();
      break;
    }
    ASSERT_TRUE(*more) << "epoch ended without reporting the corrupt record";
  }
  EXPECT_EQ(error.code(), StatusCode::kDataLoss);
  EXPECT_NE(error.message().find(path), std::string::npos) << error.ToString();
  EXPECT_NE(error.message().find("record 2"), std::string::npos) << error.ToString();
  // Sticky: the loader does not pretend to continue.
  EXPECT_FALSE(loader->Next(&b).ok());
}

TEST(Loader, CorruptRecordIsSkippedAndCountedWhenAsked) {
  Fixture f;
  auto store = Store::Open(LocalStorage(), f.dir);
  ASSERT_TRUE(store.ok());
  const uint64_t corrupt_index = (*store)->shard_offset(1) + 2;
  const std::string path = (*store)->shard(1).path();
  const long offset = static_cast<long>((*store)->shard(1).entry(2).offset + 40);
  store->reset();
  testing::FlipByte(path, offset);
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = ShuffleMode::kNone;
  o.skip_corrupt = true;
  auto loader = OpenOrDie(f.dir, o);
  const auto batches = Epoch(*loader);
  EXPECT_EQ(batches.size(), 16u);  // the batch count does not change
  const auto indices = Indices(batches);
  EXPECT_EQ(indices.size(), 63u);
  EXPECT_EQ(std::count(indices.begin(), indices.end(), corrupt_index), 0);
  int64_t skipped = 0;
  for (const Batch& b : batches) skipped += b.skipped;
  EXPECT_EQ(skipped, 1);
  const LoaderStats stats = loader->stats();
  EXPECT_EQ(stats.corrupt_skipped, 1u);
  ASSERT_EQ(stats.corrupt_examples.size(), 1u);
  EXPECT_NE(stats.corrupt_examples[0].find("record 2"), std::string::npos);
  // The other samples of the batch are intact and in order.
  for (const Batch& b : batches)
    for (int64_t s = 0; s < b.size; ++s) {
      const auto want = ExpectedX(f, b.indices[s]);
      ASSERT_NEAR(b.x[s * 192 + 17], want[17], 1e-4);
    }
}

// Uncompressed records are checked while x is normalized, piece by piece; a flipped byte in any
// part of a record (the header, x's first and last bytes, the label, the last byte) is still a
// checksum mismatch naming the shard and the record, with and without a crop.
TEST(Loader, FlippedByteAnywhereInAnUncompressedRecordIsAChecksumMismatch) {
  SynthStoreSpec spec;
  spec.shape = {3, 40, 40};  // 19,200 bytes of x: several hashing pieces per record
  spec.samples = 8;
  spec.classes = 3;
  spec.shard_target_bytes = 1 << 20;
  Fixture clean(spec);
  auto store = Store::Open(LocalStorage(), clean.dir);
  ASSERT_TRUE(store.ok());
  const ShardReader& shard = (*store)->shard(0);
  const std::string shard_name = std::filesystem::path(shard.path()).filename();
  const IndexEntry e = shard.entry(2);
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(shard.ReadStored(2, &bytes).ok());
  std::vector<FieldView> views;
  std::vector<std::vector<uint8_t>> scratch;
  ASSERT_TRUE(ParseRecordView(bytes, e, "record 2", &views, &scratch).ok());
  const auto at = [&](std::string_view field) {
    for (const FieldView& v : views)
      if (v.name == field) return static_cast<long>(v.payload_offset);
    ADD_FAILURE() << "no field " << field;
    return 0L;
  };
  const long x_begin = at("x");
  const std::vector<long> offsets = {
      0, 40, x_begin, x_begin + 19199, at("y"), static_cast<long>(e.stored_size) - 1};
  store->reset();
  for (const long offset : offsets)
    for (const int64_t crop : {0, 32}) {
      SCOPED_TRACE("offset " + std::to_string(offset) + ", crop " + std::to_string(crop));
      Fixture f(spec);
      const std::string path = f.dir + "/" + shard_name;
      testing::FlipByte(path, static_cast<long>(e.offset) + offset);
      LoaderOptions o;
      o.batch_size = 4;
      o.shuffle = ShuffleMode::kNone;
      o.crop_h = o.crop_w = crop;
      auto loader = OpenOrDie(f.dir, o);
      Batch b;
      auto first = loader->Next(&b);
      ASSERT_FALSE(first.ok());
      EXPECT_EQ(first.status().code(), StatusCode::kDataLoss);
      EXPECT_NE(first.status().message().find(path), std::string::npos)
          << first.status().ToString();
      EXPECT_NE(first.status().message().find("record 2"), std::string::npos);
      EXPECT_NE(first.status().message().find("checksum mismatch"), std::string::npos)
          << first.status().ToString();
    }
}

// Checked and normalized in one pass (uncompressed) or checked then decoded (zstd): the same
// values, against the manifest statistics, for records of several pieces whose elements straddle
// the pieces, for each element size.
TEST(Loader, LargeRecordsNormalizeToTheManifestStatisticsForEveryDtypeAndCodec) {
  for (const DType dtype : {DType::kF32, DType::kU16, DType::kU8, DType::kF64})
    for (const Codec codec : {Codec::kNone, Codec::kZstd}) {
      SCOPED_TRACE(std::string(DTypeName(dtype)) + " " + CodecName(codec));
      SynthStoreSpec spec;
      spec.shape = {3, 37, 53};
      spec.samples = 6;
      spec.dtype = dtype;
      spec.codec.codec = codec;
      spec.shard_target_bytes = 1 << 20;
      Fixture f(spec);
      LoaderOptions o;
      o.batch_size = 3;
      o.shuffle = ShuffleMode::kNone;
      o.validity_mask = dtype == DType::kU8;  // the masked loop too
      auto loader = OpenOrDie(f.dir, o);
      const int64_t xe = 3 * 37 * 53;
      for (const Batch& b : Epoch(*loader))
        for (int64_t s = 0; s < b.size; ++s) {
          const auto want = ExpectedX(f, b.indices[s]);
          for (int64_t i = 0; i < xe; ++i)
            ASSERT_NEAR(b.x[s * xe + i], want[i], 1e-4) << "record " << b.indices[s] << " " << i;
        }
    }
}

TEST(Loader, GlobalBatchLargerThanTheRecordsIsInvalidArgument) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 17;
  o.world_size = 4;  // 68 samples per step, 64 records
  auto loader = Loader::Open(LocalStorage(), f.dir, o);
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loader.status().message().find("global batch of 68 samples is larger than the 64 "
                                           "records"),
            std::string::npos)
      << loader.status().ToString();
  EXPECT_NE(loader.status().message().find("17 per rank x 4 ranks"), std::string::npos)
      << loader.status().ToString();
}

TEST(Loader, ResumeBetweenGlobalBatchesIsInvalidArgument) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 4;
  o.world_size = 2;
  o.start = {0, 12};  // not a multiple of the global batch of 8
  auto loader = Loader::Open(LocalStorage(), f.dir, o);
  ASSERT_FALSE(loader.ok());
  EXPECT_NE(loader.status().message().find("resume position 12 of epoch 0 is not a boundary of "
                                           "the 8 global batches of 8 samples"),
            std::string::npos)
      << loader.status().ToString();
}

// The same global batches, sample tensors included (augmentation is keyed by record index), at
// 1, 2 and 4 ranks, and a resume on 4 ranks from a position reached on 2.
TEST(Loader, GlobalBatchesAreTheSameAtAnyWorldSizeAndResumeAcrossWorldSizes) {
  Fixture f;
  const int64_t global = 8;
  auto options = [&](int rank, int world) {
    LoaderOptions o;
    o.batch_size = global / world;
    o.rank = rank;
    o.world_size = world;
    o.seed = 6;
    o.shuffle = ShuffleMode::kBlock;
    o.block_shards = 2;
    o.block_parts = 4;
    o.augment = true;
    o.threads = 1 + rank % 2;
    return o;
  };
  // (record index -> x) of each global batch of epochs 0 and 1, from `world` ranks, started at
  // global position `start` of epoch 0.
  using Batches = std::vector<std::map<uint64_t, std::vector<float>>>;
  auto run = [&](int world, LoaderPosition start) {
    Batches out;
    for (int r = 0; r < world; ++r) {
      LoaderOptions o = options(r, world);
      o.start = start;
      auto loader = OpenOrDie(f.dir, o);
      if (!loader) return out;
      size_t k = 0;
      for (int e = 0; e < 2; ++e)
        for (const Batch& b : Epoch(*loader)) {
          if (out.size() <= k) out.resize(k + 1);
          const int64_t xe = b.x_elements_per_sample();
          for (int64_t s = 0; s < b.size; ++s)
            out[k][b.indices[s]] = {b.x.begin() + s * xe, b.x.begin() + (s + 1) * xe};
          ++k;
        }
      EXPECT_EQ(loader->position().epoch, 2u);
    }
    return out;
  };
  const Batches one = run(1, {});
  ASSERT_EQ(one.size(), 16u);  // 8 global batches of 8 per epoch
  EXPECT_EQ(run(2, {}), one);
  EXPECT_EQ(run(4, {}), one);
  // Stopped after 3 batches on 2 ranks, continued on 4: the remaining global batches.
  LoaderOptions o = options(1, 2);
  auto first = OpenOrDie(f.dir, o);
  ASSERT_TRUE(first);
  Batch b;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(*first->Next(&b));
  const LoaderPosition pos = first->position();
  EXPECT_EQ(pos.samples_consumed, 24u);
  const Batches rest = run(4, pos);
  EXPECT_EQ(rest, Batches(one.begin() + 3, one.end()));
}

// Node 0's share of a store partition-staged over 4 nodes in groups of 2 (as the stager records
// it): usable by a 4-node job only.
TEST(Loader, PartitionStagedStoreOnAnotherNodeCountIsRefusedWithTheRestageCommand) {
  Fixture f;
  Manifest m = f.manifest;
  m.attrs["staging"] = {{"source", "/lustre/era5"}, {"mode", "partition"}, {"node", 0},
                        {"nodes", 4}, {"group", 2}, {"to", "/nvme/{node}/era5"},
                        {"source_shards", 2 * m.shards.size()}};
  ASSERT_TRUE(WriteManifest(*LocalStorage(), f.dir, m).ok());
  LoaderOptions o;
  o.batch_size = 4;
  o.nodes = 4;
  EXPECT_TRUE(Loader::Open(LocalStorage(), f.dir, o).ok());
  o.nodes = 0;  // not checked
  EXPECT_TRUE(Loader::Open(LocalStorage(), f.dir, o).ok());
  o.nodes = 6;
  auto loader = Loader::Open(LocalStorage(), f.dir, o);
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kFailedPrecondition);
  const std::string shards = std::to_string(m.shards.size());
  EXPECT_NE(loader.status().message().find(
                "store " + f.dir + " is partition-staged for 4 nodes (node 0 holds " + shards +
                " of the " + std::to_string(2 * m.shards.size()) +
                " shards) but this job runs on 6 nodes"),
            std::string::npos)
      << loader.status().ToString();
  EXPECT_NE(loader.status().message().find(
                "mpirun -np 6 --map-by ppr:1:node tilestage stage --from /lustre/era5 --to "
                "/nvme/{node}/era5 --mode partition --group 2"),
            std::string::npos)
      << loader.status().ToString();
  // A replicated copy serves any node count.
  m.attrs["staging"]["mode"] = "replicate";
  ASSERT_TRUE(WriteManifest(*LocalStorage(), f.dir, m).ok());
  EXPECT_TRUE(Loader::Open(LocalStorage(), f.dir, o).ok());
}

TEST(Loader, ZeroSamplesIsInvalidArgument) {
  Fixture f;
  LoaderOptions o;
  o.range_begin = 64;
  auto loader = Loader::Open(LocalStorage(), f.dir, o);
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loader.status().message().find("zero samples"), std::string::npos)
      << loader.status().ToString();
}

TEST(Loader, EmptyStoreIsInvalidArgument) {
  SynthStoreSpec spec;
  spec.samples = 0;
  Fixture f(spec);
  auto loader = Loader::Open(LocalStorage(), f.dir, LoaderOptions{});
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loader.status().message().find("zero samples"), std::string::npos)
      << loader.status().ToString();
  EXPECT_NE(loader.status().message().find(f.dir), std::string::npos);
}

TEST(Loader, MemoryBudgetTooSmallForTheBatchesIsResourceExhausted) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 32;
  o.prefetch = 4;
  o.mem_budget_bytes = 64 << 10;  // 5 batches of 32 * 768 bytes do not fit
  auto loader = Loader::Open(LocalStorage(), f.dir, o);
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(loader.status().message().find("--mem-budget"), std::string::npos);
}

TEST(Loader, MemoryBoundStaysUnderBudgetWhateverTheStoreSize) {
  for (uint64_t samples : {64u, 1024u}) {
    SynthStoreSpec spec;
    spec.samples = samples;
    Fixture f(spec);
    LoaderOptions o;
    o.batch_size = 8;
    o.prefetch = 2;
    o.mem_budget_bytes = 200 << 10;
    auto loader = OpenOrDie(f.dir, o);
    ASSERT_TRUE(loader);
    const LoaderStats stats = loader->stats();
    EXPECT_LE(stats.memory_bound_bytes, o.mem_budget_bytes);
    EXPECT_GE(stats.tokens_in_flight, 1u);
    EXPECT_EQ(Epoch(*loader).size(), samples / 8);
  }
}

// Samples travel through the pipeline in chunks of consecutive samples of one batch; the least
// budget the loader accepts holds a single sample in flight, so chunks of one. Both give the same
// batches, whatever batch size cuts the chunks short.
TEST(Loader, ChunksOfManySamplesGiveTheSameBatchesAsOneSampleAtATime) {
  Fixture f;
  LoaderOptions o;
  o.batch_size = 5;
  o.seed = 3;
  o.threads = 2;
  o.prefetch = 1;
  auto accepted = [&](uint64_t budget) {
    LoaderOptions small = o;
    small.mem_budget_bytes = budget;
    return Loader::Open(LocalStorage(), f.dir, small).ok();
  };
  uint64_t lo = 0, hi = 1 << 20;  // lo refused, hi accepted
  ASSERT_TRUE(accepted(hi));
  while (hi - lo > 1) {
    const uint64_t mid = (lo + hi) / 2;
    (accepted(mid) ? hi : lo) = mid;
  }
  LoaderOptions one = o;
  one.mem_budget_bytes = hi;
  auto single = OpenOrDie(f.dir, one);
  auto chunked = OpenOrDie(f.dir, o);
  ASSERT_TRUE(single && chunked);
  EXPECT_EQ(single->stats().tokens_in_flight, 1u);
  EXPECT_GE(chunked->stats().tokens_in_flight, 5u);
  for (int e = 0; e < 2; ++e) {
    const auto a = Epoch(*single), b = Epoch(*chunked);
    ASSERT_EQ(a.size(), 13u);  // 64 samples in batches of 5, the last one padded
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].indices, b[i].indices);
      EXPECT_EQ(a[i].x, b[i].x);
    }
  }
}

TEST(Loader, NanBecomesZeroWithValidityMask) {
  SynthStoreSpec spec;
  spec.edit = [](uint64_t index, Sample& s) {
    if (index % 3 == 0) s.Find("x")->As<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  };
  Fixture f(spec);
  LoaderOptions o;
  o.batch_size = 8;
  o.shuffle = ShuffleMode::kNone;
  o.validity_mask = true;
  auto loader = OpenOrDie(f.dir, o);
  for (const Batch& b : Epoch(*loader)) {
    ASSERT_EQ(b.x_valid.size(), b.x.size());
    for (int64_t s = 0; s < b.size; ++s) {
      const bool has_nan = b.indices[s] % 3 == 0;
      EXPECT_EQ(b.x_valid[s * 192 + 5], has_nan ? 0 : 1);
      if (has_nan) {
        EXPECT_EQ(b.x[s * 192 + 5], 0.0f);
      }
      EXPECT_EQ(std::count(b.x_valid.begin() + s * 192, b.x_valid.begin() + (s + 1) * 192, 0),
                has_nan ? 1 : 0);
      for (int64_t i = 0; i < 192; ++i) ASSERT_TRUE(std::isfinite(b.x[s * 192 + i]));
    }
  }
  // Without the mask (the vectorized path) NaN still becomes 0 and nothing else changes.
  o.validity_mask = false;
  auto plain = OpenOrDie(f.dir, o);
  for (const Batch& b : Epoch(*plain)) {
    EXPECT_TRUE(b.x_valid.empty());
    for (int64_t s = 0; s < b.size; ++s) {
      const auto want = ExpectedX(f, b.indices[s]);
      for (int64_t i = 0; i < 192; ++i) ASSERT_NEAR(b.x[s * 192 + i], want[i], 1e-4);
    }
  }
}

// Integer stores keep their sentinels (DEM -32768, label 255, Landsat 0): the nodata values the
// ingest recorded in the manifest are invalid in x and y for every dtype, 0 after normalization.
// Channel 0's nodata is the type's lowest value (i8 -128, i16 -32768, ...; -9999 for floats; 255
// for unsigned types), channel 2's is 0; channel 1 has none, so the same planted values are data
// there. Labels: 3 is nodata.
double PlantedSentinel(DType dtype) {
  const double low = VisitDType(dtype, [](auto zero) {
    using T = decltype(zero);
    return std::is_floating_point_v<T> ? -9999.0
                                       : static_cast<double>(std::numeric_limits<T>::lowest());
  });
  return low == 0.0 ? 255.0 : low;
}

SynthStoreSpec PlantedNodataSpec(DType dtype) {
  SynthStoreSpec spec;
  spec.dtype = dtype;
  spec.classes = 4;
  spec.edit = [sentinel = PlantedSentinel(dtype)](uint64_t index, Sample& s) {
    Array& x = *s.Find("x");
    const int64_t plane = x.NumElements() / 3;
    VisitDType(x.dtype, [&](auto zero) {
      using T = decltype(zero);
      T* v = x.As<T>().data();
      for (int64_t c = 0; c < 3; ++c) {
        v[c * plane + index % plane] = static_cast<T>(c == 2 ? 0.0 : sentinel);
        v[c * plane + 7] = static_cast<T>(c == 2 ? 0.0 : sentinel);
      }
    });
  };
  return spec;
}

constexpr DType kEveryDtype[] = {DType::kU8,  DType::kI8,  DType::kU16, DType::kI16,
                                 DType::kU32, DType::kI32, DType::kF32, DType::kF64};

// What the ingest records: one value (or null) per channel of x, and the label nodata.
void RecordPlantedNodata(Fixture& f, DType dtype) {
  f.manifest.attrs["ingest"]["nodata"] = {{"x", {PlantedSentinel(dtype), nullptr, 0}}, {"y", {3}}};
  ASSERT_TRUE(WriteManifest(*LocalStorage(), f.dir, f.manifest).ok());
}

struct PlantedNodataStore : Fixture {
  explicit PlantedNodataStore(DType dtype) : Fixture(PlantedNodataSpec(dtype)) {
    RecordPlantedNodata(*this, dtype);
  }
};

TEST(Loader, NodataIsInvalidInXAndYForEveryDtype) {
  for (DType dtype : kEveryDtype) {
    SCOPED_TRACE(DTypeName(dtype));
    const double sentinel = PlantedSentinel(dtype);
    PlantedNodataStore f(dtype);
    const SynthStoreSpec& spec = f.spec;
    const auto& stats = f.manifest.fields[0].stats;
    for (bool with_mask : {true, false}) {
      LoaderOptions o;
      o.batch_size = 8;
      o.shuffle = ShuffleMode::kNone;
      o.validity_mask = with_mask;
      auto loader = OpenOrDie(f.dir, o);
      ASSERT_TRUE(loader);
      int64_t invalid_x = 0, invalid_y = 0;
      for (const Batch& b : Epoch(*loader)) {
        ASSERT_EQ(b.x_valid.size(), with_mask ? b.x.size() : 0u);
        ASSERT_EQ(b.y_valid.size(), b.y.size());
        for (int64_t s = 0; s < b.size; ++s) {
          Sample truth = testing::SynthStoreSample(spec, b.indices[s]);
          const Array& x = *truth.Find("x");
          for (int64_t i = 0; i < 192; ++i) {
            const int64_t c = i / 64;
            const double v = ElementAsDouble(x, i);
            const bool valid = !((c == 0 && v == sentinel) || (c == 2 && v == 0.0));
            const float mean = static_cast<float>(stats[c].mean);
            const float inv_std = static_cast<float>(1.0 / stats[c].std());
            const float want = valid ? (static_cast<float>(v) - mean) * inv_std : 0.0f;
            ASSERT_EQ(b.x[s * 192 + i], want) << "sample " << b.indices[s] << " element " << i;
            if (with_mask) {
              ASSERT_EQ(b.x_valid[s * 192 + i], valid ? 1 : 0) << i;
            }
            invalid_x += !valid;
          }
          const int32_t label = truth.Find("y")->As<int32_t>()[0];
          EXPECT_EQ(b.y_valid[s], label == 3 ? 0 : 1);
          EXPECT_EQ(b.y[s], label == 3 ? 0.0f : static_cast<float>(label));
          invalid_y += label == 3;
        }
      }
      EXPECT_GE(invalid_x, 64 * 2);  // at least the planted values of channels 0 and 2
      EXPECT_GT(invalid_y, 0);
    }
  }
}

TEST(Loader, StoredDtypeKeepsEveryStoredByteAndMarksNodataInvalidForEveryDtype) {
  for (DType dtype : kEveryDtype) {
    SCOPED_TRACE(DTypeName(dtype));
    const double sentinel = PlantedSentinel(dtype);
    PlantedNodataStore f(dtype);
    const SynthStoreSpec& spec = f.spec;
    LoaderOptions o;
    o.batch_size = 8;
    o.normalize = false;
    o.keep_stored_dtype = true;
    o.validity_mask = true;
    auto loader = OpenOrDie(f.dir, o);
    ASSERT_TRUE(loader);
    const size_t size = DTypeSize(dtype);
    int64_t invalid_x = 0;
    for (const Batch& b : Epoch(*loader)) {
      ASSERT_TRUE(b.x.empty());
      ASSERT_TRUE(b.y.empty());
      ASSERT_EQ(b.x_dtype, dtype);
      ASSERT_EQ(b.y_dtype, DType::kI32);
      ASSERT_EQ(b.x_stored.size(), static_cast<size_t>(b.size) * 192 * size);
      for (int64_t s = 0; s < b.size; ++s) {
        Sample truth = testing::SynthStoreSample(spec, b.indices[s]);
        const Array& x = *truth.Find("x");
        ASSERT_EQ(std::memcmp(b.x_stored.data() + s * 192 * size, x.data.data(), 192 * size), 0)
            << "sample " << b.indices[s];
        for (int64_t i = 0; i < 192; ++i) {
          const int64_t c = i / 64;
          const double v = ElementAsDouble(x, i);
          const bool valid = !((c == 0 && v == sentinel) || (c == 2 && v == 0.0));
          ASSERT_EQ(b.x_valid[s * 192 + i], valid ? 1 : 0) << i;
          invalid_x += !valid;
        }
        int32_t label;
        std::memcpy(&label, b.y_stored.data() + s * 4, 4);
        EXPECT_EQ(label, truth.Find("y")->As<int32_t>()[0]);
        EXPECT_EQ(b.y_valid[s], label == 3 ? 0 : 1);
      }
    }
    EXPECT_GE(invalid_x, 64 * 2);
  }
}

TEST(Loader, StoredDtypeWithNormalizationIsInvalidArgument) {
  Fixture f;
  LoaderOptions o;
  o.keep_stored_dtype = true;
  auto loader = Loader::Open(LocalStorage(), f.dir, o);
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loader.status().message().find("normalize off"), std::string::npos)
      << loader.status().ToString();
}

TEST(Loader, MalformedNodataInTheManifestIsDataLossNamingTheEntry) {
  Fixture f;
  f.manifest.attrs["ingest"]["nodata"] = {{"x", {0, "none", 0}}};
  ASSERT_TRUE(WriteManifest(*LocalStorage(), f.dir, f.manifest).ok());
  auto loader = Loader::Open(LocalStorage(), f.dir, {});
  ASSERT_FALSE(loader.ok());
  EXPECT_EQ(loader.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(loader.status().message().find("attrs.ingest.nodata.x[1]"), std::string::npos)
      << loader.status().message();
}

TEST(Loader, StreamingNormalizationEqualsTheScalarPathBitForBitOnOddShapes) {
  // float32 x without a validity mask goes through the vectorized loop (AVX2 where the CPU has
  // it); with a mask, through the scalar one. Channels of 5 x 7 = 35 values put every channel but
  // the first at an address that is not 16-byte aligned, and NaNs sit in the head, the vector body
  // and the tail.
  SynthStoreSpec spec;
  spec.shape = {3, 5, 7};
  spec.samples = 24;
  spec.edit = [](uint64_t index, Sample& s) {
    auto x = s.Find("x")->As<float>();
    for (size_t i : {size_t{0}, size_t{36}, size_t{50}, size_t{104}})
      if ((index + i) % 2 == 0) x[i] = std::numeric_limits<float>::quiet_NaN();
  };
  Fixture f(spec);
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = ShuffleMode::kNone;
  auto streaming = OpenOrDie(f.dir, o);
  o.validity_mask = true;
  auto scalar = OpenOrDie(f.dir, o);
  const auto a = Epoch(*streaming), b = Epoch(*scalar);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].x.size(), b[k].x.size());
    EXPECT_EQ(std::memcmp(a[k].x.data(), b[k].x.data(), a[k].x.size() * sizeof(float)), 0)
        << "batch " << k;
    for (int64_t s = 0; s < a[k].size; ++s) {
      const auto want = ExpectedX(f, a[k].indices[s]);
      for (int64_t i = 0; i < 105; ++i) ASSERT_NEAR(a[k].x[s * 105 + i], want[i], 1e-4) << i;
    }
  }
}

TEST(Loader, PreadPathOnOtherStoragesMatchesTheMappedLocalPath) {
  // Local stores are read through mmap; any other Storage through pread. Same batches either way.
  Fixture f;
  auto memory = NewMemoryStorage();
  testing::WriteSynthStore(memory, "/mem/store", f.spec);
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 2;
  auto local = OpenOrDie(f.dir, o);
  auto in_memory = Loader::Open(memory, "/mem/store", o);
  ASSERT_TRUE(in_memory.ok()) << in_memory.status().ToString();
  const auto a = Epoch(*local);
  const auto b = Epoch(**in_memory);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices);
    EXPECT_EQ(a[i].x, b[i].x);
  }
}

TEST(Loader, LabelsAndCompressedRecordsDecode) {
  SynthStoreSpec spec;
  spec.classes = 4;
  spec.codec.codec = Codec::kZstd;
  spec.codec.shuffle = true;
  Fixture f(spec);
  LoaderOptions o;
  o.batch_size = 16;
  auto loader = OpenOrDie(f.dir, o);
  for (const Batch& b : Epoch(*loader)) {
    ASSERT_EQ(b.y_shape, (std::vector<int64_t>{1}));
    for (int64_t s = 0; s < b.size; ++s) {
      Sample truth = testing::SynthStoreSample(spec, b.indices[s]);
      EXPECT_EQ(b.y[s], static_cast<float>(truth.Find("y")->As<int32_t>()[0]));
      EXPECT_NEAR(b.x[s * 192 + 100], ExpectedX(f, b.indices[s])[100], 1e-4);
    }
  }
}

}  // namespace
}  // namespace tilestage
