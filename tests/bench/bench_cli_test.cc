// The `tilestage bench analyze|model|report` subcommands, run as a user would.
#include <gtest/gtest.h>

#include <fstream>

#include "bench/e2e/mllog.h"
#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::CliPath;
using ::tilestage::testing::RunCommand;
using ::tilestage::testing::TempDir;

const std::string kData = TILESTAGE_BENCH_TEST_DATA;

TEST(BenchCli, AnalyzePrintsPerRunAndPerSubmissionTables) {
  auto r = RunCommand(CliPath() + " bench analyze " + kData + "/cosmoflow_style/result_1.txt " +
                      kData + "/cosmoflow_style/result_2.txt " + kData +
                      "/cosmoflow_style/result_3.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Per run"), std::string::npos);
  EXPECT_NE(r.output.find("60.0%"), std::string::npos) << r.output;  // 300 / 500.002
  EXPECT_NE(r.output.find("Per submission"), std::string::npos);
  EXPECT_NE(r.output.find("     3      200.00      500.00        50.0%"), std::string::npos)
      << r.output;
}

TEST(BenchCli, AnalyzeWalksAResultTree) {
  auto r = RunCommand(CliPath() + " bench analyze --json " + kData);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json j = Json::parse(r.output);
  EXPECT_EQ(j["runs"].size(), 6u);  // 3 + 1 + 2 instances
  ASSERT_EQ(j["groups"].size(), 3u);
  EXPECT_EQ(j["groups"][2]["group"], kData + "/weak");
}

TEST(BenchCli, AnalyzeJsonGroupsByPlatform) {
  auto r = RunCommand(CliPath() + " bench analyze --json --group-by platform " + kData +
                      "/cosmoflow_style/result_1.txt " + kData + "/weak/result_1.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json j = Json::parse(r.output);
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["group"], "cosmoflow ExampleOrg 16xExample GPU node");
  EXPECT_EQ(j["groups"][1]["runs"], 2);
}

TEST(BenchCli, AnalyzeMalformedLineExitsNonZeroNamingFileAndLine) {
  TempDir dir;
  const std::string path = dir.Sub("bad.log");
  std::ofstream(path) << "hello\n:::MLLOG {\"key\": \"run_start\", \"time_ms\": \n";
  auto r = RunCommand(CliPath() + " bench analyze " + path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(path + ":2: malformed :::MLLOG JSON"), std::string::npos) << r.output;
}

TEST(BenchCli, AnalyzeLogWithoutRunIsAnError) {
  TempDir dir;
  const std::string path = dir.Sub("norun.log");
  std::ofstream(path) << ":::MLLOG {\"namespace\": \"\", \"time_ms\": 1, \"event_type\": "
                         "\"INTERVAL_START\", \"key\": \"init_start\", \"value\": null, "
                         "\"metadata\": {}}\n";
  auto r = RunCommand(CliPath() + " bench analyze " + path);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(path + ": no run_start/run_stop pair"), std::string::npos) << r.output;
}

TEST(BenchCli, AnalyzeUnknownGroupByIsUsageError) {
  auto r = RunCommand(CliPath() + " bench analyze --group-by rack " + kData +
                      "/weak/result_1.txt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--group-by 'rack'"), std::string::npos) << r.output;
}

TEST(BenchCli, ModelFromConfigWithFlagOverride) {
  TempDir dir;
  const std::string config = dir.Sub("model.json");
  std::ofstream(config) << R"({"dataset_bytes": 1e12, "samples": 1e6, "epochs": 10,
    "mode": "partition", "staging_read_bytes_per_s": 2e9, "staging_write_bytes_per_s": 3e9,
    "loader_samples_per_s": 5000, "train_samples_per_s": 1000,
    "fs_aggregate_bytes_per_s": 100e9, "fs_node_bytes_per_s": 5e9,
    "local_write_bytes_per_s": 4e9, "local_read_bytes_per_s": 8e9,
    "interconnect_bytes_per_s": 10e9, "comment": "test system"})";
  auto r = RunCommand(CliPath() + " bench model --json --nodes 10,200 --config " + config +
                      " --fs-aggregate 50GB/s");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json j = Json::parse(r.output);
  EXPECT_DOUBLE_EQ(j["inputs"]["fs_aggregate_bytes_per_s"].get<double>(), 50e9);
  EXPECT_DOUBLE_EQ(j["points"][0]["staging_s"].get<double>(), 50.0);   // 10 × 2 GB/s < 50 GB/s
  EXPECT_DOUBLE_EQ(j["points"][1]["staging_s"].get<double>(), 20.0);   // 1e12 / 50e9
  EXPECT_EQ(j["points"][1]["staging_bound"], "fs_aggregate");
  auto table = RunCommand(CliPath() + " bench model --nodes 1..4 --config " + config);
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("stager_read"), std::string::npos) << table.output;
}

TEST(BenchCli, ModelMissingInputNamesIt) {
  auto r = RunCommand(CliPath() + " bench model --dataset 1TB --samples 1000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("loader_samples_per_s"), std::string::npos) << r.output;
  r = RunCommand(CliPath() + " bench model --dataset 1ZB");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--dataset: '1ZB': unknown unit"), std::string::npos) << r.output;
}

TEST(BenchCli, ReportWritesJsonMarkdownAndSvg) {
  TempDir dir;
  const std::string in = dir.Sub("results.json");
  std::ofstream(in) << R"({"schema": "tilestage-e2e-results/1",
    "stages": [{"name": "staging", "unit": "GB/s", "tilestage": {"amount": 4, "seconds": 2},
                "peer": {"name": "cp", "amount": 4, "seconds": 8}}],
    "time_to_train": {"run_s": 10, "staging_s": 2, "training_s": 6, "evaluation_s": 1,
                      "epoch_s": [3, 3]}})";
  auto r = RunCommand(CliPath() + " bench report --in " + in + " --out " + dir.Sub("out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("4.00x"), std::string::npos) << r.output;
  std::ifstream json(dir.Sub("out/report.json"));
  ASSERT_TRUE(json.good());
  Json j = Json::parse(json);
  EXPECT_DOUBLE_EQ(j["time_to_train"]["derived"]["staging_per_epoch"].get<double>(), 2.0 / 3.0);
  EXPECT_TRUE(std::ifstream(dir.Sub("out/stages.svg")).good());
  EXPECT_FALSE(std::ifstream(dir.Sub("out/data_stalls.svg")).good());  // no stall runs given
}

TEST(BenchCli, ReportBadResultsNamesFileAndField) {
  TempDir dir;
  const std::string in = dir.Sub("results.json");
  std::ofstream(in) << R"({"schema": "tilestage-e2e-results/1",
    "stages": [{"name": "staging", "unit": "GB/s", "tilestage": {"amount": 4}}]})";
  auto r = RunCommand(CliPath() + " bench report --in " + in + " --out " + dir.Sub("out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(in + ": stages[0].tilestage.seconds must be a number"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::ifstream(dir.Sub("out/report.json")).good());
}

}  // namespace
}  // namespace tilestage::bench
