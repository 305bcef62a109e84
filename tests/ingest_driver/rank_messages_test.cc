// The messages the ranks of an ingest exchange: every field survives encoding bit for bit, and a
// damaged or short message is an Internal error naming the sender and the field.
#include "ingest/rank_messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace tilestage::ingest {
namespace {

using ::testing::HasSubstr;

bool SameBits(const ChannelStats& a, const ChannelStats& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

RankReport SampleReport() {
  RankReport r;
  r.shards = {{"r0001-shard-000000.tss", 12, 4096 * 13, "0123456789abcdef"},
              {"r0001-shard-000001.tss", 1, 8192, "fedcba9876543210"}};
  r.first_item = 7;
  r.tiles_per_item = {3, 0};
  for (int i = 0; i < 4; ++i) {  // 2 items x 2 channels; values a text round trip would round
    ChannelStats s;
    s.Add(0.1 * (i + 1));
    s.Add(1.0 / 3.0);
    s.AddInvalid(2);
    r.x_stats.push_back(s);
  }
  r.x_stats[3] = ChannelStats();  // empty: infinite extremes
  r.y_stats = {r.x_stats[0], r.x_stats[1]};
  r.sources = {{"/data/a b.nc", 123456789012ull, 0xdeadbeefcafef00dull}};
  r.considered = 10;
  r.written = 3;
  r.dropped = 7;
  r.raw_bytes = 1ull << 40;
  return r;
}

TEST(RankMessages, RankReportSurvivesEncodingBitForBit) {
  const RankReport r = SampleReport();
  auto back = DecodeRankReport(EncodeRankReport(r), 1);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->status.ok());
  ASSERT_EQ(back->shards.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back->shards[i].file, r.shards[i].file);
    EXPECT_EQ(back->shards[i].records, r.shards[i].records);
    EXPECT_EQ(back->shards[i].bytes, r.shards[i].bytes);
    EXPECT_EQ(back->shards[i].hash, r.shards[i].hash);
  }
  EXPECT_EQ(back->first_item, 7);
  EXPECT_EQ(back->tiles_per_item, r.tiles_per_item);
  ASSERT_EQ(back->x_stats.size(), r.x_stats.size());
  for (size_t i = 0; i < r.x_stats.size(); ++i) EXPECT_TRUE(SameBits(back->x_stats[i], r.x_stats[i]));
  ASSERT_EQ(back->y_stats.size(), 2u);
  EXPECT_TRUE(SameBits(back->y_stats[1], r.y_stats[1]));
  ASSERT_EQ(back->sources.size(), 1u);
  EXPECT_EQ(back->sources[0].ToJson(),
            (nlohmann::json{{"path", "/data/a b.nc"}, {"bytes", 123456789012ull},
                            {"xxh3", "deadbeefcafef00d"}}));
  EXPECT_EQ(back->considered, 10u);
  EXPECT_EQ(back->written, 3u);
  EXPECT_EQ(back->dropped, 7u);
  EXPECT_EQ(back->raw_bytes, 1ull << 40);
}

TEST(RankMessages, FailedRankReportCarriesOnlyItsError) {
  RankReport r = SampleReport();
  r.status = IOError("/out/r0001-shard-000000.tss: disk full");
  const std::string bytes = EncodeRankReport(r);
  auto back = DecodeRankReport(bytes, 1);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->status.code(), StatusCode::kIOError);
  EXPECT_EQ(back->status.message(), r.status.message());
  EXPECT_TRUE(back->shards.empty());
  EXPECT_LT(bytes.size(), 100u);
}

TEST(RankMessages, TruncatedRankReportIsInternalNamingRankAndField) {
  const std::string bytes = EncodeRankReport(SampleReport());
  for (size_t cut : {size_t{0}, size_t{3}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    auto back = DecodeRankReport(bytes.substr(0, cut), 3);
    ASSERT_FALSE(back.ok()) << "cut at " << cut;
    EXPECT_EQ(back.status().code(), StatusCode::kInternal);
    EXPECT_THAT(back.status().message(), HasSubstr("ingest report from rank 3"));
    EXPECT_THAT(back.status().message(), HasSubstr("message ends inside"));
  }
  auto longer = DecodeRankReport(bytes + "x", 2);
  ASSERT_FALSE(longer.ok());
  EXPECT_THAT(longer.status().message(), HasSubstr("1 bytes left over"));
}

TEST(RankMessages, HugeCountIsRefusedBeforeAllocating) {
  std::string bytes = EncodeRankReport(SampleReport());
  // The shard count follows the status (code, message length, empty message).
  const uint64_t huge = std::numeric_limits<uint64_t>::max() / 2;
  std::memcpy(bytes.data() + sizeof(int32_t) + sizeof(uint64_t), &huge, sizeof huge);
  auto back = DecodeRankReport(bytes, 0);
  ASSERT_FALSE(back.ok());
  EXPECT_THAT(back.status().message(), HasSubstr("ends inside shards"));
}

TEST(RankMessages, OutcomeAndOutputDecisionSurviveEncoding) {
  IngestOutcome o;
  o.status = FailedPrecondition("no tiles written to /out");
  o.summary.out = "/out";
  o.summary.kind = "netcdf";
  o.summary.items = 5;
  o.summary.tiles_written = 9;
  o.summary.compression_ratio = 1.0 / 3.0;
  o.summary.elapsed_s = 0.25;
  o.summary.ranks = 2;
  o.summary.threads = 4;
  o.summary.items_without_tiles = {"a.nc", "b.nc"};
  auto back = DecodeIngestOutcome(EncodeIngestOutcome(o));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(back->status.message(), o.status.message());
  EXPECT_EQ(back->summary.ToJson(), o.summary.ToJson());

  auto decision = DecodeOutputDecision(EncodeOutputDecision({Status::Ok(), "/out/.staging"}));
  ASSERT_TRUE(decision.ok());
  EXPECT_TRUE(decision->status.ok());
  EXPECT_EQ(decision->dir, "/out/.staging");
  auto short_decision = DecodeOutputDecision("ab");
  EXPECT_EQ(short_decision.status().code(), StatusCode::kInternal);
  EXPECT_THAT(short_decision.status().message(), HasSubstr("output decision from rank 0"));
}

}  // namespace
}  // namespace tilestage::ingest
