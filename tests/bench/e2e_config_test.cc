#include "bench/e2e/e2e_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::TempDir;

std::string WriteConfig(const TempDir& dir, const std::string& text) {
  const std::string path = dir.Sub("cfg.json");
  std::ofstream(path) << text;
  return path;
}

TEST(E2eConfig, PresetsScaleUp) {
  auto tiny = PresetE2eConfig("tiny");
  auto small = PresetE2eConfig("small");
  auto medium = PresetE2eConfig("medium");
  ASSERT_TRUE(tiny.ok() && small.ok() && medium.ok());
  EXPECT_LT(tiny->epochs, small->epochs);
  EXPECT_LT(small->dim, medium->dim);
  EXPECT_EQ(medium->copies, 8);
  EXPECT_EQ(tiny->preset, "tiny");
  EXPECT_EQ(tiny->stall_rounds, 3);
}

TEST(E2eConfig, DemoKeysOverrideAndGeotiffCopiesFallBackToCopies) {
  TempDir dir;
  E2eConfig c = *PresetE2eConfig("small");
  EXPECT_EQ(c.GeotiffCopies(), 1);
  ASSERT_TRUE(ApplyE2eConfigFile(WriteConfig(dir, R"({"copies": 3, "codec": "lz4",
                                                     "geotiff_dtype": "float32",
                                                     "peer_copies": 2})"),
                                 &c)
                  .ok());
  EXPECT_EQ(c.GeotiffCopies(), 3);
  EXPECT_EQ(c.codec, "lz4");
  EXPECT_EQ(c.geotiff_dtype, "float32");
  EXPECT_EQ(c.peer_copies, 2);
  E2eConfig demo = *PresetE2eConfig("demo");
  EXPECT_GT(demo.GeotiffCopies(), demo.copies);
  EXPECT_FALSE(ApplyE2eConfigFile(WriteConfig(dir, R"({"geotiff_copies": -1})"), &demo).ok());
}

TEST(E2eConfig, UnknownPresetIsNamed) {
  auto r = PresetE2eConfig("huge");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--preset huge"), std::string::npos);
}

TEST(E2eConfig, FileOverridesOnlyItsKeys) {
  TempDir dir;
  E2eConfig c = *PresetE2eConfig("tiny");
  ASSERT_TRUE(ApplyE2eConfigFile(WriteConfig(dir, R"({"epochs": 5, "eval_fraction": 1,
                                                     "peers": false, "stall_rounds": 5})"),
                                 &c)
                  .ok());
  EXPECT_EQ(c.epochs, 5);
  EXPECT_DOUBLE_EQ(c.eval_fraction, 1.0);
  EXPECT_FALSE(c.peers);
  EXPECT_EQ(c.stall_rounds, 5);
  EXPECT_EQ(c.dim, 32);  // the preset's
}

TEST(E2eConfig, UnknownKeyNamesFileAndKey) {
  TempDir dir;
  E2eConfig c;
  const std::string path = WriteConfig(dir, R"({"epochz": 3})");
  const Status s = ApplyE2eConfigFile(path, &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(path), std::string::npos);
  EXPECT_NE(s.message().find("\"epochz\""), std::string::npos);
}

TEST(E2eConfig, WrongTypeNamesTheKey) {
  TempDir dir;
  E2eConfig c;
  const Status s = ApplyE2eConfigFile(WriteConfig(dir, R"({"epochs": "three"})"), &c);
  EXPECT_NE(s.message().find("\"epochs\" has the wrong type"), std::string::npos) << s.ToString();
}

TEST(E2eConfig, OutOfRangeIsRejectedAndLeavesTheConfigAlone) {
  TempDir dir;
  E2eConfig c;
  const Status s = ApplyE2eConfigFile(WriteConfig(dir, R"({"epochs": 9, "stall_rounds": 0})"), &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stall_rounds"), std::string::npos);
  EXPECT_EQ(c.epochs, E2eConfig().epochs);
}

TEST(E2eConfig, NotJsonAndMissingFileAreNamed) {
  TempDir dir;
  E2eConfig c;
  const std::string path = WriteConfig(dir, "{epochs");
  const Status bad = ApplyE2eConfigFile(path, &c);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find(path + ": not JSON"), std::string::npos) << bad.ToString();
  const Status missing = ApplyE2eConfigFile(dir.Sub("missing.json"), &c);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("missing.json"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::bench
