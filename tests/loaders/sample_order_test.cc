// Ordering properties checked exhaustively over world sizes 1..8, without MPI or threads.
#include "loaders/sample_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace tilestage {
namespace {

// Uneven shard sizes so neither shards nor ranks divide evenly.
OrderSpec Spec(ShuffleMode mode, uint64_t world, uint64_t seed = 11) {
  OrderSpec spec;
  spec.shard_records = {7, 13, 1, 9, 10, 4, 17, 2, 8};  // 71 records
  spec.first_index = 100;
  spec.shuffle = mode;
  spec.seed = seed;
  spec.world_size = world;
  spec.block_shards = 3;
  return spec;
}

constexpr ShuffleMode kModes[] = {ShuffleMode::kNone, ShuffleMode::kGlobal, ShuffleMode::kBlock};

std::vector<std::vector<uint64_t>> AllRanks(const SampleOrder& order, uint64_t epoch) {
  std::vector<std::vector<uint64_t>> ranks;
  for (uint64_t r = 0; r < order.spec().world_size; ++r) {
    auto share = order.RankOrder(epoch, r);
    EXPECT_TRUE(share.ok()) << share.status().ToString();
    ranks.push_back(*share);
  }
  return ranks;
}

TEST(SampleOrder, EveryRecordExactlyOncePerEpochBeforePaddingForWorldSizes1To8) {
  for (ShuffleMode mode : kModes)
    for (uint64_t world = 1; world <= 8; ++world)
      for (uint64_t epoch = 0; epoch < 3; ++epoch) {
        auto order = SampleOrder::Create(Spec(mode, world));
        ASSERT_TRUE(order.ok());
        const auto ranks = AllRanks(*order, epoch);
        // Concatenated shares are the padded epoch: the first 71 are a permutation of the
        // records, the rest repeat records already seen.
        std::vector<uint64_t> all;
        for (const auto& r : ranks) all.insert(all.end(), r.begin(), r.end());
        ASSERT_EQ(all.size(), order->share_size() * world);
        std::vector<uint64_t> first(all.begin(), all.begin() + 71);
        std::sort(first.begin(), first.end());
        std::vector<uint64_t> expected(71);
        std::iota(expected.begin(), expected.end(), uint64_t{100});
        EXPECT_EQ(first, expected) << ShuffleModeName(mode) << " world " << world;
        std::set<uint64_t> distinct(all.begin(), all.end());
        EXPECT_EQ(distinct.size(), 71u);
        EXPECT_EQ(all.size() - 71, order->padding());
        EXPECT_LT(order->padding(), world);
      }
}

TEST(SampleOrder, SharesHaveEqualSizeOnEveryRank) {
  for (ShuffleMode mode : kModes)
    for (uint64_t world = 1; world <= 8; ++world) {
      auto order = SampleOrder::Create(Spec(mode, world));
      ASSERT_TRUE(order.ok());
      for (const auto& share : AllRanks(*order, 1))
        EXPECT_EQ(share.size(), (71 + world - 1) / world);
    }
}

TEST(SampleOrder, SameInputsSameOrderAndEpochsDiffer) {
  for (ShuffleMode mode : {ShuffleMode::kGlobal, ShuffleMode::kBlock})
    for (uint64_t world = 1; world <= 8; ++world) {
      auto a = SampleOrder::Create(Spec(mode, world));
      auto b = SampleOrder::Create(Spec(mode, world));
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(AllRanks(*a, 2), AllRanks(*b, 2));
      EXPECT_NE(EpochPermutation(a->spec(), 0), EpochPermutation(a->spec(), 1));
      EXPECT_NE(EpochPermutation(Spec(mode, world, 1), 0), EpochPermutation(Spec(mode, world, 2), 0))
          << "seed must matter";
    }
}

TEST(SampleOrder, NoShuffleIsStoreOrder) {
  auto order = SampleOrder::Create(Spec(ShuffleMode::kNone, 1));
  ASSERT_TRUE(order.ok());
  auto share = order->RankOrder(5, 0);
  ASSERT_TRUE(share.ok());
  std::vector<uint64_t> expected(71);
  std::iota(expected.begin(), expected.end(), uint64_t{100});
  EXPECT_EQ(*share, expected);
}

TEST(SampleOrder, ResumeYieldsExactlyTheRemainingSequence) {
  for (ShuffleMode mode : kModes)
    for (uint64_t world = 1; world <= 8; ++world) {
      auto order = SampleOrder::Create(Spec(mode, world));
      ASSERT_TRUE(order.ok());
      for (uint64_t rank = 0; rank < world; ++rank) {
        auto full = order->RankOrder(3, rank);
        ASSERT_TRUE(full.ok());
        for (uint64_t from = 0; from <= full->size(); ++from) {
          auto rest = order->RankOrder(3, rank, from);
          ASSERT_TRUE(rest.ok());
          EXPECT_EQ(*rest, std::vector<uint64_t>(full->begin() + from, full->end()));
        }
      }
    }
}

TEST(SampleOrder, ResumePastTheEndIsInvalidArgument) {
  auto order = SampleOrder::Create(Spec(ShuffleMode::kGlobal, 4));
  ASSERT_TRUE(order.ok());
  auto rest = order->RankOrder(0, 0, order->share_size() + 1);
  EXPECT_EQ(rest.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(order->RankOrder(0, 4).status().code(), StatusCode::kInvalidArgument);
}

// Most shards "open" (partly read) at any point of the permutation: the number of shards a reader
// must keep at hand. Block shuffle bounds it by the window; a global shuffle does not.
size_t MaxOpenShards(const OrderSpec& spec, const std::vector<uint64_t>& perm) {
  std::vector<uint64_t> shard_of;
  for (size_t s = 0; s < spec.shard_records.size(); ++s)
    shard_of.insert(shard_of.end(), spec.shard_records[s], s);
  std::vector<uint64_t> seen(spec.shard_records.size(), 0);
  std::set<uint64_t> open;
  size_t max_open = 0;
  for (uint64_t index : perm) {
    const uint64_t s = shard_of[index - spec.first_index];
    open.insert(s);
    if (++seen[s] == spec.shard_records[s]) open.erase(s);
    max_open = std::max(max_open, open.size() + (seen[s] == spec.shard_records[s] ? 1 : 0));
  }
  return max_open;
}

TEST(SampleOrder, BlockShuffleKeepsReadsWithinAWindowOfShards) {
  for (uint64_t epoch = 0; epoch < 20; ++epoch) {
    OrderSpec spec = Spec(ShuffleMode::kBlock, 1, epoch);
    EXPECT_LE(MaxOpenShards(spec, EpochPermutation(spec, epoch)), 3u) << "epoch " << epoch;
  }
  // The measure does tell shuffles apart: a global shuffle keeps nearly every shard open.
  OrderSpec global = Spec(ShuffleMode::kGlobal, 1);
  EXPECT_GT(MaxOpenShards(global, EpochPermutation(global, 0)), 5u);
}

TEST(SampleOrder, BlockShuffleStillMixesRecordsInsideAWindow) {
  OrderSpec spec = Spec(ShuffleMode::kBlock, 1);
  const auto perm = EpochPermutation(spec, 0);
  EXPECT_FALSE(std::is_sorted(perm.begin(), perm.end()));
  // Shard order is shuffled too: across seeds the first record is not always from shard 0.
  std::set<uint64_t> firsts;
  for (uint64_t seed = 0; seed < 20; ++seed)
    firsts.insert(EpochPermutation(Spec(ShuffleMode::kBlock, 1, seed), 0)[0]);
  EXPECT_GT(firsts.size(), 5u);
}

TEST(SampleOrder, GlobalShuffleIsRoughlyUniform) {
  // Position of record 100 over many epochs: each of the 71 positions should be hit about
  // 2000/71 times; a chi-square over 70 degrees of freedom stays far below 140 for a fair
  // shuffle (p < 1e-6 otherwise).
  OrderSpec spec = Spec(ShuffleMode::kGlobal, 1);
  std::vector<double> hits(71, 0);
  const int epochs = 2000;
  for (int e = 0; e < epochs; ++e) {
    const auto perm = EpochPermutation(spec, e);
    hits[std::find(perm.begin(), perm.end(), 100) - perm.begin()] += 1;
  }
  const double expected = epochs / 71.0;
  double chi2 = 0;
  for (double h : hits) chi2 += (h - expected) * (h - expected) / expected;
  EXPECT_LT(chi2, 140.0);
}

TEST(SampleOrder, ZeroRecordsIsInvalidArgument) {
  OrderSpec spec;
  spec.shard_records = {0, 0};
  auto order = SampleOrder::Create(spec);
  ASSERT_FALSE(order.ok());
  EXPECT_EQ(order.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(order.status().message().find("zero records"), std::string::npos);
  spec.shard_records = {3};
  spec.world_size = 0;
  EXPECT_EQ(SampleOrder::Create(spec).status().code(), StatusCode::kInvalidArgument);
}

TEST(SampleOrder, MoreRanksThanRecordsPadsEveryRankWithOneSample) {
  OrderSpec spec;
  spec.shard_records = {3};
  spec.world_size = 8;
  auto order = SampleOrder::Create(spec);
  ASSERT_TRUE(order.ok());
  std::map<uint64_t, int> count;
  for (const auto& share : AllRanks(*order, 0)) {
    ASSERT_EQ(share.size(), 1u);
    ++count[share[0]];
  }
  EXPECT_EQ(count.size(), 3u);
}

}  // namespace
}  // namespace tilestage
