// EarlySourceHashes against a one-shot XXH3 of each file's bytes (the driver taking them:
// driver_test.cc).
#include "ingest/source_hashes.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/test_util.h"
#include "tiling/checksum.h"

namespace tilestage::ingest {
namespace {

std::vector<uint8_t> Pattern(size_t size, int seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>((i * 31 + seed) >> 3);
  return bytes;
}

TEST(EarlySourceHashes, EachFileHoweverSpelledHasItsOneShotHashUnderTheCallersName) {
  testing::TempDir dir;
  const std::string a = dir.Sub("a.bin"), b = dir.Sub("b.bin");
  const auto a_bytes = Pattern((9u << 20) + 17, 1), b_bytes = Pattern(100, 2);
  testing::WriteFile(a, a_bytes);
  testing::WriteFile(b, b_bytes);
  const std::string a_relative = std::filesystem::relative(a).string();
  EarlySourceHashes early({a_relative, b, a});  // a twice: hashed once
  std::atomic<bool> stop{false};
  for (const std::string& name : {a, a_relative}) {
    auto hash = early.Take(name, stop);
    ASSERT_TRUE(hash.has_value()) << name;
    ASSERT_TRUE(hash->ok()) << hash->status().ToString();
    EXPECT_EQ((*hash)->path, name);
    EXPECT_EQ((*hash)->bytes, a_bytes.size());
    EXPECT_EQ((*hash)->xxh3, Hash64(a_bytes));
  }
  auto hash = early.Take(b, stop);
  ASSERT_TRUE(hash.has_value() && hash->ok());
  EXPECT_EQ((*hash)->xxh3, Hash64(b_bytes));
  EXPECT_FALSE(early.Take(dir.Sub("other.bin"), stop).has_value());
}

TEST(EarlySourceHashes, MissingFileIsNotFoundNamingItAndTheOthersStillHash) {
  testing::TempDir dir;
  const std::string missing = dir.Sub("missing.nc"), present = dir.Sub("present.nc");
  testing::WriteFile(present, Pattern(1000, 3));
  EarlySourceHashes early({missing, present});
  std::atomic<bool> stop{false};
  auto hash = early.Take(missing, stop);
  ASSERT_TRUE(hash.has_value());
  ASSERT_FALSE(hash->ok());
  EXPECT_EQ(hash->status().code(), StatusCode::kNotFound);
  EXPECT_NE(hash->status().message().find(missing), std::string::npos) << hash->status().ToString();
  auto other = early.Take(present, stop);
  ASSERT_TRUE(other.has_value() && other->ok());
  EXPECT_EQ((*other)->xxh3, Hash64(Pattern(1000, 3)));
}

}  // namespace
}  // namespace tilestage::ingest
