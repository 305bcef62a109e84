#include "bench/e2e/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::PythonPath;
using ::tilestage::testing::RunCommand;
using ::tilestage::testing::TempDir;

Json SmallResults() {
  return Json::parse(R"({
    "schema": "tilestage-e2e-results/1",
    "system": {"host": "node1", "cores": 2, "cpu": "Example CPU <AVX-512> & more"},
    "provenance": {"tilestage_version": "0.1.0", "command": "tilestage bench e2e --preset small"},
    "stages": [
      {"name": "staging", "unit": "GB/s",
       "tilestage": {"amount": 4.0, "seconds": 2.0},
       "peer": {"name": "cp", "amount": 4.0, "seconds": 5.0},
       "limit": {"name": "raw read bandwidth", "rate": 3.0}},
      {"name": "loader", "unit": "samples/s",
       "tilestage": {"amount": 1000, "seconds": 4.0},
       "peer": {"name": "PyTorch DataLoader", "amount": 1000, "seconds": 10.0}},
      {"name": "training", "unit": "GFLOP/s", "tilestage": {"rate": 120.0},
       "limit": {"name": "sgemm", "rate": 150.0}}
    ],
    "time_to_train": {"run_s": 100.0, "staging_s": 10.0, "training_s": 70.0,
                      "evaluation_s": 5.0, "epoch_s": [25.0, 25.0, 20.0]},
    "data_stalls": {"samples": 4096, "synthetic_s": 10.0, "cached_s": 12.0, "cold_s": 15.0}
  })");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(E2eReport, DerivedFiguresFollowFromTheRawTimings) {
  auto r = E2eResultsFromJson(SmallResults(), "results.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->stages.size(), 3u);
  const StageResult& staging = r->stages[0];
  EXPECT_DOUBLE_EQ(staging.tilestage.rate, 2.0);
  EXPECT_DOUBLE_EQ(staging.peer->rate, 0.8);
  EXPECT_DOUBLE_EQ(*staging.vs_peer, 2.5);
  EXPECT_DOUBLE_EQ(*staging.of_limit, 2.0 / 3.0);
  EXPECT_FALSE(r->stages[1].limit);
  EXPECT_DOUBLE_EQ(*r->stages[1].vs_peer, 2.5);
  EXPECT_FALSE(r->stages[2].peer);
  EXPECT_DOUBLE_EQ(*r->stages[2].of_limit, 0.8);
  const TimeToTrain& t = *r->time_to_train;
  EXPECT_DOUBLE_EQ(t.other_s, 15.0);
  EXPECT_DOUBLE_EQ(t.staging_per_run, 0.1);
  EXPECT_DOUBLE_EQ(*t.mean_epoch_s, 70.0 / 3);
  EXPECT_DOUBLE_EQ(*t.staging_per_epoch, 10.0 / (70.0 / 3));
  const DataStalls& d = *r->data_stalls;
  EXPECT_DOUBLE_EQ(d.prep_stall_s, 2.0);
  EXPECT_DOUBLE_EQ(d.fetch_stall_s, 3.0);
  EXPECT_DOUBLE_EQ(d.au_percent, 100.0 * 10.0 / 15.0);
  EXPECT_DOUBLE_EQ(d.fetch_stall_share, 0.2);
}

TEST(E2eReport, WritesEveryFieldAndConsistentRatios) {
  auto r = E2eResultsFromJson(SmallResults(), "results.json");
  ASSERT_TRUE(r.ok());
  TempDir dir;
  const std::string out = dir.Sub("report");
  ASSERT_TRUE(WriteE2eReport(*LocalStorage(), out, *r).ok());
  for (const char* f : {"report.json", "report.md", "stages.svg", "time_to_train.svg",
                        "data_stalls.svg"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;

  const Json j = Json::parse(ReadFile(out + "/report.json"));
  EXPECT_EQ(j["schema"], "tilestage-e2e-report/1");
  EXPECT_EQ(j["system"]["host"], "node1");
  EXPECT_EQ(j["provenance"]["command"], "tilestage bench e2e --preset small");
  // Each stage: raw measurements and derived rates; the ratios recomputed from the raw numbers.
  for (const Json& s : j["stages"]) {
    for (const char* k : {"name", "unit", "tilestage", "peer", "limit", "derived"})
      ASSERT_TRUE(s.contains(k)) << k;
    const Json& d = s["derived"];
    for (const char* k : {"rate", "peer_rate", "limit_rate", "vs_peer", "of_limit"})
      ASSERT_TRUE(d.contains(k)) << k;
    const Json& ts = s["tilestage"];
    const double rate = ts["seconds"].is_null()
                            ? ts["rate"].get<double>()
                            : ts["amount"].get<double>() / ts["seconds"].get<double>();
    EXPECT_DOUBLE_EQ(d["rate"].get<double>(), rate);
    if (!s["peer"].is_null()) {
      const double peer = s["peer"]["amount"].get<double>() / s["peer"]["seconds"].get<double>();
      EXPECT_DOUBLE_EQ(d["vs_peer"].get<double>(), rate / peer);
    } else {
      EXPECT_TRUE(d["vs_peer"].is_null());
    }
    if (!s["limit"].is_null()) {
      EXPECT_DOUBLE_EQ(d["of_limit"].get<double>(), rate / s["limit"]["rate"].get<double>());
    }
  }
  const Json& t = j["time_to_train"];
  const Json& td = t["derived"];
  for (const char* k : {"other_s", "staging_per_run", "training_per_run", "evaluation_per_run",
                        "other_per_run", "epochs", "mean_epoch_s", "staging_per_epoch"})
    ASSERT_TRUE(td.contains(k)) << k;
  EXPECT_DOUBLE_EQ(t["staging_s"].get<double>() + t["training_s"].get<double>() +
                       t["evaluation_s"].get<double>() + td["other_s"].get<double>(),
                   t["run_s"].get<double>());
  EXPECT_DOUBLE_EQ(td["staging_per_run"].get<double>(),
                   t["staging_s"].get<double>() / t["run_s"].get<double>());
  EXPECT_EQ(td["epochs"], 3);
  const Json& d = j["data_stalls"];
  const Json& dd = d["derived"];
  for (const char* k : {"compute_s", "prep_stall_s", "fetch_stall_s", "au_percent",
                        "prep_stall_share", "fetch_stall_share", "cold_samples_per_s"})
    ASSERT_TRUE(dd.contains(k)) << k;
  EXPECT_DOUBLE_EQ(dd["compute_s"].get<double>() + dd["prep_stall_s"].get<double>() +
                       dd["fetch_stall_s"].get<double>(),
                   d["cold_s"].get<double>());
  EXPECT_DOUBLE_EQ(dd["cold_samples_per_s"].get<double>(), 4096.0 / 15.0);

  const std::string md = ReadFile(out + "/report.md");
  for (const char* s : {"| staging | GB/s | 2 | cp | 0.8 | 2.50x | raw read bandwidth | 3 | "
                        "66.7% |",
                        "staging/run: 10.0%", "AU 66.7%", "fetch stall 3.000 s (20.0%)",
                        "![stage rates](stages.svg)", "## System", "## Provenance"})
    EXPECT_NE(md.find(s), std::string::npos) << s << "\n" << md;
}

TEST(E2eReport, SvgChartsAreWellFormedXml) {
  auto r = E2eResultsFromJson(SmallResults(), "results.json");
  ASSERT_TRUE(r.ok());
  TempDir dir;
  ASSERT_TRUE(WriteE2eReport(*LocalStorage(), dir.path(), *r).ok());
  // Python's XML parser is the independent judge; it also counts the bars drawn.
  const std::string script =
      "import sys, xml.etree.ElementTree as ET\n"
      "for p in sys.argv[1:]:\n"
      "    root = ET.parse(p).getroot()\n"
      "    assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag\n"
      "    print(p.rsplit('/', 1)[1], len(root.findall('{http://www.w3.org/2000/svg}rect')))\n";
  std::ofstream(dir.Sub("check.py")) << script;
  auto result = RunCommand(PythonPath() + " " + dir.Sub("check.py") + " " +
                           dir.Sub("stages.svg") + " " + dir.Sub("time_to_train.svg") + " " +
                           dir.Sub("data_stalls.svg"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // stages: background + 3 legend + 3 + 2 + 2 bars; time to train: background + 4 segments + 4
  // legend; stalls: background + 1 + 2 + 3 segments + 3 legend.
  EXPECT_NE(result.output.find("stages.svg 11"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("time_to_train.svg 9"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("data_stalls.svg 10"), std::string::npos) << result.output;
  // The "<AVX-512> & more" of the system facts never reaches the SVG unescaped.
  EXPECT_EQ(XmlEscape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}

struct BadResults {
  std::string name;
  std::string json_patch;  // a JSON object merged over the small results
  std::string expected;
};
void PrintTo(const BadResults& c, std::ostream* os) { *os << c.name; }
class InvalidResults : public ::testing::TestWithParam<BadResults> {};

TEST_P(InvalidResults, IsInvalidArgumentNamingTheField) {
  Json j = SmallResults();
  j.update(Json::parse(GetParam().json_patch));
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(GetParam().expected), std::string::npos)
      << r.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InvalidResults,
    ::testing::Values(
        BadResults{"WrongSchema", R"({"schema": "other/2"})", "results.json: \"schema\""},
        BadResults{"PartsExceedRun",
                   R"({"time_to_train": {"run_s": 50, "staging_s": 10, "training_s": 70,
                       "evaluation_s": 5}})",
                   "time_to_train: staging_s + training_s + evaluation_s = 85 exceeds run_s = 50"},
        BadResults{"PeerWithoutSeconds",
                   R"({"stages": [{"name": "s", "unit": "GB/s", "tilestage": {"rate": 1},
                       "peer": {"name": "cp", "amount": 4}}]})",
                   "results.json: stages[0].peer.seconds must be a number"},
        BadResults{"ZeroSeconds",
                   R"({"stages": [{"name": "s", "unit": "GB/s",
                       "tilestage": {"amount": 1, "seconds": 0}}]})",
                   "stages[0].tilestage.seconds must be a positive number, got 0"},
        BadResults{"RateAndAmount",
                   R"({"stages": [{"name": "s", "unit": "GB/s",
                       "tilestage": {"rate": 1, "amount": 1, "seconds": 1}}]})",
                   "stages[0].tilestage: give either rate or amount and seconds"},
        BadResults{"NegativeEpoch",
                   R"({"time_to_train": {"run_s": 50, "staging_s": 1, "training_s": 1,
                       "evaluation_s": 1, "epoch_s": [1, -2]}})",
                   "time_to_train.epoch_s[1] must be a positive number"},
        BadResults{"StallRunMissing", R"({"data_stalls": {"samples": 1, "synthetic_s": 1,
                       "cached_s": 2}})",
                   "data_stalls.cold_s must be a number"},
        BadResults{"StallRoundNotPositive", R"({"data_stalls": {"samples": 1, "synthetic_s": 1,
                       "cached_s": 2, "cold_s": 3, "rounds": [{"synthetic_s": 1,
                       "cached_s": 2, "cold_s": 3}, {"synthetic_s": 1, "cached_s": -2,
                       "cold_s": 3}]}})",
                   "data_stalls.rounds[1].cached_s must be a positive number"},
        BadResults{"StallRoundsEmpty", R"({"data_stalls": {"samples": 1, "synthetic_s": 1,
                       "cached_s": 2, "cold_s": 3, "rounds": []}})",
                   "data_stalls.rounds must be a non-empty array"}),
    [](const ::testing::TestParamInfo<BadResults>& info) { return info.param.name; });

TEST(E2eReport, TimeToTrainFromAnalyzedLogMatchesTheAnalyzer) {
  auto records = ReadMlLog(std::string(TILESTAGE_BENCH_TEST_DATA) +
                           "/cosmoflow_style/result_1.txt");
  ASSERT_TRUE(records.ok());
  auto runs = AnalyzeMlLog(*records, "r1");
  ASSERT_TRUE(runs.ok());
  const RunAnalysis& run = (*runs)[0];
  Json j = SmallResults();
  j["time_to_train"] = TimeToTrainResultsJson(run);
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const TimeToTrain& t = *r->time_to_train;
  EXPECT_DOUBLE_EQ(t.run_s, 500.002);
  EXPECT_NEAR(t.other_s, run.split_other_s, 1e-9);
  EXPECT_NEAR(t.staging_per_run, *run.staging_per_run, 1e-12);
  EXPECT_NEAR(*t.staging_per_epoch, *run.staging_per_epoch, 1e-12);
  EXPECT_EQ(t.epoch_s, (std::vector<double>{70.001, 65.0, 65.0}));
}

// Runs faster than the run they contain are noise: the stall is 0 and the report says so, with
// the figures kept as measured.
TEST(E2eReport, StallOrderingViolatedByNoiseIsFlaggedNotOverwritten) {
  Json j = SmallResults();
  j["data_stalls"] = Json::parse(R"({"samples": 100, "synthetic_s": 10.0, "cached_s": 12.0,
      "cold_s": 11.5, "rounds": [{"synthetic_s": 10.0, "cached_s": 12.0, "cold_s": 11.5},
                                 {"synthetic_s": 9.0, "cached_s": 12.5, "cold_s": 11.0},
                                 {"synthetic_s": 10.5, "cached_s": 11.0, "cold_s": 13.0}]})");
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const DataStalls& d = *r->data_stalls;
  EXPECT_DOUBLE_EQ(d.cold_s, 11.5);
  EXPECT_DOUBLE_EQ(d.fetch_stall_s, 0.0);
  EXPECT_DOUBLE_EQ(d.prep_stall_s, 2.0);
  const Json report = E2eReportJson(*r);
  const Json& derived = report["data_stalls"]["derived"];
  ASSERT_EQ(derived["noise"].size(), 1u) << derived.dump();
  const std::string noise = derived["noise"][0];
  EXPECT_NE(noise.find("cold run faster than cached in 2 of 3 round(s)"), std::string::npos)
      << noise;
  EXPECT_NE(noise.find("fetch stall reported as 0"), std::string::npos) << noise;
  EXPECT_EQ(derived["rounds"], 3);
  EXPECT_EQ(derived["range"]["synthetic_s"], Json::parse("[9.0, 10.5]"));
  EXPECT_EQ(report["data_stalls"]["rounds"].size(), 3u);
  const std::string md = E2eReportMarkdown(*r);
  EXPECT_NE(md.find("Medians of 3 rounds"), std::string::npos) << md;
  EXPECT_NE(md.find("Noise: cold run faster than cached"), std::string::npos) << md;
}

TEST(E2eReport, SingleMeasuredStallsWithoutRoundsAreOneRound) {
  Json j = SmallResults();
  j["data_stalls"]["cached_s"] = 9.0;  // below synthetic 10.0
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Json derived = E2eReportJson(*r)["data_stalls"]["derived"];
  EXPECT_EQ(derived["rounds"], 1);
  ASSERT_EQ(derived["noise"].size(), 1u);
  EXPECT_NE(derived["noise"][0].get<std::string>().find("cached run faster than synthetic"),
            std::string::npos);
  EXPECT_TRUE(E2eReportJson(*E2eResultsFromJson(SmallResults(), "r"))["data_stalls"]["derived"]
                  ["noise"]
                      .empty());
}

TEST(E2eReport, StagesMeasuredInUnderASecondAreMarkedFixedCostScale) {
  Json j = SmallResults();
  j["stages"][1]["tilestage"] = {{"amount", 10}, {"seconds", 0.05}};
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->stages[0].fixed_cost_scale);  // 2 s
  EXPECT_TRUE(r->stages[1].fixed_cost_scale);   // 0.05 s
  EXPECT_FALSE(r->stages[2].fixed_cost_scale);  // a rate without its time
  EXPECT_EQ(E2eReportJson(*r)["stages"][1]["derived"]["fixed_cost_scale"], true);
  const std::string md = E2eReportMarkdown(*r);
  EXPECT_NE(md.find("| loader | samples/s |"), std::string::npos) << md;
  EXPECT_NE(md.find("(fixed-cost scale) |"), std::string::npos) << md;
  EXPECT_NE(md.find("Rows marked *fixed-cost scale*"), std::string::npos) << md;
  EXPECT_EQ(E2eReportMarkdown(*E2eResultsFromJson(SmallResults(), "results.json"))
                .find("fixed-cost scale"),
            std::string::npos);
}

// The widths of the bars drawn after `heading` (its stage's tilestage, peer and limit bars).
std::vector<double> BarWidthsAfter(const std::string& svg, const std::string& heading, int bars) {
  std::vector<double> widths;
  size_t at = svg.find(heading);
  for (int i = 0; i < bars && at != std::string::npos; ++i) {
    at = svg.find("width=\"", svg.find("<rect", at));
    widths.push_back(std::stod(svg.substr(at + 7)));
  }
  return widths;
}

TEST(E2eReport, StageRatesSpanningMoreThanADecadeAreDrawnOnALogScale) {
  Json j = SmallResults();
  // Staging: 2 GB/s against a limit of 3 (linear); ingest: 0.1 against a limit of 100.
  j["stages"].push_back({{"name", "ingest geotiff"},
                         {"unit", "GB/s"},
                         {"tilestage", {{"rate", 0.1}}},
                         {"peer", {{"name", "gdal_retile.py"}, {"rate", 0.01}}},
                         {"limit", {{"name", "raw read"}, {"rate", 100.0}}}});
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string svg = StagesSvg(r->stages);
  // Only the ingest row spans more than a decade (staging 0.8-3, loader 100-250, training
  // 120-150).
  const size_t log_note = svg.find("(log scale)");
  ASSERT_NE(log_note, std::string::npos) << svg;
  EXPECT_EQ(svg.find("(log scale)", log_note + 1), std::string::npos) << svg;
  EXPECT_GT(log_note, svg.find("ingest geotiff (GB/s)")) << svg;
  // Linear: widths in proportion to 2, 0.8 and 3 GB/s (380 px for the largest).
  const auto linear = BarWidthsAfter(svg, "staging (GB/s)", 3);
  ASSERT_EQ(linear.size(), 3u);
  EXPECT_NEAR(linear[0], 380 * 2.0 / 3.0, 0.1);
  EXPECT_NEAR(linear[1], 380 * 0.8 / 3.0, 0.1);
  EXPECT_NEAR(linear[2], 380.0, 0.1);
  // Log: 0.01 is a decade above the floor (0.001), 0.1 two, 100 five: widths 1/5, 2/5 and 5/5.
  const auto log = BarWidthsAfter(svg, "ingest geotiff (GB/s)", 3);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_NEAR(log[0], 380 * 2.0 / 5.0, 0.1);
  EXPECT_NEAR(log[1], 380 * 1.0 / 5.0, 0.1);
  EXPECT_NEAR(log[2], 380.0, 0.1);
}

TEST(E2eReport, StackedBarsStartPastTheLongestLabelAndColourEachPartApart) {
  const std::string label(60, 'w');
  const std::string svg = StackedBarsSvg(
      "t", {{"short", {{"staging", 1}, {"compute", 3}}}, {label, {{"compute", 2}, {"stall", 1}}}});
  // The first bar's first part follows its label (the first right-aligned text).
  const size_t first = svg.find("<rect x=\"", svg.find("text-anchor=\"end\""));
  ASSERT_NE(first, std::string::npos);
  EXPECT_GT(std::stod(svg.substr(first + 9)), 7.0 * double(label.size())) << svg;
  auto fill_of = [&](const std::string& part) {
    const size_t title = svg.find("<title>" + part + " ");
    const size_t fill = svg.rfind("fill=\"", title);
    return svg.substr(fill + 6, 7);
  };
  EXPECT_NE(fill_of("staging"), fill_of("compute"));
  EXPECT_NE(fill_of("compute"), fill_of("stall"));
  EXPECT_NE(fill_of("staging"), fill_of("stall"));
  EXPECT_NE(svg.find("4 s"), std::string::npos);  // the longest bar's total
}

TEST(E2eReport, StagingShareChartHasABarPerSubmissionAndTheComparedRunApart) {
  const std::string data = std::string(TILESTAGE_BENCH_TEST_DATA) + "/cosmoflow_style/";
  AnalyzeOptions options;
  options.compare = {data + "result_1.txt"};
  auto analysis = AnalyzeMlLogFiles({data + "result_2.txt", data + "result_3.txt"}, options);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  const std::string svg = StagingShareSvg(*analysis);
  int published = 0, compared = 0;
  for (const GroupSummary& g : analysis->groups) {
    if (!g.staging_per_run) continue;
    (g.compare ? compared : published) += 1;
    EXPECT_NE(svg.find(">" + XmlEscape(g.group) + "<"), std::string::npos) << g.group;
  }
  EXPECT_GE(published, 1);
  EXPECT_EQ(compared, 1);
  EXPECT_NE(svg.find("<title>published submission "), std::string::npos) << svg;
  EXPECT_NE(svg.find("<title>tilestage run "), std::string::npos) << svg;
}

TEST(E2eReport, MarkdownCellsEscapePipes) {
  Json j = SmallResults();
  j["stages"][0]["peer"]["name"] = "cp | tee";
  j["system"]["os"] = "line1\nline2";
  auto r = E2eResultsFromJson(j, "results.json");
  ASSERT_TRUE(r.ok());
  const std::string md = E2eReportMarkdown(*r);
  EXPECT_NE(md.find("| cp \\| tee |"), std::string::npos) << md;
  EXPECT_NE(md.find("| os | line1 line2 |"), std::string::npos) << md;
}

TEST(E2eReport, FullDiskLeavesNoReportJson) {
  auto r = E2eResultsFromJson(SmallResults(), "results.json");
  ASSERT_TRUE(r.ok());
  TempDir dir;
  FaultOptions faults;
  faults.write_budget_bytes = 3000;  // enough for report.md, not for everything
  auto storage = NewFaultInjectingStorage(LocalStorage(), faults);
  Status s = WriteE2eReport(*storage, dir.Sub("out"), *r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  // report.json marks a complete report; it must not exist after a failed write.
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("out/report.json")));
}

}  // namespace
}  // namespace tilestage::bench
