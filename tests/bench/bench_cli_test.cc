// The `tilestage bench analyze|model|report` subcommands, run as a user would.
#include <gtest/gtest.h>

#include <filesystem>
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
  auto r = RunCommand(CliPath() + " bench analyze --runs --group-by dir " + kData +
                      "/cosmoflow_style/result_1.txt " + kData + "/cosmoflow_style/result_2.txt " +
                      kData + "/cosmoflow_style/result_3.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Per run"), std::string::npos);
  EXPECT_NE(r.output.find("60.0%"), std::string::npos) << r.output;  // 300 / 500.002
  EXPECT_NE(r.output.find("Per submission"), std::string::npos);
  // Median [min-max] over {300, 200, 150.5} s of staging, {500.002, 400, 600} s of run.
  EXPECT_NE(r.output.find("16x4     3     0    200.00 [150.50-300.00]      500.00 "
                          "[400.00-600.00]    50.0 [25.1-60.0]"),
            std::string::npos)
      << r.output;
}

TEST(BenchCli, AnalyzeWalksAResultTree) {
  auto r = RunCommand(CliPath() + " bench analyze --json --group-by dir " + kData);
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

TEST(BenchCli, AnalyzeFileWithOnlyAMalformedLineExitsNonZeroNamingFileAndLine) {
  TempDir dir;
  const std::string path = dir.Sub("bad.log");
  std::ofstream(path) << "hello\n:::MLLOG {\"key\": \"run_start\", \"time_ms\": \n";
  auto r = RunCommand(CliPath() + " bench analyze " + path);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("no run could be read from the 1 file(s) given"), std::string::npos)
      << r.output;
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
  EXPECT_NE(r.output.find(path + ": no run_start"), std::string::npos) << r.output;
}

std::string Line(int64_t t, const char* type, const char* key, const std::string& md = "") {
  return StrCat(":::MLLOG {\"namespace\": \"\", \"time_ms\": ", t, ", \"event_type\": \"", type,
                "\", \"key\": \"", key, "\", \"value\": null, \"metadata\": {\"lineno\": 1",
                md.empty() ? "" : ", " + md, "}}\n");
}

// run_start at 0, staging 0..staging_s, one 10 s epoch, run_stop.
std::string OneRun(int staging_s) {
  const int64_t t = staging_s * 1000;
  return Line(0, "INTERVAL_START", "run_start") + Line(0, "INTERVAL_START", "staging_start") +
         Line(t, "INTERVAL_END", "staging_stop") +
         Line(t, "INTERVAL_START", "epoch_start", "\"epoch_num\": 1") +
         Line(t + 10000, "INTERVAL_END", "epoch_stop", "\"epoch_num\": 1") +
         Line(t + 10000, "INTERVAL_END", "run_stop", "\"status\": \"success\"");
}

// The three shapes of the later rounds that used to stop the analysis, in one tree: the table is
// printed, exit 0, each oddity a warning naming the file and line.
TEST(BenchCli, AnalyzeTreeWithAbortedOpenFoldAndMalformedRunsPrintsTheTable) {
  TempDir dir;
  const std::string sub = dir.Sub("Org/results/sys/strong/openfold");
  std::filesystem::create_directories(sub + "/pruned_results");
  std::ofstream(sub + "/result_0.txt") << OneRun(20);
  std::ofstream(sub + "/result_1.txt") << OneRun(40);
  // Aborted (pruned_results, as the published trees keep them): no run_stop.
  std::ofstream(sub + "/pruned_results/result_2.txt")
      << Line(0, "INTERVAL_START", "run_start") + Line(0, "INTERVAL_START", "staging_start");
  // OpenFold-style: epoch_stop without epoch_start.
  std::ofstream(sub + "/result_3.txt")
      << Line(0, "INTERVAL_START", "run_start") + Line(0, "INTERVAL_START", "staging_start") +
             Line(30000, "INTERVAL_END", "staging_stop") +
             Line(40000, "INTERVAL_END", "epoch_stop", "\"epoch_num\": 122080") +
             Line(50000, "INTERVAL_END", "run_stop", "\"status\": \"success\"");
  // A damaged line in the middle of an otherwise good log.
  std::string damaged = OneRun(60);
  damaged.insert(damaged.find(":::MLLOG", 5), ":::MLLOG {\"namespace\": \"\", \"time_\n");
  std::ofstream(sub + "/result_4.txt") << damaged;

  auto r = RunCommand(CliPath() + " bench analyze " + dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& err = r.output;  // the warnings come on stderr, captured with stdout
  EXPECT_NE(err.find(sub + "/pruned_results/result_2.txt:1: run_start has no run_stop"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(sub + "/result_3.txt:4: epoch_stop (epoch_num 122080) without a matching "
                           "epoch_start"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(sub + "/result_4.txt:2: malformed :::MLLOG JSON"), std::string::npos) << err;
  // One submission: 5 runs, 1 aborted; staging median of {20, 40, 30, 60} = 35.
  EXPECT_NE(r.output.find("    5     1       35.00 [20.00-60.00]"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Org/sys strong openfold"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("aborted"), std::string::npos) << r.output;
}

TEST(BenchCli, AnalyzeCompareShowsATilestageRunBesideThePublished) {
  TempDir dir;
  std::filesystem::create_directories(dir.Sub("a"));
  std::filesystem::create_directories(dir.Sub("b"));
  std::ofstream(dir.Sub("a/result_1.txt")) << OneRun(10);   // 10 / 20 s: 50%
  std::ofstream(dir.Sub("b/result_1.txt")) << OneRun(30);   // 30 / 40 s: 75%
  std::ofstream(dir.Sub("mllog.txt")) << OneRun(20);         // 20 / 30 s: 66.7%
  auto r = RunCommand(CliPath() + " bench analyze --group-by dir " + dir.path() + "/a " +
                      dir.path() + "/b --compare " + dir.Sub("mllog.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("* tilestage " + dir.Sub("mllog.txt")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("staging is 66.7% of time to train, more than in 1 of 2 published"),
            std::string::npos)
      << r.output;
  auto j = RunCommand(CliPath() + " bench analyze --json --group-by dir " + dir.path() + "/a " +
                      "--compare " + dir.Sub("mllog.txt") + " 2>/dev/null");
  ASSERT_EQ(j.exit_code, 0) << j.output;
  Json parsed = Json::parse(j.output);
  ASSERT_EQ(parsed["groups"].size(), 2u);
  EXPECT_TRUE(parsed["groups"][1]["compare"].get<bool>());
  auto bad = RunCommand(CliPath() + " bench analyze " + dir.path() + "/a --compare " +
                        dir.Sub("missing.txt"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--compare " + dir.Sub("missing.txt")), std::string::npos)
      << bad.output;
}

// The table's figures on the published MLPerf HPC v1.0 logs against an independent computation
// (Python's json and statistics on the raw lines: staging = staging_stop - staging_start per run,
// medians per result folder), and --json / --csv parsed by Python's json and csv modules.
TEST(BenchCli, AnalyzePublishedV10LogsMatchAnIndependentComputation) {
  const std::string data = ::tilestage::testing::SharedData("mllog/hpc_results_v1.0");
  ASSERT_TRUE(std::filesystem::is_directory(data)) << data << " is missing";
  TempDir dir;
  auto j = RunCommand(CliPath() + " bench analyze --json " + data + " >" + dir.Sub("a.json") +
                      " 2>" + dir.Sub("err.txt"));
  ASSERT_EQ(j.exit_code, 0) << j.output;
  auto c = RunCommand(CliPath() + " bench analyze --csv " + data + " >" + dir.Sub("a.csv") +
                      " 2>/dev/null");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  std::ofstream(dir.Sub("check.py")) << R"(import csv, glob, json, os, statistics, sys
data, json_path, csv_path = sys.argv[1:4]
folders = {}
for path in glob.glob(os.path.join(data, '**', 'result_*.txt'), recursive=True):
    t = {}
    for line in open(path, encoding='utf-8'):
        if ':::MLLOG' in line:
            e = json.loads(line.split(':::MLLOG', 1)[1])
            t.setdefault(e['key'], e['time_ms'])
    folders.setdefault(os.path.dirname(path), []).append(
        ((t['staging_stop'] - t['staging_start']) / 1000, (t['run_stop'] - t['run_start']) / 1000))
out = json.load(open(json_path))
group_of = {}
for run in out['runs']:
    group_of.setdefault(os.path.dirname(run['file']), set()).add(run['group'])
groups = {g['group']: g for g in out['groups']}
def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(b))
bad = []
for folder, runs in folders.items():
    names = group_of.get(folder, set())
    if len(names) != 1:
        bad.append('%s: groups %s' % (folder, names)); continue
    g = groups[names.pop()]
    staging = [s for s, r in runs]; run = [r for s, r in runs]
    share = [s / r for s, r in runs]
    for key, values in (('staging_s', staging), ('run_s', run), ('staging_per_run', share)):
        want = (statistics.median(values), min(values), max(values))
        got = (g[key]['median'], g[key]['min'], g[key]['max'])
        if not all(close(x, y) for x, y in zip(got, want)):
            bad.append('%s %s: tilestage %s, python %s' % (folder, key, got, want))
    if g['runs'] != len(runs) or g['runs_counted'] != len(runs):
        bad.append('%s: %d runs, python %d' % (folder, g['runs'], len(runs)))
rows = list(csv.DictReader(open(csv_path, newline='')))
if len(rows) != len(out['groups']):
    bad.append('csv has %d rows, json %d groups' % (len(rows), len(out['groups'])))
for row in rows:
    g = groups[row['group']]
    for key in ('staging_s', 'run_s', 'staging_per_run'):
        if not close(float(row[key + '_median']), g[key]['median'], 1e-5):
            bad.append('csv %s %s' % (row['group'], key))
    if int(row['runs']) != g['runs'] or int(row['nodes_min']) != g['nodes_min']:
        bad.append('csv %s runs/nodes' % row['group'])
print('\n'.join(bad) if bad else 'OK %d folders, %d groups' % (len(folders), len(groups)))
sys.exit(1 if bad else 0)
)";
  auto check = RunCommand(::tilestage::testing::PythonPath() + " " + dir.Sub("check.py") + " " +
                          data + " " + dir.Sub("a.json") + " " + dir.Sub("a.csv"));
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("OK 11 folders, 11 groups"), std::string::npos) << check.output;
}

TEST(BenchCli, ModelValidateOnPublishedLogsPrintsPredictedVsPublished) {
  const std::string data = ::tilestage::testing::SharedData("mllog/hpc_results_v1.0");
  auto r = RunCommand(CliPath() + " bench model --json --validate " + data + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json j = Json::parse(r.output);
  // Three systems at two node counts each (DGX A100 CosmoFlow 16/128, JUWELS Booster CosmoFlow
  // 128/256 and DeepCAM 256/512), each point predicted from the other.
  EXPECT_EQ(j["predictions"], 6);
  for (const Json& row : j["rows"]) {
    EXPECT_NE(row["calibration_nodes"], row["nodes"]);
    EXPECT_DOUBLE_EQ(row["ratio"].get<double>(),
                     row["predicted_s"].get<double>() / row["published_s"].get<double>());
  }
  auto table = RunCommand(CliPath() + " bench model --validate " + data + " 2>/dev/null");
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("Within 2x of the published staging time:"), std::string::npos)
      << table.output;
  auto bad = RunCommand(CliPath() + " bench model --validate " + data + " --calibrate disk");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--calibrate 'disk'"), std::string::npos) << bad.output;
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
