// Ordering properties checked exhaustively over world sizes 1..8 dividing the global batch, for
// each shuffle mode, without MPI.
#include "loaders/sample_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <thread>

namespace tilestage {
namespace {

constexpr uint64_t kRecords = 71;
constexpr uint64_t kBatch = 24;  // divided by W = 1, 2, 3, 4, 6, 8

// Uneven shard sizes so neither shards nor batches divide evenly; 4 canonical parts so that
// W = 8 shares parts, W = 3 straddles them and W = 1, 2, 4 own whole parts.
OrderSpec Spec(ShuffleMode mode, uint64_t seed = 11, uint64_t batch = kBatch) {
  OrderSpec spec;
  spec.shard_records = {7, 13, 1, 9, 10, 4, 17, 2, 8};  // 71 records
  spec.first_index = 100;
  spec.shuffle = mode;
  spec.seed = seed;
  spec.global_batch = batch;
  spec.block_shards = 3;
  spec.block_parts = 4;
  return spec;
}

constexpr ShuffleMode kModes[] = {ShuffleMode::kNone, ShuffleMode::kGlobal, ShuffleMode::kBlock};

std::vector<uint64_t> Worlds(uint64_t batch) {
  std::vector<uint64_t> out;
  for (uint64_t w = 1; w <= 8; ++w)
    if (batch % w == 0) out.push_back(w);
  return out;
}

SampleOrder Make(const OrderSpec& spec) {
  auto order = SampleOrder::Create(spec);
  EXPECT_TRUE(order.ok()) << order.status().ToString();
  return *order;
}

std::vector<uint64_t> Slice(const std::vector<uint64_t>& v, uint64_t begin, uint64_t n) {
  return {v.begin() + static_cast<ptrdiff_t>(begin), v.begin() + static_cast<ptrdiff_t>(begin + n)};
}

TEST(SampleOrder, UnionOfTheRanksBatchIsTheSingleRankBatchAtEveryWorldSize) {
  for (ShuffleMode mode : kModes)
    for (uint64_t epoch = 0; epoch < 3; ++epoch) {
      const SampleOrder order = Make(Spec(mode));
      const std::vector<uint64_t> one = *order.RankOrder(epoch, 0, 1);
      ASSERT_EQ(one, order.EpochBatches(epoch));
      for (uint64_t world : Worlds(kBatch)) {
        std::vector<std::vector<uint64_t>> ranks;
        for (uint64_t r = 0; r < world; ++r) ranks.push_back(*order.RankOrder(epoch, r, world));
        const uint64_t part = kBatch / world;
        for (uint64_t k = 0; k < order.batches_per_epoch(); ++k) {
          std::multiset<uint64_t> joined;
          for (const auto& rank : ranks) {
            const auto mine = Slice(rank, k * part, part);
            joined.insert(mine.begin(), mine.end());
          }
          const auto want = Slice(one, k * kBatch, kBatch);
          EXPECT_EQ(joined, std::multiset<uint64_t>(want.begin(), want.end()))
              << ShuffleModeName(mode) << " world " << world << " batch " << k;
        }
      }
    }
}

TEST(SampleOrder, EveryRecordOncePerEpochBeforePaddingWithEqualBatchesPerRank) {
  for (ShuffleMode mode : kModes)
    for (uint64_t epoch = 0; epoch < 3; ++epoch) {
      const SampleOrder order = Make(Spec(mode));
      EXPECT_EQ(order.batches_per_epoch(), 3u);  // ceil(71 / 24)
      EXPECT_EQ(order.padding(), 1u);  // 72 - 71
      const auto layout = EpochPermutation(order.spec(), epoch);
      std::vector<uint64_t> sorted = layout;
      std::sort(sorted.begin(), sorted.end());
      std::vector<uint64_t> expected(kRecords);
      std::iota(expected.begin(), expected.end(), uint64_t{100});
      EXPECT_EQ(sorted, expected) << ShuffleModeName(mode);
      // The batches hold every record, and only padding repeats one.
      const auto batches = order.EpochBatches(epoch);
      ASSERT_EQ(batches.size(), 72u);
      std::map<uint64_t, int> count;
      for (uint64_t i : batches) ++count[i];
      EXPECT_EQ(count.size(), kRecords);
      for (uint64_t world : Worlds(kBatch))
        for (uint64_t r = 0; r < world; ++r)
          EXPECT_EQ(order.RankOrder(epoch, r, world)->size(), 3 * kBatch / world);
    }
}

TEST(SampleOrder, PaddingDoesNotDependOnTheWorldSizeAndDropLastDropsIt) {
  for (ShuffleMode mode : kModes) {
    OrderSpec spec = Spec(mode, 11, 16);  // 71 = 4 * 16 + 7: 9 padded samples
    const SampleOrder padded = Make(spec);
    EXPECT_EQ(padded.padding(), 9u);
    spec.drop_last = true;
    const SampleOrder dropped = Make(spec);
    EXPECT_EQ(dropped.batches_per_epoch(), 4u);
    EXPECT_EQ(dropped.padding(), 0u);
    const auto batches = dropped.EpochBatches(1);
    EXPECT_EQ(std::set<uint64_t>(batches.begin(), batches.end()).size(), 64u)
        << "drop_last repeats nothing";
  }
}

TEST(SampleOrder, WorldSizeNotDividingTheGlobalBatchIsInvalidArgument) {
  const SampleOrder order = Make(Spec(ShuffleMode::kGlobal));
  auto r = order.RankOrder(0, 0, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("global batch of 24 samples cannot be split evenly over 5 "
                                      "ranks"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(order.RankOrder(0, 4, 4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(order.RankOrder(0, 0, 4, 4).status().code(), StatusCode::kInvalidArgument);
}

TEST(SampleOrder, ResumeFromEveryPositionOnAnotherWorldSizeContinuesTheSingleRankSequence) {
  for (ShuffleMode mode : kModes) {
    const SampleOrder order = Make(Spec(mode, 3, 12));  // 6 batches of 12: more positions
    const uint64_t batches = order.batches_per_epoch();
    for (uint64_t epoch = 0; epoch < 2; ++epoch) {
      const auto reference = order.EpochBatches(epoch);
      for (uint64_t w1 : Worlds(12))
        for (uint64_t w2 : Worlds(12))
          for (uint64_t stop = 0; stop <= batches; ++stop) {
            // Batches before `stop` come from w1 ranks, the rest from w2 ranks resumed there.
            std::vector<std::multiset<uint64_t>> seen(batches);
            for (uint64_t r = 0; r < w1; ++r) {
              const auto mine = *order.RankOrder(epoch, r, w1);
              for (uint64_t k = 0; k < stop; ++k)
                for (uint64_t i : Slice(mine, k * (12 / w1), 12 / w1)) seen[k].insert(i);
            }
            for (uint64_t r = 0; r < w2; ++r) {
              const auto mine = *order.RankOrder(epoch, r, w2, stop);
              ASSERT_EQ(mine.size(), (batches - stop) * (12 / w2));
              for (uint64_t k = stop; k < batches; ++k)
                for (uint64_t i : Slice(mine, (k - stop) * (12 / w2), 12 / w2)) seen[k].insert(i);
            }
            for (uint64_t k = 0; k < batches; ++k) {
              const auto want = Slice(reference, k * 12, 12);
              ASSERT_EQ(seen[k], std::multiset<uint64_t>(want.begin(), want.end()))
                  << ShuffleModeName(mode) << " " << w1 << " -> " << w2 << " ranks at batch "
                  << stop << ", batch " << k;
            }
          }
    }
  }
}

TEST(SampleOrder, OrderDoesNotDependOnTheThreadComputingIt) {
  for (ShuffleMode mode : kModes) {
    const SampleOrder order = Make(Spec(mode));
    const auto reference = order.EpochBatches(4);
    std::vector<std::vector<uint64_t>> got(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t)
      threads.emplace_back([&, t] { got[t] = Make(Spec(mode)).EpochBatches(4); });
    for (auto& t : threads) t.join();
    for (const auto& g : got) EXPECT_EQ(g, reference) << ShuffleModeName(mode);
  }
}

TEST(SampleOrder, SameInputsSameOrderAndEpochsAndSeedsDiffer) {
  for (ShuffleMode mode : {ShuffleMode::kGlobal, ShuffleMode::kBlock}) {
    EXPECT_EQ(Make(Spec(mode)).EpochBatches(2), Make(Spec(mode)).EpochBatches(2));
    EXPECT_NE(EpochPermutation(Spec(mode), 0), EpochPermutation(Spec(mode), 1));
    EXPECT_NE(EpochPermutation(Spec(mode, 1), 0), EpochPermutation(Spec(mode, 2), 0))
        << "seed must matter";
  }
}

TEST(SampleOrder, NoShuffleIsStoreOrderPaddedFromTheStart) {
  const SampleOrder order = Make(Spec(ShuffleMode::kNone));
  auto seq = order.RankOrder(5, 0, 1);
  ASSERT_TRUE(seq.ok());
  std::vector<uint64_t> expected(kRecords);
  std::iota(expected.begin(), expected.end(), uint64_t{100});
  expected.push_back(100);
  EXPECT_EQ(*seq, expected);
}

// Shard of each record of Spec().
std::vector<uint64_t> ShardOf(const OrderSpec& spec) {
  std::vector<uint64_t> shard_of;
  for (size_t s = 0; s < spec.shard_records.size(); ++s)
    shard_of.insert(shard_of.end(), spec.shard_records[s], s);
  return shard_of;
}

// Most shards "open" (partly read) at any point of `seq`, counting a shard as open from its
// first to its last record in seq: the shards a reader must keep at hand.
size_t MaxOpenShards(const OrderSpec& spec, const std::vector<uint64_t>& seq) {
  const auto shard_of = ShardOf(spec);
  std::map<uint64_t, std::pair<size_t, size_t>> span;  // shard -> first, last position
  for (size_t i = 0; i < seq.size(); ++i) {
    const uint64_t s = shard_of[seq[i] - spec.first_index];
    auto [it, fresh] = span.try_emplace(s, i, i);
    it->second.second = i;
  }
  size_t max_open = 0;
  for (size_t i = 0; i < seq.size(); ++i) {
    size_t open = 0;
    for (const auto& [s, fl] : span) open += fl.first <= i && i <= fl.second;
    max_open = std::max(max_open, open);
  }
  return max_open;
}

TEST(SampleOrder, BlockShuffleKeepsEachRanksReadsWithinAWindowOfItsParts) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    OrderSpec spec = Spec(ShuffleMode::kBlock, seed);
    spec.drop_last = true;  // the padding's re-reads would reopen shards
    const SampleOrder order = Make(spec);
    // W = 4 = parts: each rank reads one part, one window (3 shards, +1 where a part boundary
    // cuts a shard) at a time.
    for (uint64_t r = 0; r < 4; ++r)
      EXPECT_LE(MaxOpenShards(spec, *order.RankOrder(seed, r, 4)), 4u) << "seed " << seed;
  }
  // The measure does tell shuffles apart: a global shuffle keeps nearly every shard open.
  OrderSpec global = Spec(ShuffleMode::kGlobal);
  global.drop_last = true;
  EXPECT_GT(MaxOpenShards(global, *Make(global).RankOrder(0, 0, 1)), 6u);
}

TEST(SampleOrder, BlockShuffleStillMixesRecordsAndShards) {
  const auto perm = EpochPermutation(Spec(ShuffleMode::kBlock), 0);
  EXPECT_FALSE(std::is_sorted(perm.begin(), perm.end()));
  std::set<uint64_t> firsts;
  for (uint64_t seed = 0; seed < 20; ++seed)
    firsts.insert(EpochPermutation(Spec(ShuffleMode::kBlock, seed), 0)[0]);
  EXPECT_GT(firsts.size(), 5u);
}

TEST(SampleOrder, GlobalShuffleIsRoughlyUniform) {
  // Position of record 100 over many epochs: each of the 71 positions should be hit about
  // 2000/71 times; a chi-square over 70 degrees of freedom stays far below 140 for a fair
  // shuffle (p < 1e-6 otherwise).
  const OrderSpec spec = Spec(ShuffleMode::kGlobal);
  std::vector<double> hits(kRecords, 0);
  const int epochs = 2000;
  for (int e = 0; e < epochs; ++e) {
    const auto perm = EpochPermutation(spec, e);
    hits[std::find(perm.begin(), perm.end(), 100) - perm.begin()] += 1;
  }
  const double expected = epochs / double(kRecords);
  double chi2 = 0;
  for (double h : hits) chi2 += (h - expected) * (h - expected) / expected;
  EXPECT_LT(chi2, 140.0);
}

TEST(SampleOrder, ZeroRecordsOrABatchLargerThanTheRecordsIsInvalidArgument) {
  OrderSpec spec;
  spec.shard_records = {0, 0};
  auto order = SampleOrder::Create(spec);
  ASSERT_FALSE(order.ok());
  EXPECT_EQ(order.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(order.status().message().find("zero records"), std::string::npos);
  spec.shard_records = {3};
  spec.global_batch = 4;
  order = SampleOrder::Create(spec);
  ASSERT_FALSE(order.ok());
  EXPECT_NE(order.status().message().find("global batch of 4 samples is larger than the 3"),
            std::string::npos)
      << order.status().message();
  spec.global_batch = 0;
  EXPECT_EQ(SampleOrder::Create(spec).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tilestage
