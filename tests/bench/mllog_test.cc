#include "bench/e2e/mllog.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/common/test_util.h"

namespace tilestage::bench {
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

TEST(MlLogParse, RoundTripsWhatTheWriterWrites) {
  MlEvent e = MakeEvent("eval_accuracy", -0.323061107565293, {{"epoch_num", 1}});
  e.ns = "GPU0";
  auto line = FormatMlLogLine(e);
  ASSERT_TRUE(line.ok());
  auto parsed = ParseMlLogLine(*line);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->has_value());
  const MlEvent& p = **parsed;
  EXPECT_EQ(p.ns, "GPU0");
  EXPECT_EQ(p.time_ms, e.time_ms);
  EXPECT_EQ(p.event_type, MlEventType::kPointInTime);
  EXPECT_EQ(p.key, "eval_accuracy");
  EXPECT_EQ(p.value.get<double>(), -0.323061107565293);
  EXPECT_EQ(p.metadata.dump(), e.metadata.dump());  // key order kept
}

TEST(MlLogParse, LinesWithoutMarkerAreSkippedAndPrefixesTolerated) {
  const std::string text =
      "Epoch 1 loss 0.3\n"
      "[1,0]<stdout>::::MLLOG {\"namespace\": \"\", \"time_ms\": 5, \"event_type\": "
      "\"POINT_IN_TIME\", \"key\": \"seed\", \"value\": 1, \"metadata\": {}}\r\n"
      "\n"
      ":::MLLOG {\"time_ms\": 6.0, \"event_type\": \"INTERVAL_START\", \"key\": \"run_start\"}\n";
  auto records = ParseMlLog(text, "mem.log");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].line, 2);
  EXPECT_EQ((*records)[0].event.key, "seed");
  EXPECT_EQ((*records)[1].line, 4);
  EXPECT_EQ((*records)[1].event.time_ms, 6);
  EXPECT_TRUE((*records)[1].event.value.is_null());
}

struct BadLine {
  std::string name;
  std::string line;
  std::string expected;  // substring of the error message
};
void PrintTo(const BadLine& c, std::ostream* os) { *os << c.name; }

class MalformedMlLogLine : public ::testing::TestWithParam<BadLine> {};

TEST_P(MalformedMlLogLine, IsInvalidArgumentNamingFileAndLine) {
  const std::string text = "header\n:::MLLOG {\"time_ms\": 1, \"event_type\": \"POINT_IN_TIME\", "
                           "\"key\": \"ok\"}\n" + GetParam().line + "\n";
  auto records = ParseMlLog(text, "runs/result_7.txt");
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(records.status().message().find("runs/result_7.txt:3: "), std::string::npos)
      << records.status().message();
  EXPECT_NE(records.status().message().find(GetParam().expected), std::string::npos)
      << records.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedMlLogLine,
    ::testing::Values(
        BadLine{"TruncatedJson", ":::MLLOG {\"namespace\": \"\", \"time_ms\": 16", "malformed"},
        BadLine{"NotAnObject", ":::MLLOG [1, 2]", "not a JSON object"},
        BadLine{"MissingKey", ":::MLLOG {\"time_ms\": 1, \"event_type\": \"POINT_IN_TIME\"}",
                "no string \"key\""},
        BadLine{"TimeIsString",
                ":::MLLOG {\"time_ms\": \"1\", \"event_type\": \"POINT_IN_TIME\", \"key\": "
                "\"x\"}",
                "no numeric \"time_ms\""},
        BadLine{"UnknownEventType",
                ":::MLLOG {\"time_ms\": 1, \"event_type\": \"INTERVAL_BEGIN\", \"key\": \"x\"}",
                "unknown event_type 'INTERVAL_BEGIN'"},
        BadLine{"MetadataNotObject",
                ":::MLLOG {\"time_ms\": 1, \"event_type\": \"POINT_IN_TIME\", \"key\": \"x\", "
                "\"metadata\": 3}",
                "non-object \"metadata\""},
        BadLine{"EmptyPayload", ":::MLLOG", "malformed"}),
    [](const ::testing::TestParamInfo<BadLine>& info) { return info.param.name; });

// The tolerant reader skips the same lines, names them, and keeps every other event; a JSON
// nested deeper than the parser allows is one such line, not a crash.
TEST_P(MalformedMlLogLine, IsSkippedByTheTolerantReaderNamingFileAndLine) {
  const std::string good = ":::MLLOG {\"time_ms\": 1, \"event_type\": \"POINT_IN_TIME\", "
                           "\"key\": \"ok\"}";
  const std::string text = "header\n" + good + "\n" + GetParam().line + "\n" + good + "\n";
  const MlLogContents contents = ParseMlLogTolerant(text, "runs/result_7.txt");
  ASSERT_EQ(contents.records.size(), 2u);
  EXPECT_EQ(contents.records[1].line, 4);
  ASSERT_EQ(contents.malformed.size(), 1u);
  EXPECT_NE(contents.malformed[0].find("runs/result_7.txt:3: "), std::string::npos);
  EXPECT_NE(contents.malformed[0].find(GetParam().expected), std::string::npos)
      << contents.malformed[0];
}

TEST(MlLogRead, DeeplyNestedValueIsAMalformedLineNotACrash) {
  const std::string deep = ":::MLLOG {\"time_ms\": 1, \"event_type\": \"POINT_IN_TIME\", "
                           "\"key\": \"x\", \"value\": " +
                           std::string(100000, '[') + std::string(100000, ']') + "}\n";
  const MlLogContents contents = ParseMlLogTolerant(deep, "deep.log");
  EXPECT_TRUE(contents.records.empty());
  ASSERT_EQ(contents.malformed.size(), 1u);
  EXPECT_NE(contents.malformed[0].find("deep.log:1: malformed"), std::string::npos)
      << contents.malformed[0];
}

TEST(MlLogRead, MissingFileIsNotFound) {
  auto records = ReadMlLog("/nonexistent/dir/mlperf.log");
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), StatusCode::kNotFound);
  EXPECT_NE(records.status().message().find("/nonexistent/dir/mlperf.log"), std::string::npos);
}

TEST(MlLogger, RecordsCallSiteAndCallerMetadataInMllogOrder) {
  std::ostringstream out;
  MlLogger logger(&out);
  const int line = __LINE__ + 1;
  ASSERT_TRUE(logger.Start(mlkey::kEpochStart, nullptr, {{"epoch_num", 3}}).ok());
  auto records = ParseMlLog(out.str(), "stream");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 1u);
  const MlEvent& e = (*records)[0].event;
  EXPECT_EQ(e.event_type, MlEventType::kIntervalStart);
  EXPECT_EQ(e.metadata.dump(),
            Json({{"file", "tests/bench/mllog_test.cc"}, {"lineno", line}, {"epoch_num", 3}})
                .dump());
  const int64_t now = MlLogger::NowMs();
  EXPECT_LE(e.time_ms, now);
  EXPECT_GT(e.time_ms, now - 60'000);
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
  auto records = ParseMlLog(out.str(), "stream");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(records->size(), static_cast<size_t>(kThreads * kEvents));
}

TEST(MlLogger, UnwritableFileIsIOErrorNamingPath) {
  auto logger = MlLogger::OpenFile("/nonexistent/dir/mlperf.log");
  ASSERT_FALSE(logger.ok());
  EXPECT_EQ(logger.status().code(), StatusCode::kIOError);
  EXPECT_NE(logger.status().message().find("/nonexistent/dir/mlperf.log"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::bench
