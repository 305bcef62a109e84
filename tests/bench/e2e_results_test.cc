// The results document built from hand-made phase results, read back by the report's parser.
#include "bench/e2e/e2e_results.h"

#include <gtest/gtest.h>

namespace tilestage::bench {
namespace {

E2ePhaseResults Measured(bool peers) {
  E2ePhaseResults r;
  r.limits.memcpy_gb_per_s = 10;
  r.limits.sgemm_gflop_per_s = 100;
  r.limits.read = {1.0, 4.0, 2e6, 500.0};
  for (size_t i = 0; i < 3; ++i) {
    IngestFigures& f = r.ingest.modality[i];
    f.inputs = {"/in/" + std::to_string(i)};
    f.seconds = 2.0 + double(i);
    f.input_bytes = 4e6;
    f.tiles = 100;
    f.step = Json{{"tiles_written", 100}};
  }
  if (peers) {
    r.peer_ingest = PeerIngestResult{};
    for (auto& p : r.peer_ingest->modality) {
      p = Json{{"input_bytes", 4e6}, {"seconds", 8.0}, {"tiles", 50}};
    }
    r.loader.peer_loader = Json{{"samples", 100}, {"seconds", 10.0}};
    r.loader.python_loader = Json{{"samples", 200}, {"seconds", 5.0}};
    r.loader.peer_train = Json{{"samples_per_s", 5.0}};
  }
  r.staging = {"/out/node_local/node0", 0.5, 1e9, Json{{"seconds", 0.5}}};
  r.train.figures.samples_per_s = 20;
  r.train.figures.allreduce_s = 0.25;
  r.train.flops_per_sample = 1e9;
  r.train.allreduce_bytes = 5e8;
  r.train.step = Json{{"records", Json::array()}};
  r.peer_staging = Json{{"stage_s", 0.8}, {"seconds", 2.0}, {"bytes", 1e9}};
  r.loader.load =
      Json{{"samples", 200},
           {"wall_s", 4.0},
           {"per_rank",
            Json::array({Json{{"stored_bytes_read", 2e8}}, Json{{"stored_bytes_read", 2e8}}})}};
  r.stalls.samples = 200;
  r.stalls.rounds = {{1.0, 1.2, 1.1}, {1.0, 1.3, 1.6}, {1.1, 1.2, 1.5}};
  r.stalls.summary = *SummarizeStallRounds(r.stalls.rounds);
  r.stalls.cold_step = Json{{"samples", 200}};
  r.stalls.cached_step = Json{{"samples", 200}};
  return r;
}

const StageResult* Find(const E2eResults& r, const std::string& name, const std::string& unit) {
  for (const auto& s : r.stages) {
    if (s.name == name && s.unit == unit) return &s;
  }
  return nullptr;
}

Result<E2eResults> RoundTrip(const E2ePhaseResults& r, bool peers) {
  const Json time_to_train = {{"run_s", 10.0},
                              {"staging_s", 1.0},
                              {"training_s", 6.0},
                              {"evaluation_s", 1.0},
                              {"epoch_s", {3.0, 3.0}}};
  return E2eResultsFromJson(
      E2eResultsJson(r, Json{{"host", "node1"}}, Json{{"command", "tilestage bench e2e"}},
                     time_to_train, peers),
      "results.json");
}

TEST(E2eResults, EveryStageRowFollowsFromThePhaseResults) {
  auto parsed = RoundTrip(Measured(true), true);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->stages.size(), 13u);
  const StageResult* staging = Find(*parsed, "staging", "GB/s");
  ASSERT_NE(staging, nullptr);
  // The stager run beside cp, not the timed staging (0.5 s): both met the same disk.
  EXPECT_DOUBLE_EQ(staging->tilestage.rate, 1.0 / 0.8);
  EXPECT_DOUBLE_EQ(staging->peer->rate, 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(staging->limit->rate, 4.0);
  const StageResult* netcdf = Find(*parsed, "ingest netcdf", "MB/s");
  ASSERT_NE(netcdf, nullptr);
  EXPECT_DOUBLE_EQ(netcdf->tilestage.rate, 4.0 / 3.0);
  EXPECT_EQ(netcdf->peer->name, "xarray read only");
  EXPECT_DOUBLE_EQ(netcdf->limit->rate, 500.0);
  const StageResult* loader_gbs = Find(*parsed, "loader", "GB/s");
  ASSERT_NE(loader_gbs, nullptr);
  EXPECT_DOUBLE_EQ(loader_gbs->tilestage.rate, 0.4 / 4.0);
  const StageResult* python = Find(*parsed, "loader (Python)", "samples/s");
  ASSERT_NE(python, nullptr);
  EXPECT_DOUBLE_EQ(python->tilestage.rate, 200.0 / 5.0);
  EXPECT_DOUBLE_EQ(python->peer->rate, 100.0 / 10.0);
  const StageResult* gflops = Find(*parsed, "training", "GFLOP/s");
  ASSERT_NE(gflops, nullptr);
  EXPECT_DOUBLE_EQ(gflops->tilestage.rate, 20.0);
  EXPECT_DOUBLE_EQ(gflops->limit->rate, 100.0);
  const StageResult* allreduce = Find(*parsed, "allreduce", "GB/s");
  ASSERT_NE(allreduce, nullptr);
  EXPECT_DOUBLE_EQ(allreduce->tilestage.rate, 0.5 / 0.25);
  EXPECT_EQ(parsed->system["limits"]["sgemm_gflop_per_s"], 100.0);
  EXPECT_EQ(parsed->system["python_peers"], true);
}

TEST(E2eResults, WithoutPeersOnlyTheCopyPeerRemains) {
  auto parsed = RoundTrip(Measured(false), false);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  for (const auto& s : parsed->stages) {
    if (s.name == "staging") {
      EXPECT_TRUE(s.peer.has_value());
    } else {
      EXPECT_FALSE(s.peer.has_value()) << s.name << " " << s.unit;
    }
  }
  const Json steps = E2eStepsJson(Measured(false));
  EXPECT_FALSE(steps.contains("peer_loader"));
  EXPECT_FALSE(steps.contains("python_loader"));
  EXPECT_FALSE(steps.contains("peer_ingest_geotiff"));
  EXPECT_TRUE(steps.contains("stalls_cold"));
}

TEST(E2eResults, UnknownModelFlopsAndNoAllreduceDropTheirRows) {
  E2ePhaseResults r = Measured(false);
  r.train.flops_per_sample = 0;
  r.train.figures.allreduce_s = 0;
  auto parsed = RoundTrip(r, false);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(Find(*parsed, "training", "GFLOP/s"), nullptr);
  EXPECT_EQ(Find(*parsed, "allreduce", "GB/s"), nullptr);
  EXPECT_EQ(parsed->stages.size(), 10u);
}

TEST(E2eResults, DataStallsAreTheMediansWithEveryRoundAndTheNoiseReachesTheTable) {
  auto parsed = RoundTrip(Measured(false), false);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->data_stalls);
  const DataStalls& d = *parsed->data_stalls;
  EXPECT_DOUBLE_EQ(d.synthetic_s, 1.0);
  EXPECT_DOUBLE_EQ(d.cached_s, 1.2);
  EXPECT_DOUBLE_EQ(d.cold_s, 1.5);
  EXPECT_EQ(d.rounds.size(), 3u);
  // Round 1's cold run (1.1 s) beat its cached run (1.2 s): flagged, the medians untouched.
  ASSERT_EQ(d.summary.noise.size(), 1u);
  EXPECT_NE(d.summary.noise[0].find("cold run faster than cached in 1 of 3"), std::string::npos);
  EXPECT_DOUBLE_EQ(d.fetch_stall_s, 1.5 - 1.2);
  const std::string table = FormatE2eTable(*parsed, "tiny", "/out");
  EXPECT_NE(table.find("median of 3 round(s)"), std::string::npos) << table;
  EXPECT_NE(table.find("noise: cold run faster than cached"), std::string::npos) << table;
  EXPECT_NE(table.find("staging/run"), std::string::npos);
}

TEST(E2eResults, OrderedRoundsPrintNoNoiseLine) {
  E2ePhaseResults r = Measured(false);
  r.stalls.rounds = {{1.0, 1.2, 1.4}};
  r.stalls.summary = *SummarizeStallRounds(r.stalls.rounds);
  auto parsed = RoundTrip(r, false);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(FormatE2eTable(*parsed, "tiny", "/out").find("noise:"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::bench
