// `tilestage bench e2e --preset tiny --no-peers` into a temporary directory, then the report is
// checked against the raw figures in the same run: every field present, the time-to-train split
// adding up to the run, every ratio recomputed from the timings it comes from, and the run's
// mllog file read back by `tilestage bench analyze`. No timing is asserted, only consistency.
#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/test_util.h"

namespace tilestage {
namespace {

using nlohmann::json;

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

class E2eTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    out_ = dir_->path() + "/e2e";
    run_ = new testing::CommandResult(testing::RunCommand(
        testing::CliPath() + " bench e2e --preset tiny --no-peers --out " + out_));
    if (run_->exit_code == 0) {
      results_ = ReadJson(out_ + "/results.json");
      report_ = ReadJson(out_ + "/report/report.json");
    }
  }
  static void TearDownTestSuite() {
    delete run_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_EQ(run_->exit_code, 0) << run_->output;
  }
  static const json& Stage(const json& doc, const std::string& name, const std::string& unit) {
    for (const auto& s : doc["stages"]) {
      if (s["name"] == name && s["unit"] == unit) return s;
    }
    static const json kNull;
    ADD_FAILURE() << "no stage " << name << " [" << unit << "]";
    return kNull;
  }

  static testing::TempDir* dir_;
  static std::string out_;
  static testing::CommandResult* run_;
  static json results_, report_;
};
testing::TempDir* E2eTiny::dir_ = nullptr;
std::string E2eTiny::out_;
testing::CommandResult* E2eTiny::run_ = nullptr;
json E2eTiny::results_, E2eTiny::report_;

TEST_F(E2eTiny, WritesLogResultsReportAndCharts) {
  for (const char* f : {"mllog.txt", "results.json", "report/report.json", "report/report.md",
                        "report/stages.svg", "report/time_to_train.svg",
                        "report/data_stalls.svg", "node_local/node0/manifest.json"}) {
    EXPECT_GT(testing::FileSize(out_ + "/" + f), 0) << f;
  }
  // The human table names each part.
  for (const char* s : {"time to train", "staging/run", "staging/epoch", "data stalls",
                        "system:", "provenance:"}) {
    EXPECT_NE(run_->output.find(s), std::string::npos) << s;
  }
}

TEST_F(E2eTiny, EveryStageRowIsPresentWithAPositiveRate) {
  const std::set<std::pair<std::string, std::string>> want = {
      {"ingest geotiff", "MB/s"}, {"ingest geotiff", "tiles/s"}, {"ingest netcdf", "MB/s"},
      {"ingest netcdf", "tiles/s"}, {"ingest hdf5", "MB/s"},     {"ingest hdf5", "tiles/s"},
      {"staging", "GB/s"},        {"loader", "samples/s"},       {"loader", "GB/s"},
      {"training", "samples/s"},  {"training", "GFLOP/s"},       {"allreduce", "GB/s"}};
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& s : report_["stages"]) {
    got.insert({s["name"].get<std::string>(), s["unit"].get<std::string>()});
    EXPECT_GT(s["derived"]["rate"].get<double>(), 0) << s.dump();
  }
  EXPECT_EQ(got, want);
  // Without --no-peers' Python peers only cp remains; limits are measured in the run.
  EXPECT_EQ(Stage(report_, "staging", "GB/s")["peer"]["name"], "cp -r + sync");
  EXPECT_TRUE(Stage(report_, "ingest geotiff", "MB/s")["peer"].is_null());
  for (const auto& [name, unit] : std::vector<std::pair<std::string, std::string>>{
           {"staging", "GB/s"}, {"training", "GFLOP/s"}, {"allreduce", "GB/s"},
           {"loader", "GB/s"}}) {
    EXPECT_GT(Stage(report_, name, unit)["derived"]["limit_rate"].get<double>(), 0) << name;
  }
  for (const char* k : {"host", "cpu", "cores", "memory_bytes", "os", "compiler", "mpi",
                        "limits"}) {
    EXPECT_TRUE(report_["system"].contains(k)) << k;
  }
  for (const char* k : {"command", "config", "time_utc", "git", "inputs", "mllog"}) {
    EXPECT_TRUE(report_["provenance"].contains(k)) << k;
  }
}

TEST_F(E2eTiny, RatesAndRatiosFollowFromTheRawTimings) {
  for (const auto& s : report_["stages"]) {
    const json& d = s["derived"];
    const json& t = s["tilestage"];
    if (t.contains("seconds") && t["seconds"].is_number()) {
      EXPECT_NEAR(d["rate"].get<double>(), t["amount"].get<double>() / t["seconds"].get<double>(),
                  1e-9 * d["rate"].get<double>())
          << s.dump();
    }
    if (!d["vs_peer"].is_null()) {
      EXPECT_NEAR(d["vs_peer"].get<double>(),
                  d["rate"].get<double>() / d["peer_rate"].get<double>(), 1e-9);
    }
    if (!d["of_limit"].is_null()) {
      EXPECT_NEAR(d["of_limit"].get<double>(),
                  d["rate"].get<double>() / d["limit_rate"].get<double>(), 1e-9);
    }
  }
  // The staging row compares the stager run beside cp (its own barrier-to-barrier seconds) with
  // cp -r + sync, over the store's bytes, both from the peer phase; not the timed staging.
  const json& peer = results_["steps"]["peer_staging"];
  const json& row = Stage(report_, "staging", "GB/s");
  EXPECT_GT(peer["stage_s"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(row["tilestage"]["amount"].get<double>(), peer["bytes"].get<double>() / 1e9);
  EXPECT_DOUBLE_EQ(row["tilestage"]["seconds"].get<double>(), peer["stage_s"].get<double>());
  EXPECT_DOUBLE_EQ(row["peer"]["seconds"].get<double>(),
                   peer["cp_s"].get<double>() + peer["sync_s"].get<double>());
  EXPECT_GE(peer["bytes"].get<double>(),
            results_["steps"]["stage"]["bytes_written"].get<double>());  // shards + manifest
  // The loader row is `tilestage load --json`'s samples and wall time.
  const json& load = results_["steps"]["load"];
  const json& lrow = Stage(report_, "loader", "samples/s");
  EXPECT_DOUBLE_EQ(lrow["tilestage"]["amount"].get<double>(), load["samples"].get<double>());
  EXPECT_DOUBLE_EQ(lrow["tilestage"]["seconds"].get<double>(), load["wall_s"].get<double>());
  // Ingest: GeoTIFF is timed as a whole process (like gdal_retile.py), NetCDF and HDF5 by the
  // ingest's own elapsed_s (like xarray and h5py, timed after their imports).
  EXPECT_DOUBLE_EQ(
      Stage(report_, "ingest geotiff", "MB/s")["tilestage"]["seconds"].get<double>(),
      results_["steps"]["ingest_geotiff"]["process_wall_s"].get<double>());
  for (const char* m : {"netcdf", "hdf5"}) {
    EXPECT_DOUBLE_EQ(
        Stage(report_, std::string("ingest ") + m, "MB/s")["tilestage"]["seconds"].get<double>(),
        results_["steps"][std::string("ingest_") + m]["elapsed_s"].get<double>());
  }
  // Ingest tiles are what each ingest reported writing.
  const json& ig = results_["steps"]["ingest_geotiff"];
  EXPECT_DOUBLE_EQ(Stage(report_, "ingest geotiff", "tiles/s")["tilestage"]["amount"].get<double>(),
                   ig["tiles_written"].get<double>());
}

TEST_F(E2eTiny, TimeToTrainSplitAddsUpToTheRun) {
  const json& t = report_["time_to_train"];
  const double run_s = t["run_s"];
  ASSERT_GT(run_s, 0);
  const double sum = t["staging_s"].get<double>() + t["training_s"].get<double>() +
                     t["evaluation_s"].get<double>() + t["derived"]["other_s"].get<double>();
  EXPECT_NEAR(sum, run_s, 1e-9 * run_s);
  EXPECT_GT(t["staging_s"].get<double>(), 0);
  EXPECT_GT(t["training_s"].get<double>(), 0);
  EXPECT_GT(t["evaluation_s"].get<double>(), 0);
  EXPECT_NEAR(t["derived"]["staging_per_run"].get<double>(),
              t["staging_s"].get<double>() / run_s, 1e-12);
  const auto epochs = t["epoch_s"].get<std::vector<double>>();
  ASSERT_EQ(epochs.size(), results_["provenance"]["config"]["epochs"].get<size_t>());
  double mean = 0;
  for (double e : epochs) mean += e / double(epochs.size());
  EXPECT_NEAR(t["derived"]["mean_epoch_s"].get<double>(), mean, 1e-9);
  EXPECT_NEAR(t["derived"]["staging_per_epoch"].get<double>(), t["staging_s"].get<double>() / mean,
              1e-9);
  // Epochs lie inside the run: training plus evaluation cannot exceed the epochs' total.
  double total = 0;
  for (double e : epochs) total += e;
  EXPECT_LE(t["training_s"].get<double>() + t["evaluation_s"].get<double>(), total + 1e-9);
}

TEST_F(E2eTiny, MllogReadBackByAnalyzeGivesTheSameStaging) {
  const auto r = testing::RunCommand(testing::CliPath() + " bench analyze --json " + out_ +
                                     "/mllog.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json a = json::parse(r.output.substr(r.output.find('{')));
  ASSERT_EQ(a["runs"].size(), 1u);
  const json& run = a["runs"][0];
  const json& t = report_["time_to_train"];
  EXPECT_EQ(run["staging_source"], "interval");
  EXPECT_DOUBLE_EQ(run["run_s"].get<double>(), t["run_s"].get<double>());
  EXPECT_DOUBLE_EQ(run["staging_s"].get<double>(), t["staging_s"].get<double>());
  EXPECT_NEAR(run["staging_per_run"].get<double>(),
              t["derived"]["staging_per_run"].get<double>(), 1e-12);
  EXPECT_NEAR(run["staging_per_epoch"].get<double>(),
              t["derived"]["staging_per_epoch"].get<double>(), 1e-12);
  EXPECT_EQ(run["epochs"].get<size_t>(), t["epoch_s"].size());
  // The stager's logged interval is its barrier-to-barrier time, to the millisecond of the log.
  EXPECT_NEAR(run["staging_s"].get<double>(),
              results_["steps"]["stage"]["seconds"].get<double>(), 2e-3);
  EXPECT_TRUE(run["staging_within_run"].get<bool>());
  EXPECT_TRUE(run["warnings"].empty()) << run["warnings"].dump();
}

// The three figures are each run's median over the rounds, as measured: a run that came out
// faster than the run it contains is flagged as noise in the report, never overwritten.
TEST_F(E2eTiny, DataStallsAreMediansOfTheRoundsWithNoiseFlagged) {
  const json& d = report_["data_stalls"];
  const json& rounds = results_["data_stalls"]["rounds"];
  ASSERT_EQ(rounds.size(), results_["provenance"]["config"]["stall_rounds"].get<size_t>());
  ASSERT_EQ(rounds.size(), 3u);
  bool prep_violated = false, fetch_violated = false;
  for (const char* run : {"synthetic_s", "cached_s", "cold_s"}) {
    std::vector<double> v;
    for (const auto& r : rounds) v.push_back(r[run].get<double>());
    std::sort(v.begin(), v.end());
    EXPECT_DOUBLE_EQ(d[run].get<double>(), v[1]) << run;
  }
  for (const auto& r : rounds) {
    prep_violated |= r["cached_s"].get<double>() < r["synthetic_s"].get<double>();
    fetch_violated |= r["cold_s"].get<double>() < r["cached_s"].get<double>();
  }
  const double syn = d["synthetic_s"], cached = d["cached_s"], cold = d["cold_s"];
  EXPECT_GT(syn, 0);
  EXPECT_NEAR(d["derived"]["prep_stall_s"].get<double>(), std::max(0.0, cached - syn), 1e-9);
  EXPECT_NEAR(d["derived"]["fetch_stall_s"].get<double>(), std::max(0.0, cold - cached), 1e-9);
  EXPECT_NEAR(d["derived"]["au_percent"].get<double>(), 100.0 * syn / cold, 1e-9);
  std::string noise;
  for (const auto& n : d["derived"]["noise"]) noise += n.get<std::string>() + "\n";
  EXPECT_EQ(noise.find("cached run faster than synthetic") != std::string::npos, prep_violated)
      << noise;
  EXPECT_EQ(noise.find("cold run faster than cached") != std::string::npos, fetch_violated)
      << noise;
  EXPECT_EQ(run_->output.find("noise:") != std::string::npos, prep_violated || fetch_violated);
  // What eviction left in the page cache before each cold run is reported beside it.
  const json& raw = results_["data_stalls"];
  ASSERT_EQ(raw["resident_after_evict_bytes"].size(), rounds.size());
  for (const auto& b : raw["resident_after_evict_bytes"]) {
    EXPECT_LE(b.get<double>(), raw["staged_bytes"].get<double>());
  }
  EXPECT_GT(raw["staged_bytes"].get<double>(), 0);
  // The same samples in each run: the loader's whole staged store.
  EXPECT_EQ(d["samples"].get<double>(), results_["steps"]["stalls_cold"]["samples"].get<double>());
  EXPECT_EQ(d["samples"].get<double>(),
            results_["steps"]["stalls_cached"]["samples"].get<double>());
}

TEST(E2eArgs, UnknownPresetIsRejectedByName) {
  const auto r = testing::RunCommand(testing::CliPath() + " bench e2e --preset huge --out " +
                                     testing::TempDir().path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--preset huge"), std::string::npos) << r.output;
}

TEST(E2eArgs, ConfigWithUnknownKeyNamesFileAndKey) {
  testing::TempDir dir;
  const std::string cfg = dir.path() + "/cfg.json";
  std::ofstream(cfg) << R"({"epochs": 2, "epochz": 3})";
  const auto r = testing::RunCommand(testing::CliPath() + " bench e2e --config " + cfg +
                                     " --out " + dir.path() + "/out");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(cfg), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("epochz"), std::string::npos) << r.output;
}

TEST(E2eArgs, ConfigWithWrongTypeIsRejected) {
  testing::TempDir dir;
  const std::string cfg = dir.path() + "/cfg.json";
  std::ofstream(cfg) << R"({"epochs": "three"})";
  const auto r = testing::RunCommand(testing::CliPath() + " bench e2e --config " + cfg +
                                     " --out " + dir.path() + "/out");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("\"epochs\" has the wrong type"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tilestage
