#include "bench/e2e/staging_analysis.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

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
  EXPECT_DOUBLE_EQ(g.staging_s->median, 200.0);           // {300, 200, 150.5}
  EXPECT_DOUBLE_EQ(g.staging_s->min, 150.5);
  EXPECT_DOUBLE_EQ(g.staging_s->max, 300.0);
  EXPECT_DOUBLE_EQ(g.run_s->median, 500.002);             // {500.002, 400, 600}
  EXPECT_DOUBLE_EQ(g.staging_per_run->median, 0.5);       // {0.599998, 0.5, 0.2508}
  EXPECT_DOUBLE_EQ(g.mean_epoch_s->median, 100.0);        // {66.667, 100, 100}
  EXPECT_DOUBLE_EQ(g.staging_per_epoch->median, 2.0);     // {4.49998, 2, 1.505}
  EXPECT_DOUBLE_EQ(g.epochs->median, 3.0);                // {3, 2, 3}
}

TEST(StagingAnalysis, GroupByFileGivesOneSubmissionPerLog) {
  auto analysis = AnalyzeMlLogFiles({kData + "/cosmoflow_style/result_1.txt",
                                     kData + "/cosmoflow_style/result_2.txt"},
                                    GroupBy::kFile);
  ASSERT_TRUE(analysis.ok());
  ASSERT_EQ(analysis->groups.size(), 2u);
  EXPECT_DOUBLE_EQ(analysis->groups[1].staging_s->median, 200.0);
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
  EXPECT_DOUBLE_EQ(analysis->groups[0].staging_s->median, 50.0);
  EXPECT_DOUBLE_EQ(analysis->groups[0].run_s->median, 110.0);
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
  EXPECT_EQ(r.state, RunState::kNoStaging);
  EXPECT_FALSE(analysis->groups[0].staging_s);
  EXPECT_DOUBLE_EQ(analysis->groups[0].run_s->median, 42.040);  // still counted for time to train
  const std::string table = FormatStagingAnalysis(*analysis);
  EXPECT_NE(table.find("1 without usable staging"), std::string::npos) << table;
  EXPECT_NE(table.find("no staging events"), std::string::npos) << table;
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
  EXPECT_NE((*runs)[0].warnings[0].find("t.log:4: epoch_start (epoch_num 2) has no epoch_stop "
                                        "before run_stop at line 5"),
            std::string::npos)
      << (*runs)[0].warnings[0];
}

struct OddLog {
  std::string name;
  std::string text;
  std::string warning;  // expected in the first run's warnings
  RunState state;       // of the first run
};
void PrintTo(const OddLog& c, std::ostream* os) { *os << c.name; }
class OddLogIsReadWithAWarning : public ::testing::TestWithParam<OddLog> {};

// Each shape of a damaged run is read: the run is kept with its state and a warning naming the
// file and line, instead of the whole log failing.
TEST_P(OddLogIsReadWithAWarning, NamingTheLineAndKeepingTheRun) {
  auto runs = AnalyzeText(GetParam().text);
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_FALSE(runs->empty());
  const RunAnalysis& r = (*runs)[0];
  EXPECT_EQ(RunStateName(r.state), std::string(RunStateName(GetParam().state)));
  std::string all;
  for (const std::string& w : r.warnings) all += w + "\n";
  EXPECT_NE(all.find(GetParam().warning), std::string::npos) << all;
  if (r.state == RunState::kStagingUnusable) {
    EXPECT_FALSE(r.staging_s);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OddLogIsReadWithAWarning,
    ::testing::Values(
        OddLog{"RunStartWithoutRunStop",
               Ev(0, "POINT_IN_TIME", "seed") + Ev(1, "INTERVAL_START", "run_start") +
                   Ev(2, "INTERVAL_START", "epoch_start"),
               "t.log:2: run_start has no run_stop", RunState::kAborted},
        OddLog{"SecondRunStart",
               Ev(0, "INTERVAL_START", "run_start") + Ev(1, "INTERVAL_START", "run_start"),
               "t.log:1: run_start has no run_stop (another run_start follows at line 2)",
               RunState::kAborted},
        OddLog{"RunStopStatusAborted",
               Ev(0, "INTERVAL_START", "run_start") +
                   Ev(9, "INTERVAL_END", "run_stop", "\"status\": \"aborted\""),
               "t.log:2: run_stop status 'aborted'", RunState::kAborted},
        OddLog{"StagingStopWithoutStart",
               Ev(0, "INTERVAL_START", "run_start") + Ev(1, "INTERVAL_END", "staging_stop") +
                   Ev(2, "INTERVAL_END", "run_stop"),
               "t.log:2: staging_stop without a matching staging_start; the run's staging time "
               "is unusable",
               RunState::kStagingUnusable},
        OddLog{"StagingStopBeforeStart",
               Ev(0, "INTERVAL_START", "run_start") + Ev(500, "INTERVAL_START", "staging_start") +
                   Ev(100, "INTERVAL_END", "staging_stop") + Ev(900, "INTERVAL_END", "run_stop"),
               "t.log:3: staging_stop at time_ms 100 is before its staging_start",
               RunState::kStagingUnusable},
        OddLog{"StagingNeverStops",
               Ev(0, "INTERVAL_START", "run_start") + Ev(1, "INTERVAL_START", "staging_start") +
                   Ev(9, "INTERVAL_END", "run_stop"),
               "t.log:2: staging_start has no staging_stop before run_stop at line 3",
               RunState::kStagingUnusable},
        OddLog{"RunStopBeforeRunStart",
               Ev(100, "INTERVAL_START", "run_start") + Ev(50, "INTERVAL_END", "run_stop"),
               "t.log:2: run_stop at time_ms 50 is before run_start", RunState::kAborted},
        OddLog{"EpochStartedTwice",
               Ev(0, "INTERVAL_START", "run_start") +
                   Ev(1, "INTERVAL_START", "epoch_start", "\"epoch_num\": 4") +
                   Ev(2, "INTERVAL_START", "epoch_start", "\"epoch_num\": 4") +
                   Ev(3, "INTERVAL_END", "run_stop"),
               "t.log:3: epoch_start (epoch_num 4) while the epoch_start at line 2",
               RunState::kNoStaging},
        OddLog{"StagingDurationNotANumber",
               Ev(0, "INTERVAL_START", "run_start") +
                   ":::MLLOG {\"time_ms\": 3, \"event_type\": \"POINT_IN_TIME\", \"key\": "
                   "\"staging_duration\", \"value\": \"fast\"}\n" +
                   Ev(9, "INTERVAL_END", "run_stop"),
               "t.log:2: staging_duration value \"fast\" is not a number of seconds",
               RunState::kStagingUnusable}),
    [](const ::testing::TestParamInfo<OddLog>& info) { return info.param.name; });

TEST(StagingAnalysis, LogWithoutAnyRunIsAnErrorNamingTheFirstProblem) {
  auto runs =
      AnalyzeText(Ev(0, "INTERVAL_START", "init_start") + Ev(5, "INTERVAL_END", "init_stop"));
  ASSERT_FALSE(runs.ok());
  EXPECT_NE(runs.status().message().find("t.log: no run_start"), std::string::npos);
  runs = AnalyzeText(Ev(0, "INTERVAL_END", "run_stop"));
  ASSERT_FALSE(runs.ok());
  EXPECT_NE(runs.status().message().find("t.log:1: run_stop without a run_start"),
            std::string::npos)
      << runs.status().message();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// A complete run: staging `staging_s`, `epochs` epochs of 10 s, starting at t0 (ms).
std::string GoodRun(int64_t t0, int staging_s, int epochs, const std::string& extra = "") {
  std::string s = Ev(t0, "POINT_IN_TIME", "submission_benchmark") +
                  Ev(t0, "POINT_IN_TIME", "number_of_nodes") +
                  Ev(t0, "INTERVAL_START", "run_start") +
                  Ev(t0, "INTERVAL_START", "staging_start") + extra +
                  Ev(t0 + staging_s * 1000, "INTERVAL_END", "staging_stop");
  int64_t t = t0 + staging_s * 1000;
  for (int e = 1; e <= epochs; ++e) {
    s += Ev(t, "INTERVAL_START", "epoch_start", StrCat("\"epoch_num\": ", e));
    t += 10000;
    s += Ev(t, "INTERVAL_END", "epoch_stop", StrCat("\"epoch_num\": ", e));
  }
  return s + Ev(t, "INTERVAL_END", "run_stop", "\"status\": \"success\"");
}

// Later rounds' trees keep aborted runs; one must not cost the table, nor distort its medians.
TEST(StagingAnalysis, AbortedRunsAreListedAndLeftOutOfTheMedians) {
  ::tilestage::testing::TempDir dir;
  WriteFile(dir.Sub("a/result_1.txt"), GoodRun(0, 100, 2));   // run 120 s
  WriteFile(dir.Sub("a/result_2.txt"), GoodRun(0, 300, 4));   // run 340 s
  // Truncated: run_start at line 3, staging 5000 s, never stops.
  WriteFile(dir.Sub("a/result_3.txt"), Ev(0, "POINT_IN_TIME", "x") + Ev(0, "POINT_IN_TIME", "y") +
                                           Ev(0, "INTERVAL_START", "run_start") +
                                           Ev(0, "INTERVAL_START", "staging_start") +
                                           Ev(5000000, "INTERVAL_END", "staging_stop"));
  // Stopped with status aborted.
  WriteFile(dir.Sub("a/result_4.txt"),
            Ev(0, "INTERVAL_START", "run_start") + Ev(0, "INTERVAL_START", "staging_start") +
                Ev(9000000, "INTERVAL_END", "staging_stop") +
                Ev(9000001, "INTERVAL_END", "run_stop", "\"status\": \"aborted\""));
  auto paths = ExpandMlLogPaths({dir.path()});
  ASSERT_TRUE(paths.ok());
  auto analysis = AnalyzeMlLogFiles(*paths, GroupBy::kDirectory);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  ASSERT_EQ(analysis->runs.size(), 4u);
  EXPECT_EQ(analysis->runs[2].state, RunState::kAborted);
  EXPECT_EQ(analysis->runs[2].run_stop_line, 0);
  EXPECT_DOUBLE_EQ(analysis->runs[2].run_s, 5000.0);  // to its last event
  EXPECT_NE(analysis->runs[2].warnings[0].find(dir.Sub("a/result_3.txt") +
                                               ":3: run_start has no run_stop"),
            std::string::npos);
  EXPECT_EQ(analysis->runs[3].state, RunState::kAborted);
  ASSERT_EQ(analysis->groups.size(), 1u);
  const GroupSummary& g = analysis->groups[0];
  EXPECT_EQ(g.runs, 4);
  EXPECT_EQ(g.runs_aborted, 2);
  EXPECT_EQ(g.runs_counted, 2);
  EXPECT_DOUBLE_EQ(g.staging_s->median, 200.0);  // {100, 300}; not 5000 or 9000
  EXPECT_DOUBLE_EQ(g.staging_s->max, 300.0);
  EXPECT_DOUBLE_EQ(g.run_s->median, 230.0);      // {120, 340}
  const std::string table = FormatStagingAnalysis(*analysis);
  const size_t listed = table.find(dir.Sub("a/result_3.txt") + " (lines 3-end)");
  ASSERT_NE(listed, std::string::npos) << table;
  EXPECT_NE(table.rfind("aborted", listed), std::string::npos) << table;
}

// OpenFold logs count epochs in samples and log epoch_stop without epoch_start: one warning, no
// epoch figures, and the run's staging and time to train still count.
TEST(StagingAnalysis, OpenFoldStyleEpochStopsWithoutStartsGiveOneWarning) {
  std::string log = Ev(0, "INTERVAL_START", "run_start") +
                    Ev(0, "POINT_IN_TIME", "staging_start") +
                    Ev(30000, "POINT_IN_TIME", "staging_stop");
  for (int i = 1; i <= 40; ++i)
    log += Ev(30000 + i * 1000, "INTERVAL_END", "epoch_stop",
              StrCat("\"epoch_num\": ", 122080 * i));
  log += Ev(100000, "INTERVAL_END", "run_stop", "\"status\": \"success\"");
  auto runs = AnalyzeText(log);
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  const RunAnalysis& r = (*runs)[0];
  EXPECT_EQ(r.state, RunState::kOk);
  EXPECT_DOUBLE_EQ(*r.staging_s, 30.0);
  EXPECT_DOUBLE_EQ(*r.staging_per_run, 0.3);
  EXPECT_EQ(r.epochs, 0);
  EXPECT_FALSE(r.mean_epoch_s);
  EXPECT_FALSE(r.staging_per_epoch);
  ASSERT_EQ(r.warnings.size(), 4u);  // three spelled out, then a count
  EXPECT_NE(r.warnings[0].find("t.log:4: epoch_stop (epoch_num 122080) without a matching "
                               "epoch_start; the run's epoch figures are left out"),
            std::string::npos)
      << r.warnings[0];
  EXPECT_NE(r.warnings[3].find("and 37 more unmatched epoch events"), std::string::npos);
}

TEST(StagingAnalysis, MalformedLineIsSkippedWithAWarningAndTheRunIsRead) {
  ::tilestage::testing::TempDir dir;
  std::string log = GoodRun(0, 50, 2);
  log.insert(log.find(":::MLLOG", 10), ":::MLLOG {\"namespace\": \"\", \"time_ms\": 16\n");
  WriteFile(dir.Sub("result_1.txt"), log);
  auto analysis = AnalyzeMlLogFiles({dir.Sub("result_1.txt")}, GroupBy::kFile);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  ASSERT_EQ(analysis->warnings.size(), 1u);
  EXPECT_NE(analysis->warnings[0].find(dir.Sub("result_1.txt") +
                                       ":2: malformed :::MLLOG JSON"),
            std::string::npos)
      << analysis->warnings[0];
  ASSERT_EQ(analysis->runs.size(), 1u);
  EXPECT_EQ(analysis->runs[0].state, RunState::kOk);
  EXPECT_DOUBLE_EQ(*analysis->runs[0].staging_s, 50.0);
}

TEST(StagingAnalysis, NoReadableRunInAnyFileIsAnError) {
  ::tilestage::testing::TempDir dir;
  WriteFile(dir.Sub("result_1.txt"), ":::MLLOG {broken\n");
  WriteFile(dir.Sub("result_2.txt"), Ev(0, "INTERVAL_START", "init_start"));
  auto analysis = AnalyzeMlLogFiles({dir.Sub("result_1.txt"), dir.Sub("result_2.txt")},
                                    GroupBy::kFile);
  ASSERT_FALSE(analysis.ok());
  EXPECT_NE(analysis.status().message().find("no run could be read from the 2 file(s) given"),
            std::string::npos)
      << analysis.status().message();
  EXPECT_NE(analysis.status().message().find(dir.Sub("result_1.txt") + ":1: malformed"),
            std::string::npos)
      << analysis.status().message();
}

// issue 21: time_ms at the ends of int64 (signed overflow in differences), a staging_duration of
// 1e300 (out-of-range conversion) and a negative one are warnings and stay out of the figures.
TEST(StagingAnalysis, ImplausibleValuesAreWarnedAndExcluded) {
  const std::string big = std::to_string(std::numeric_limits<int64_t>::max());
  const std::string small = std::to_string(std::numeric_limits<int64_t>::min());
  auto raw = [](const std::string& t, const char* type, const char* key) {
    return StrCat(":::MLLOG {\"namespace\": \"\", \"time_ms\": ", t, ", \"event_type\": \"", type,
                  "\", \"key\": \"", key, "\", \"value\": null, \"metadata\": {}}\n");
  };
  auto duration = [](const char* seconds) {
    return StrCat(":::MLLOG {\"namespace\": \"\", \"time_ms\": 500, \"event_type\": "
                  "\"POINT_IN_TIME\", \"key\": \"staging_duration\", \"value\": ", seconds,
                  ", \"metadata\": {}}\n");
  };
  // 1: time_ms extremes around a real run: the stop at INT64_MAX is ignored, the run aborted.
  auto runs = AnalyzeText(raw(small, "INTERVAL_START", "run_start") +
                          Ev(0, "INTERVAL_START", "run_start") +
                          Ev(0, "INTERVAL_START", "staging_start") +
                          raw(big, "INTERVAL_END", "staging_stop") +
                          Ev(60000, "INTERVAL_END", "run_stop"));
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 1u);
  const RunAnalysis& r = (*runs)[0];
  EXPECT_DOUBLE_EQ(r.run_s, 60.0);
  EXPECT_FALSE(r.staging_s);
  EXPECT_EQ(r.state, RunState::kStagingUnusable);
  std::string all;
  for (const std::string& w : r.warnings) all += w + "\n";
  EXPECT_NE(all.find("t.log:1: run_start at time_ms " + small + " is not a plausible time"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("t.log:4: staging_stop at time_ms " + big + " is not a plausible time"),
            std::string::npos)
      << all;
  // 2 and 3: durations out of range, as the only staging figure of the run.
  for (const char* bad : {"1e300", "-100"}) {
    runs = AnalyzeText(Ev(0, "INTERVAL_START", "run_start") + duration(bad) +
                       Ev(600000, "INTERVAL_END", "run_stop"));
    ASSERT_TRUE(runs.ok()) << runs.status().ToString();
    const RunAnalysis& d = (*runs)[0];
    EXPECT_FALSE(d.staging_s) << bad;
    EXPECT_FALSE(d.staging_per_run) << bad;
    EXPECT_EQ(d.state, RunState::kStagingUnusable) << bad;
    EXPECT_DOUBLE_EQ(d.split_staging_s, 0) << bad;
    ASSERT_FALSE(d.warnings.empty()) << bad;
    EXPECT_NE(d.warnings[0].find("t.log:2: staging_duration value"), std::string::npos)
        << d.warnings[0];
    EXPECT_NE(d.warnings[0].find("is implausible"), std::string::npos) << d.warnings[0];
  }
  // A duration longer than its run.
  runs = AnalyzeText(Ev(0, "INTERVAL_START", "run_start") + duration("700") +
                     Ev(600000, "INTERVAL_END", "run_stop"));
  ASSERT_TRUE(runs.ok());
  EXPECT_FALSE((*runs)[0].staging_s);
  EXPECT_NE((*runs)[0].warnings[0].find("exceeds the run"), std::string::npos);
  // A staging interval, plausible times each, far longer than its one-second run.
  runs = AnalyzeText(Ev(0, "INTERVAL_START", "staging_start") +
                     Ev(9999999999000, "INTERVAL_START", "run_start") +
                     Ev(9999999999999, "INTERVAL_END", "staging_stop") +
                     Ev(9999999999999, "INTERVAL_END", "run_stop"));
  ASSERT_TRUE(runs.ok());
  EXPECT_FALSE((*runs)[0].staging_s);
  EXPECT_FALSE((*runs)[0].staging_per_run);
  EXPECT_EQ((*runs)[0].state, RunState::kStagingUnusable);
  EXPECT_DOUBLE_EQ((*runs)[0].split_staging_s, 0);
}

// A published tree: submissions from the path (round, submitter, system, scale, benchmark), the
// pruned_results folder inside its submission, and weak scaling's instances and throughput.
TEST(StagingAnalysis, ResultTreeIsGroupedIntoSubmissions) {
  ::tilestage::testing::TempDir dir;
  const std::string root = dir.Sub("hpc_results_v2.0/OrgA/results");
  WriteFile(root + "/sys_n16_x/strong/cosmoflow/result_0.txt", GoodRun(0, 100, 2));
  WriteFile(root + "/sys_n16_x/strong/cosmoflow/result_1.txt", GoodRun(0, 120, 2));
  WriteFile(root + "/sys_n64_x/strong/cosmoflow/result_0.txt", GoodRun(0, 40, 2));
  // Weak: instance 0 runs 0..60 s, instance 1 runs 30..130 s; instance 2 was pruned.
  WriteFile(root + "/sys_n4_x/weak/deepcam/result_0.txt", GoodRun(0, 20, 4));
  WriteFile(root + "/sys_n4_x/weak/deepcam/result_1.txt", GoodRun(30000, 20, 8));
  WriteFile(root + "/sys_n4_x/weak/deepcam/pruned_results/result_2.txt", GoodRun(0, 900, 1));
  auto paths = ExpandMlLogPaths({dir.path()});
  ASSERT_TRUE(paths.ok());
  EXPECT_EQ(paths->size(), 6u);
  auto analysis = AnalyzeMlLogFiles(*paths, GroupBy::kSubmission);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  ASSERT_EQ(analysis->groups.size(), 3u);
  std::map<std::string, const GroupSummary*> by_label;
  for (const GroupSummary& g : analysis->groups) by_label[g.group] = &g;
  ASSERT_TRUE(by_label.count("v2.0 OrgA/sys_n16_x strong cosmoflow"));
  ASSERT_TRUE(by_label.count("v2.0 OrgA/sys_n64_x strong cosmoflow"));
  ASSERT_TRUE(by_label.count("v2.0 OrgA/sys_n4_x weak deepcam"));
  const GroupSummary& s16 = *by_label["v2.0 OrgA/sys_n16_x strong cosmoflow"];
  EXPECT_EQ(s16.round, "v2.0");
  EXPECT_EQ(s16.submitter, "OrgA");
  EXPECT_EQ(s16.scale, "strong");
  EXPECT_DOUBLE_EQ(s16.staging_s->median, 110.0);
  EXPECT_FALSE(s16.instances);
  const GroupSummary& weak = *by_label["v2.0 OrgA/sys_n4_x weak deepcam"];
  EXPECT_EQ(weak.runs, 3);
  EXPECT_EQ(weak.runs_pruned, 1);
  EXPECT_EQ(weak.runs_counted, 2);
  EXPECT_DOUBLE_EQ(weak.staging_s->median, 20.0);  // the pruned 900 s is left out
  ASSERT_TRUE(weak.instances);
  EXPECT_EQ(*weak.instances, 2);
  EXPECT_DOUBLE_EQ(*weak.time_to_train_all_s, 130.0);  // 0 .. 30 + 20 + 80 s
  EXPECT_DOUBLE_EQ(*weak.models_per_min, 2 / (130.0 / 60.0));
}

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
  EXPECT_EQ(j["schema"], "tilestage-staging-analysis/2");
  EXPECT_TRUE(j["definitions"].contains("staging_per_epoch"));
  EXPECT_DOUBLE_EQ(j["runs"][0]["staging_per_run"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["groups"][0]["staging_per_epoch"]["median"].get<double>(), 2.0);
  EXPECT_TRUE(j["runs"][0]["init_s"].is_null());
}

}  // namespace
}  // namespace tilestage::bench
