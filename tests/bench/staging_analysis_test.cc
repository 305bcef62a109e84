#include "bench/e2e/staging_analysis.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

const std::string kData = TILESTAGE_BENCH_TEST_DATA;

Result<std::vector<RunAnalysis>> AnalyzeText(const std::string& text) {
  TS_ASSIGN_OR_RETURN(auto records, ParseMlLog(text, "t.log"));
  return AnalyzeMlLog(records, "t.log");
}

std::string Ev(int64_t t, const char* type, const char* key, const std::string& md = "") {
  return StrCat(":::MLLOG {\"namespace\": \"\", \"time_ms\": ", t, ", \"event_type\": \"", type,
                "\", \"key\": \"", key, "\", \"value\": null, \"metadata\": {\"file\": \"t.py\", "
                "\"lineno\": 1", md.empty() ? "" : ", " + md, "}}\n");
}

// Known answers for tests/bench/data/cosmoflow_style/result_1.txt, a log written in the style of
// NVIDIA's MLPerf HPC v1.0 CosmoFlow results: run_start at T+40001 ms, staging T+40001..T+340001,
// three epochs of 70.001, 65 and 65 s each ending in an evaluation of 10, 5 and 5 s, run_stop at
// T+540003.
TEST(StagingAnalysis, CosmoflowStyleLogKnownAnswers) {
  auto records = ReadMlLog(kData + "/cosmoflow_style/result_1.txt");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  auto runs = AnalyzeMlLog(*records, "r1");
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 1u);
  const RunAnalysis& r = (*runs)[0];
  EXPECT_EQ(r.benchmark, "cosmoflow");
  EXPECT_EQ(r.org, "ExampleOrg");
  EXPECT_EQ(r.platform, "16xExample GPU node");
  EXPECT_EQ(r.nodes, 16);
  EXPECT_EQ(r.status, "success");
  EXPECT_EQ(r.run_start_line, 19);
  EXPECT_EQ(r.run_stop_line, 43);
  EXPECT_DOUBLE_EQ(r.run_s, 500.002);
  ASSERT_TRUE(r.init_s);
  EXPECT_DOUBLE_EQ(*r.init_s, 39.970);
  ASSERT_TRUE(r.staging_s);
  EXPECT_DOUBLE_EQ(*r.staging_s, 300.0);
  EXPECT_EQ(r.staging_source, "interval");
  ASSERT_TRUE(r.staging_logged_duration_s);
  EXPECT_DOUBLE_EQ(*r.staging_logged_duration_s, 299.99871015548706);
  EXPECT_EQ(r.epochs, 3);
  EXPECT_NEAR(*r.mean_epoch_s, 200.001 / 3, 1e-9);
  EXPECT_NEAR(*r.staging_per_run, 300.0 / 500.002, 1e-12);
  EXPECT_NEAR(*r.staging_per_epoch, 300.0 / (200.001 / 3), 1e-9);
  EXPECT_NEAR(r.split_staging_s, 300.0, 1e-9);
  EXPECT_NEAR(r.split_eval_s, 20.0, 1e-9);
  EXPECT_NEAR(r.split_training_s, 180.001, 1e-9);
  EXPECT_NEAR(r.split_other_s, 0.001, 1e-9);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(StagingAnalysis, SubmissionMediansOverADirectoryOfRuns) {
  auto analysis = AnalyzeMlLogFiles({kData + "/cosmoflow_style/result_1.txt",
                                     kData + "/cosmoflow_style/result_2.txt",
                                     kData + "/cosmoflow_style/result_3.txt"},
                                    GroupBy::kDirectory);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  ASSERT_EQ(analysis->runs.size(), 3u);
  // result_2: staging 200 s of a 400 s run, two 100 s epochs.
  const RunAnalysis& r2 = analysis->runs[1];
  EXPECT_DOUBLE_EQ(*r2.staging_s, 200.0);
  EXPECT_DOUBLE_EQ(*r2.staging_per_run, 0.5);
  EXPECT_DOUBLE_EQ(*r2.staging_per_epoch, 2.0);
  // result_3: only a staging_duration event (150.5 s), a 600 s run, three 100 s epochs.
  const RunAnalysis& r3 = analysis->runs[2];
  EXPECT_EQ(r3.staging_source, "staging_duration");
  EXPECT_DOUBLE_EQ(*r3.staging_s, 150.5);
  EXPECT_DOUBLE_EQ(*r3.staging_per_run, 150.5 / 600.0);
  EXPECT_DOUBLE_EQ(*r3.staging_per_epoch, 1.505);
  EXPECT_NEAR(r3.split_staging_s + r3.split_training_s + r3.split_eval_s + r3.split_other_s,
              600.0, 1e-9);
  EXPECT_NEAR(r3.split_training_s, 300.0, 1e-9);

  ASSERT_EQ(analysis->groups.size(), 1u);
  const GroupSummary& g = analysis->groups[0];
  EXPECT_EQ(g.group, kData + "/cosmoflow_style");
  EXPECT_EQ(g.runs, 3);
  EXPECT_DOUBLE_EQ(*g.median_staging_s, 200.0);           // {300, 200, 150.5}
  EXPECT_DOUBLE_EQ(g.median_run_s, 500.002);              // {500.002, 400, 600}
  EXPECT_DOUBLE_EQ(*g.median_staging_per_run, 0.5);       // {0.599998, 0.5, 0.2508}
  EXPECT_DOUBLE_EQ(*g.median_mean_epoch_s, 100.0);        // {66.667, 100, 100}
  EXPECT_DOUBLE_EQ(*g.median_staging_per_epoch, 2.0);     // {4.49998, 2, 1.505}
}

TEST(StagingAnalysis, GroupByFileGivesOneSubmissionPerLog) {
  auto analysis = AnalyzeMlLogFiles({kData + "/cosmoflow_style/result_1.txt",
                                     kData + "/cosmoflow_style/result_2.txt"},
                                    GroupBy::kFile);
  ASSERT_TRUE(analysis.ok());
  ASSERT_EQ(analysis->groups.size(), 2u);
  EXPECT_DOUBLE_EQ(*analysis->groups[1].median_staging_s, 200.0);
}

TEST(StagingAnalysis, WeakScalingInstancesAreSeparateRuns) {
  auto analysis = AnalyzeMlLogFiles({kData + "/weak/result_1.txt"}, GroupBy::kAll);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  ASSERT_EQ(analysis->runs.size(), 2u);
  EXPECT_EQ(analysis->runs[0].instance, "instance_id=0");
  EXPECT_DOUBLE_EQ(analysis->runs[0].run_s, 100.0);
  EXPECT_DOUBLE_EQ(*analysis->runs[0].staging_s, 40.0);
  EXPECT_EQ(analysis->runs[1].instance, "instance_id=1");
  EXPECT_DOUBLE_EQ(analysis->runs[1].run_s, 120.0);
  EXPECT_DOUBLE_EQ(*analysis->runs[1].staging_s, 60.0);
  EXPECT_DOUBLE_EQ(*analysis->groups[0].median_staging_s, 50.0);
  EXPECT_DOUBLE_EQ(analysis->groups[0].median_run_s, 110.0);
}

TEST(StagingAnalysis, DeepcamStyleLogWithoutStagingEvents) {
  auto analysis = AnalyzeMlLogFiles({kData + "/deepcam_style/result_1.txt"}, GroupBy::kDirectory);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  const RunAnalysis& r = analysis->runs[0];
  EXPECT_FALSE(r.staging_s);
  EXPECT_EQ(r.staging_source, "none");
  EXPECT_FALSE(r.staging_per_run);
  EXPECT_DOUBLE_EQ(r.run_s, 42.040);
  EXPECT_EQ(r.epochs, 2);
  EXPECT_DOUBLE_EQ(*r.mean_epoch_s, 21.0);
  EXPECT_NEAR(r.split_eval_s, 6.0, 1e-9);
  EXPECT_NEAR(r.split_training_s, 36.0, 1e-9);
  EXPECT_NEAR(r.split_other_s, 0.040, 1e-9);
  EXPECT_FALSE(analysis->groups[0].median_staging_s);
  EXPECT_NE(FormatStagingAnalysis(*analysis).find("1 run(s) without staging events"),
            std::string::npos);
}

TEST(StagingAnalysis, SequentialRunsInOneFileAreSeparate) {
  auto runs = AnalyzeText(Ev(0, "INTERVAL_START", "run_start") +
                          Ev(10000, "INTERVAL_END", "run_stop") +
                          Ev(20000, "INTERVAL_START", "run_start") +
                          Ev(20000, "INTERVAL_START", "staging_start") +
                          Ev(25000, "INTERVAL_END", "staging_stop") +
                          Ev(50000, "INTERVAL_END", "run_stop"));
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_FALSE((*runs)[0].staging_s);
  EXPECT_DOUBLE_EQ((*runs)[1].run_s, 30.0);
  EXPECT_DOUBLE_EQ(*(*runs)[1].staging_per_run, 5.0 / 30.0);
}

TEST(StagingAnalysis, StopWithoutEpochNumClosesTheOnlyOpenInterval) {
  auto runs = AnalyzeText(Ev(0, "INTERVAL_START", "run_start") +
                          Ev(0, "INTERVAL_START", "epoch_start", "\"epoch_num\": 1") +
                          Ev(7000, "INTERVAL_START", "eval_start", "\"epoch_num\": 1") +
                          Ev(9000, "INTERVAL_END", "eval_stop") +
                          Ev(10000, "INTERVAL_END", "epoch_stop") +
                          Ev(10000, "INTERVAL_END", "run_stop"));
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  EXPECT_EQ((*runs)[0].epochs, 1);
  EXPECT_DOUBLE_EQ((*runs)[0].split_eval_s, 2.0);
  EXPECT_DOUBLE_EQ((*runs)[0].split_training_s, 8.0);
}

TEST(StagingAnalysis, EpochLeftOpenAtRunStopIsAWarningNotAnError) {
  auto runs = AnalyzeText(Ev(0, "INTERVAL_START", "run_start") +
                          Ev(0, "INTERVAL_START", "epoch_start", "\"epoch_num\": 1") +
                          Ev(10000, "INTERVAL_END", "epoch_stop", "\"epoch_num\": 1") +
                          Ev(10000, "INTERVAL_START", "epoch_start", "\"epoch_num\": 2") +
                          Ev(15000, "INTERVAL_END", "run_stop"));
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  EXPECT_EQ((*runs)[0].epochs, 1);
  ASSERT_EQ((*runs)[0].warnings.size(), 1u);
  EXPECT_NE((*runs)[0].warnings[0].find("line 4"), std::string::npos);
}

struct BadLog {
  std::string name;
  std::string text;
  std::string expected;
};
void PrintTo(const BadLog& c, std::ostream* os) { *os << c.name; }
class InconsistentLog : public ::testing::TestWithParam<BadLog> {};

TEST_P(InconsistentLog, IsInvalidArgumentNamingThePlace) {
  auto runs = AnalyzeText(GetParam().text);
  ASSERT_FALSE(runs.ok());
  EXPECT_EQ(runs.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(runs.status().message().find(GetParam().expected), std::string::npos)
      << runs.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InconsistentLog,
    ::testing::Values(
        BadLog{"NoRunStart",
               Ev(0, "INTERVAL_START", "init_start") + Ev(5, "INTERVAL_END", "init_stop"),
               "t.log: no run_start/run_stop pair"},
        BadLog{"RunStartWithoutRunStop",
               Ev(0, "POINT_IN_TIME", "seed") + Ev(1, "INTERVAL_START", "run_start") +
                   Ev(2, "INTERVAL_START", "epoch_start"),
               "t.log:2: run_start has no run_stop"},
        BadLog{"RunStopWithoutRunStart", Ev(0, "INTERVAL_END", "run_stop"),
               "t.log:1: run_stop without a run_start"},
        BadLog{"SecondRunStart",
               Ev(0, "INTERVAL_START", "run_start") + Ev(1, "INTERVAL_START", "run_start"),
               "t.log:2: run_start while the run_start at line 1 has no run_stop"},
        BadLog{"StagingStopWithoutStart",
               Ev(0, "INTERVAL_START", "run_start") + Ev(1, "INTERVAL_END", "staging_stop") +
                   Ev(2, "INTERVAL_END", "run_stop"),
               "t.log:2: staging_stop without a matching staging_start"},
        BadLog{"StagingStopBeforeStart",
               Ev(0, "INTERVAL_START", "run_start") + Ev(500, "INTERVAL_START", "staging_start") +
                   Ev(100, "INTERVAL_END", "staging_stop") + Ev(900, "INTERVAL_END", "run_stop"),
               "t.log:3: staging_stop at time_ms 100 is before its staging_start"},
        BadLog{"StagingNeverStops",
               Ev(0, "INTERVAL_START", "run_start") + Ev(1, "INTERVAL_START", "staging_start") +
                   Ev(9, "INTERVAL_END", "run_stop"),
               "t.log:2: staging_start has no staging_stop"},
        BadLog{"RunStopBeforeRunStart",
               Ev(100, "INTERVAL_START", "run_start") + Ev(50, "INTERVAL_END", "run_stop"),
               "t.log:2: run_stop at time_ms 50 is before run_start"},
        BadLog{"EpochStartedTwice",
               Ev(0, "INTERVAL_START", "run_start") +
                   Ev(1, "INTERVAL_START", "epoch_start", "\"epoch_num\": 4") +
                   Ev(2, "INTERVAL_START", "epoch_start", "\"epoch_num\": 4"),
               "t.log:3: epoch_start (epoch_num 4) while the epoch_start at line 2"},
        BadLog{"StagingDurationNotANumber",
               Ev(0, "INTERVAL_START", "run_start") +
                   ":::MLLOG {\"time_ms\": 3, \"event_type\": \"POINT_IN_TIME\", \"key\": "
                   "\"staging_duration\", \"value\": \"fast\"}\n" +
                   Ev(9, "INTERVAL_END", "run_stop"),
               "t.log:2: staging_duration value \"fast\" is not a number of seconds"}),
    [](const ::testing::TestParamInfo<BadLog>& info) { return info.param.name; });

TEST(StagingAnalysis, FileWithoutMllogLinesIsAnError) {
  auto runs = AnalyzeText("just\nsome output\n");
  ASSERT_FALSE(runs.ok());
  EXPECT_NE(runs.status().message().find("t.log: no :::MLLOG lines"), std::string::npos);
}

TEST(StagingAnalysis, DirectoriesExpandToLogFilesInNaturalOrder) {
  auto paths = ExpandMlLogPaths({kData});
  ASSERT_TRUE(paths.ok()) << paths.status().ToString();
  ASSERT_EQ(paths->size(), 5u);
  EXPECT_EQ((*paths)[0], kData + "/cosmoflow_style/result_1.txt");
  EXPECT_EQ((*paths)[2], kData + "/cosmoflow_style/result_3.txt");
  EXPECT_EQ((*paths)[4], kData + "/weak/result_1.txt");
  ::tilestage::testing::TempDir dir;
  for (const char* name : {"result_10.txt", "result_9.txt", "notes.md", "result_2.txt"})
    std::ofstream(dir.Sub(name)) << "x\n";
  paths = ExpandMlLogPaths({dir.path()});
  ASSERT_TRUE(paths.ok());
  EXPECT_EQ(*paths, (std::vector<std::string>{dir.Sub("result_2.txt"), dir.Sub("result_9.txt"),
                                              dir.Sub("result_10.txt")}));
  EXPECT_EQ(ExpandMlLogPaths({dir.Sub("missing")}).status().code(), StatusCode::kNotFound);
  ::tilestage::testing::TempDir empty;
  EXPECT_EQ(ExpandMlLogPaths({empty.path()}).status().code(), StatusCode::kInvalidArgument);
}

TEST(StagingAnalysis, MedianOfEvenAndOddCounts) {
  EXPECT_DOUBLE_EQ(Median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Median({7}), 7);
}

TEST(StagingAnalysis, JsonHasDefinitionsRunsAndGroups) {
  auto analysis = AnalyzeMlLogFiles({kData + "/cosmoflow_style/result_2.txt"}, GroupBy::kAll);
  ASSERT_TRUE(analysis.ok());
  Json j = StagingAnalysisToJson(*analysis);
  EXPECT_EQ(j["schema"], "tilestage-staging-analysis/1");
  EXPECT_TRUE(j["definitions"].contains("staging_per_epoch"));
  EXPECT_DOUBLE_EQ(j["runs"][0]["staging_per_run"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["groups"][0]["median_staging_per_epoch"].get<double>(), 2.0);
  EXPECT_TRUE(j["runs"][0]["init_s"].is_null());
}

}  // namespace
}  // namespace tilestage::bench
