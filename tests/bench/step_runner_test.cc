#include "bench/e2e/step_runner.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(RunStep, TrueSucceedsWithNoOutput) {
  TempDir dir;
  auto r = RunStep("ok", {"/bin/true"}, dir.path());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, "");
  EXPECT_GE(r->wall_s, 0);
  EXPECT_EQ(r->stderr_path, dir.Sub("ok.stderr"));
  EXPECT_EQ(ReadFile(dir.Sub("ok.cmd")), "/bin/true\n");
}

TEST(RunStep, FalseIsInternalNamingStepCommandAndExitCode) {
  TempDir dir;
  auto r = RunStep("fails", {"/bin/false"}, dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("step fails"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("/bin/false"), std::string::npos);
  EXPECT_NE(r.status().message().find("exited with code 1"), std::string::npos);
}

TEST(RunStep, StdoutIsCapturedAndHandedOverLineByLine) {
  TempDir dir;
  std::vector<std::string> lines;
  auto r = RunStep("print", {"/bin/sh", "-c", "printf 'one\\ntwo words\\nlast'"}, dir.path(),
                   [&](const std::string& line, int64_t arrival_ms) {
                     EXPECT_GT(arrival_ms, 0);
                     lines.push_back(line);
                   });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, "one\ntwo words\nlast");
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two words", "last"}));
  EXPECT_EQ(ReadFile(dir.Sub("print.cmd")).rfind("/bin/sh -c ", 0), 0u);
}

TEST(RunStep, StderrGoesToItsFileAndItsTailIntoTheError) {
  TempDir dir;
  auto r = RunStep("noisy", {"/bin/sh", "-c", "echo to-stdout; echo broken-input >&2; exit 3"},
                   dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exited with code 3"), std::string::npos);
  EXPECT_NE(r.status().message().find("broken-input"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(ReadFile(dir.Sub("noisy.stderr")), "broken-input\n");
}

TEST(RunStep, MissingBinaryIsNotFoundNamingIt) {
  TempDir dir;
  auto r = RunStep("ghost", {"/nonexistent/tilestage-no-such-tool", "--json"}, dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("step ghost"), std::string::npos);
  EXPECT_NE(r.status().message().find("/nonexistent/tilestage-no-such-tool"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("No such file"), std::string::npos);
}

TEST(RunStep, MissingBinaryOnPathIsNotFoundNamingIt) {
  TempDir dir;
  auto r = RunStep("ghost", {"tilestage-no-such-tool-on-path"}, dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("tilestage-no-such-tool-on-path"), std::string::npos);
}

TEST(RunStep, EmptyCommandIsInvalidArgument) {
  TempDir dir;
  auto r = RunStep("nothing", {}, dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("step nothing"), std::string::npos);
}

TEST(RunStep, MissingLogsDirIsIOErrorNamingThePath) {
  auto r = RunStep("lost", {"/bin/true"}, "/nonexistent/steps");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("/nonexistent/steps/lost."), std::string::npos)
      << r.status().ToString();
}

TEST(ParseStepJson, DocumentAfterOtherLinesIsFound) {
  auto j = ParseStepJson("stage", ":::MLLOG {\"key\": \"x\"}\n{\"seconds\": 1.5,\n \"n\": 2}\n");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["seconds"], 1.5);
  EXPECT_EQ((*j)["n"], 2);
  auto first = ParseStepJson("load", "{\"samples\": 3}");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)["samples"], 3);
}

TEST(ParseStepJson, NoDocumentOrBrokenJsonIsDataLossNamingTheStep) {
  auto none = ParseStepJson("ingest geotiff", "done\n");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(none.status().message().find("ingest geotiff"), std::string::npos);
  auto broken = ParseStepJson("load", "{\"samples\": ");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("step load: stdout is not JSON"), std::string::npos);
}

TEST(MpirunPrefix, EndsWithTheRankCount) {
  const auto v = MpirunPrefix(3);
  ASSERT_GE(v.size(), 6u);
  EXPECT_EQ(v.front(), "mpirun");
  EXPECT_EQ(v[v.size() - 2], "-np");
  EXPECT_EQ(v.back(), "3");
}

}  // namespace
}  // namespace tilestage::bench
