// The MLLOG reader: round trips, tolerated prefixes, malformed lines named by file and line.
#include "bench/e2e/mllog.h"

#include <gtest/gtest.h>

namespace tilestage::bench {
namespace {

TEST(MlLogParse, RoundTripsWhatTheWriterWrites) {
  MlEvent e;
  e.ns = "GPU0";
  e.time_ms = 1632833195185;
  e.key = "eval_accuracy";
  e.value = -0.323061107565293;
  e.metadata = {{"file", "train.py"}, {"lineno", 215}, {"epoch_num", 1}};
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

}  // namespace
}  // namespace tilestage::bench
