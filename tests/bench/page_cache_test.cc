#include "bench/e2e/page_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

namespace fs = std::filesystem;
using ::tilestage::testing::TempDir;

void WriteBytes(const std::string& path, size_t n) {
  std::ofstream out(path, std::ios::binary);
  std::string block(n, 'x');
  out.write(block.data(), std::streamsize(n));
}

// A scratch directory in the working directory (the test's build folder, on a disk file system):
// $TMPDIR may be tmpfs, whose pages are the storage and cannot be evicted.
class DiskDir {
 public:
  DiskDir() : path_(fs::absolute("page_cache_test." + std::to_string(getpid())).string()) {
    fs::create_directories(path_);
  }
  ~DiskDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(PageCache, EvictionDropsAFilesPagesAndReadingBringsThemBack) {
  DiskDir dir;
  const std::string f = dir.Sub("shard.bin");
  const size_t size = size_t(4) << 20;
  WriteBytes(f, size);
  ASSERT_TRUE(ReadAllSeconds({f}).ok());
  auto before = ResidentBytes(f);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(*before, size);
  ASSERT_TRUE(EvictFromPageCache({f}).ok());
  auto after = ResidentBytes(f);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, 0u);
  ASSERT_TRUE(ReadAllSeconds({f}).ok());
  EXPECT_EQ(*ResidentBytes(f), size);
}

TEST(PageCache, EmptyFileHasNothingResident) {
  TempDir dir;
  WriteBytes(dir.Sub("empty"), 0);
  auto r = ResidentBytes(dir.Sub("empty"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 0u);
}

TEST(PageCache, MissingFileIsIOErrorNamingIt) {
  const std::string missing = "/nonexistent/shard-00001.tss";
  auto evict = EvictFromPageCache({missing});
  EXPECT_EQ(evict.code(), StatusCode::kIOError);
  EXPECT_NE(evict.message().find(missing), std::string::npos) << evict.ToString();
  auto resident = ResidentBytes(missing);
  ASSERT_FALSE(resident.ok());
  EXPECT_NE(resident.status().message().find(missing), std::string::npos);
  auto read = ReadAllSeconds({missing});
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find(missing), std::string::npos);
}

TEST(PageCache, FilesUnderIsRecursiveSortedAndRegularFilesOnly) {
  TempDir dir;
  fs::create_directories(dir.Sub("b/c"));
  WriteBytes(dir.Sub("b/c/z.bin"), 3);
  WriteBytes(dir.Sub("a.json"), 5);
  WriteBytes(dir.Sub("b/y.bin"), 7);
  const auto files = FilesUnder(dir.path());
  EXPECT_EQ(files, (std::vector<std::string>{dir.Sub("a.json"), dir.Sub("b/c/z.bin"),
                                             dir.Sub("b/y.bin")}));
  EXPECT_EQ(TotalBytes(files), 15u);
  EXPECT_TRUE(FilesUnder(dir.Sub("missing")).empty());
  EXPECT_EQ(TotalBytes({dir.Sub("missing")}), 0u);
}

}  // namespace
}  // namespace tilestage::bench
