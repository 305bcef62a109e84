#include "bench/e2e/data_stalls.h"

#include <gtest/gtest.h>

namespace tilestage::bench {
namespace {

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(DataStalls, OrderedRoundsGiveMediansRangeAndNoNoise) {
  auto s = SummarizeStallRounds({{1.0, 1.5, 2.0}, {1.2, 1.4, 2.5}, {1.1, 1.6, 2.1}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rounds, 3);
  EXPECT_DOUBLE_EQ(s->median.synthetic_s, 1.1);
  EXPECT_DOUBLE_EQ(s->median.cached_s, 1.5);
  EXPECT_DOUBLE_EQ(s->median.cold_s, 2.1);
  EXPECT_DOUBLE_EQ(s->min.cached_s, 1.4);
  EXPECT_DOUBLE_EQ(s->max.cold_s, 2.5);
  EXPECT_TRUE(s->noise.empty()) << Joined(s->noise);
}

TEST(DataStalls, EvenRoundCountTakesTheMeanOfTheMiddleTwo) {
  auto s = SummarizeStallRounds({{1, 2, 3}, {3, 4, 5}});
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->median.synthetic_s, 2.0);
  EXPECT_DOUBLE_EQ(s->median.cached_s, 3.0);
  EXPECT_DOUBLE_EQ(s->median.cold_s, 4.0);
}

TEST(DataStalls, ColdFasterThanCachedInOneRoundIsFlaggedWithoutTouchingTheMedians) {
  auto s = SummarizeStallRounds({{1.0, 1.5, 2.0}, {1.0, 1.5, 1.4}, {1.0, 1.5, 2.2}});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->noise.size(), 1u) << Joined(s->noise);
  EXPECT_NE(s->noise[0].find("cold run faster than cached in 1 of 3 round(s)"), std::string::npos)
      << s->noise[0];
  // The medians still hold the order, so the stall is not zeroed.
  EXPECT_EQ(s->noise[0].find("reported as 0"), std::string::npos) << s->noise[0];
  EXPECT_DOUBLE_EQ(s->median.cold_s, 2.0);
  EXPECT_DOUBLE_EQ(s->min.cold_s, 1.4);
}

TEST(DataStalls, ColdMedianBelowCachedSaysTheFetchStallIsReportedAsZero) {
  auto s = SummarizeStallRounds({{1.0, 1.5, 1.4}, {1.0, 1.6, 1.5}, {1.0, 1.6, 1.7}});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->noise.size(), 1u) << Joined(s->noise);
  const std::string& n = s->noise[0];
  EXPECT_NE(n.find("cold run faster than cached in 2 of 3 round(s)"), std::string::npos) << n;
  EXPECT_NE(n.find("medians cold 1.500 s < cached 1.600 s"), std::string::npos) << n;
  EXPECT_NE(n.find("fetch stall reported as 0"), std::string::npos) << n;
  // Measured values are kept as measured.
  EXPECT_DOUBLE_EQ(s->median.cold_s, 1.5);
  EXPECT_DOUBLE_EQ(s->median.cached_s, 1.6);
}

TEST(DataStalls, CachedFasterThanSyntheticIsFlaggedAsAPreprocessingStallOfZero) {
  auto s = SummarizeStallRounds({{2.0, 1.9, 3.0}});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->noise.size(), 1u) << Joined(s->noise);
  EXPECT_NE(s->noise[0].find("cached run faster than synthetic in 1 of 1 round(s)"),
            std::string::npos);
  EXPECT_NE(s->noise[0].find("preprocessing stall reported as 0"), std::string::npos);
}

TEST(DataStalls, BothOrderingsViolatedGiveTwoLines) {
  auto s = SummarizeStallRounds({{2.0, 1.9, 1.8}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->noise.size(), 2u) << Joined(s->noise);
}

TEST(DataStalls, NoRoundsIsInvalidArgument) {
  auto s = SummarizeStallRounds({});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST(DataStalls, NonPositiveTimeNamesTheRoundAndTheRun) {
  auto s = SummarizeStallRounds({{1, 2, 3}, {1, 0, 3}});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("round 2 cached_s"), std::string::npos)
      << s.status().ToString();
}

}  // namespace
}  // namespace tilestage::bench
