// The probes measure; these tests only check that what they return is a usable figure.
#include "bench/e2e/limits.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::TempDir;

bool Plausible(double rate) { return std::isfinite(rate) && rate > 0; }

TEST(Limits, MemcpyProbeGivesAPositiveFiniteRate) {
  EXPECT_TRUE(Plausible(MemcpyGbPerS(size_t(1) << 20, 2)));
}

TEST(Limits, SgemmProbeGivesAPositiveFiniteRate) { EXPECT_TRUE(Plausible(SgemmGflops(64, 2))); }

TEST(Limits, ReadLimitsArePositiveAndCountTheStagedBytes) {
  TempDir dir;
  std::ofstream(dir.Sub("shard"), std::ios::binary) << std::string(100000, 's');
  std::ofstream(dir.Sub("input"), std::ios::binary) << std::string(5000, 'i');
  auto r = MeasureReadLimits({dir.Sub("shard")}, {dir.Sub("input")});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, 100000.0);
  EXPECT_TRUE(Plausible(r->cold_gb_per_s));
  EXPECT_TRUE(Plausible(r->cached_gb_per_s));
  EXPECT_TRUE(Plausible(r->inputs_cached_mb_per_s));
}

TEST(Limits, EmptyFileSetIsInvalidArgument) {
  TempDir dir;
  std::ofstream(dir.Sub("input")) << "x";
  auto r = MeasureReadLimits({}, {dir.Sub("input")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("staged"), std::string::npos);
}

TEST(Limits, JsonKeepsTheResultsDocumentsKeysInOrder) {
  MachineLimits m;
  m.memcpy_gb_per_s = 1;
  m.sgemm_gflop_per_s = 2;
  m.read = {3, 4, 5, 6};
  const Json j = m.ToJson();
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"memcpy_gb_per_s", "sgemm_gflop_per_s",
                                            "read_cold_gb_per_s", "read_cached_gb_per_s",
                                            "read_bytes", "read_inputs_cached_mb_per_s"}));
  EXPECT_EQ(j["read_cached_gb_per_s"], 4.0);
  EXPECT_EQ(j["read_inputs_cached_mb_per_s"], 6.0);
}

}  // namespace
}  // namespace tilestage::bench
