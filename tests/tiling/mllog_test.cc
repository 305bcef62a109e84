// The one MLLOG writer: lines byte for byte as mlperf-logging's mllog (Python's json.dumps) writes
// them, and the logger's call-site metadata and line atomicity.
#include "tiling/mllog.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "tests/common/test_util.h"

namespace tilestage {
namespace {

using ::tilestage::testing::PythonPath;
using ::tilestage::testing::RunCommand;
using ::tilestage::testing::TempDir;

MlEvent MakeEvent(const std::string& key, Json value, Json extra = Json::object()) {
  MlEvent e;
  e.time_ms = 1632833195185;
  e.event_type = MlEventType::kPointInTime;
  e.key = key;
  e.value = std::move(value);
  e.metadata = {{"file", "train.py"}, {"lineno", 215}};
  for (auto& [k, v] : extra.items()) e.metadata[k] = v;
  return e;
}

// The JSON of each `:::MLLOG` line (nlohmann's parser, independent of the writer); a line that
// does not parse fails the test.
std::vector<Json> ParseLines(const std::string& text) {
  std::vector<Json> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.rfind(kMlLogPrefix, 0), 0u) << line;
    Json j = Json::parse(line.substr(kMlLogPrefix.size()), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    out.push_back(std::move(j));
  }
  return out;
}

TEST(MlLogFormat, MatchesRealMlperfHpcLogLineByteForByte) {
  // A line of the form found in NVIDIA's MLPerf HPC v1.0 CosmoFlow result logs.
  MlEvent e;
  e.time_ms = 1632833541230;
  e.event_type = MlEventType::kIntervalEnd;
  e.key = "staging_stop";
  e.metadata = {{"file", "/workspace/cosmoflow/data.py"},
                {"lineno", 362},
                {"staging_duration", 346.04532980918884}};
  auto line = FormatMlLogLine(e);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(*line,
            ":::MLLOG {\"namespace\": \"\", \"time_ms\": 1632833541230, \"event_type\": "
            "\"INTERVAL_END\", \"key\": \"staging_stop\", \"value\": null, \"metadata\": "
            "{\"file\": \"/workspace/cosmoflow/data.py\", \"lineno\": 362, \"staging_duration\": "
            "346.04532980918884}}");
}

// Every line we write must be a fixed point of Python's json.loads/json.dumps, i.e. exactly what
// mllog (which formats with json.dumps) writes for the same values.
TEST(MlLogFormat, IdenticalToPythonJsonDumpsForAwkwardValues) {
  const std::vector<Json> values = {
      1.0, 0.0001, 0.00001, 1e15, 1e16, 1e22, -0.5, 5e-324, 1.2345678901234568e+17,
      346.04532980918884, 0.1, 1e-06, -0.0, 123456789012345.0, 0.30894327140413225,
      int64_t{-42}, uint64_t{18446744073709551615ull}, true, false, nullptr,
      "plain", "quote \" backslash \\ slash /", "tab\tnewline\ncr\rbell\x07 del\x7f",
      "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", Json::array({1, 2.5, "x"}),
      Json::array(), Json::object(), Json({{"b", 1}, {"a", Json::array({0.25, 0.125})}}),
      Json({{"cl\xc3\xa9 \"q\"", "\x01"}, {"", nullptr}})};
  TempDir dir;
  const std::string path = dir.Sub("lines.txt");
  std::vector<std::string> lines;
  {
    std::ofstream out(path);
    for (size_t i = 0; i < values.size(); ++i) {
      auto line = FormatMlLogLine(MakeEvent("k" + std::to_string(i), values[i],
                                            {{"epoch_num", static_cast<int>(i)}}));
      ASSERT_TRUE(line.ok()) << line.status().ToString();
      lines.push_back(*line);
      out << *line << "\n";
    }
  }
  const std::string script =
      "import json,sys,collections\n"
      "for l in open(sys.argv[1], encoding='utf-8'):\n"
      "    l = l.rstrip('\\n'); p = ':::MLLOG '\n"
      "    assert l.startswith(p), l\n"
      "    d = json.loads(l[len(p):], object_pairs_hook=collections.OrderedDict)\n"
      "    print(p + json.dumps(d))\n";
  const std::string script_path = dir.Sub("redump.py");
  std::ofstream(script_path) << script;
  auto result = RunCommand(PythonPath() + " " + script_path + " " + path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream python_lines(result.output);
  std::string python_line;
  for (const std::string& ours : lines) {
    ASSERT_TRUE(std::getline(python_lines, python_line));
    EXPECT_EQ(ours, python_line);
  }
}

TEST(MlLogFormat, NanAndInfinityWrittenAsPythonDoes) {
  EXPECT_EQ(*PythonJsonDumps(Json(std::nan(""))), "NaN");
  EXPECT_EQ(*PythonJsonDumps(Json(-std::numeric_limits<double>::infinity())), "-Infinity");
}

TEST(MlLogFormat, InvalidUtf8IsInvalidArgument) {
  for (const char* bad : {"bad \xff byte", "overlong \xc0\xaf", "surrogate \xed\xa0\x80",
                          "truncated \xe6\x97", "stray continuation \x80"}) {
    auto line = FormatMlLogLine(MakeEvent("k", std::string(bad)));
    ASSERT_FALSE(line.ok()) << bad;
    EXPECT_EQ(line.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  MlEvent e = MakeEvent("k", 1);
  e.key = "bad key \xff";
  EXPECT_FALSE(FormatMlLogLine(e).ok());
}

TEST(MlLogFormat, MakeMlEventPutsCallSiteFirstAndCallerMetadataAfter) {
  const int line = __LINE__ + 1;
  auto e = MakeMlEvent(MlEventType::kIntervalEnd, "staging_stop", nullptr, 1234, {{"staged_bytes", 5}});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto text = FormatMlLogLine(*e);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, ":::MLLOG {\"namespace\": \"\", \"time_ms\": 1234, \"event_type\": "
                   "\"INTERVAL_END\", \"key\": \"staging_stop\", \"value\": null, \"metadata\": "
                   "{\"file\": \"tests/tiling/mllog_test.cc\", \"lineno\": " +
                       std::to_string(line) + ", \"staged_bytes\": 5}}");
}

TEST(MlLogFormat, NonObjectMetadataIsInvalidArgumentNamingTheKey) {
  auto e = MakeMlEvent(MlEventType::kPointInTime, "tracked_stats", 1, 0, Json::array({1}));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("tracked_stats"), std::string::npos);
}

TEST(MlLogger, RecordsCallSiteAndCallerMetadataInMllogOrder) {
  std::ostringstream out;
  MlLogger logger(&out);
  const int line = __LINE__ + 1;
  ASSERT_TRUE(logger.Start(mlkey::kEpochStart, nullptr, {{"epoch_num", 3}}).ok());
  const std::vector<Json> lines = ParseLines(out.str());
  ASSERT_EQ(lines.size(), 1u);
  const Json& e = lines[0];
  EXPECT_EQ(e["event_type"], "INTERVAL_START");
  EXPECT_EQ(e["metadata"].dump(),
            Json({{"file", "tests/tiling/mllog_test.cc"}, {"lineno", line}, {"epoch_num", 3}})
                .dump());
  const int64_t now = MlLogger::NowMs();
  EXPECT_LE(e["time_ms"].get<int64_t>(), now);
  EXPECT_GT(e["time_ms"].get<int64_t>(), now - 60'000);
}

TEST(MlLogger, ConcurrentWritersNeverInterleaveLines) {
  std::ostringstream out;
  MlLogger logger(&out);
  constexpr int kThreads = 4, kEvents = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEvents; ++i)
        ASSERT_TRUE(logger.Event("tick", i, {{"thread", t}}).ok());
    });
  for (auto& th : threads) th.join();
  // Every line parses on its own: no two writes were interleaved.
  EXPECT_EQ(ParseLines(out.str()).size(), static_cast<size_t>(kThreads * kEvents));
}

TEST(MlLogger, UnwritableFileIsIOErrorNamingPath) {
  auto logger = MlLogger::OpenFile("/nonexistent/dir/mlperf.log");
  ASSERT_FALSE(logger.ok());
  EXPECT_EQ(logger.status().code(), StatusCode::kIOError);
  EXPECT_NE(logger.status().message().find("/nonexistent/dir/mlperf.log"), std::string::npos);
}

}  // namespace
}  // namespace tilestage
