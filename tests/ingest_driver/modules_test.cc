#include "ingest/modules.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "tests/common/test_util.h"

namespace tilestage::ingest {
namespace {

std::string ModuleDir() { return std::filesystem::path(testing::CliPath()).parent_path().string(); }

int64_t ThreadCount() {
  int64_t n = 0;
  for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// GDAL's OpenBLAS would start a spinning thread per core as the module loads.
TEST(Modules, LoadingTheGdalModuleAfterLimitingBlasThreadsStartsNoThreads) {
  ::unsetenv("OPENBLAS_NUM_THREADS");
  LimitGdalBlasThreads();
  const int64_t before = ThreadCount();
  auto module = LoadGeoTiffModule(ModuleDir());
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_NE((*module)->open_geotiff, nullptr);
  EXPECT_EQ(ThreadCount(), before);
}

TEST(Modules, FormatsModuleHasEverySource) {
  auto module = LoadFormatsModule(ModuleDir());
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_NE((*module)->open_netcdf, nullptr);
  EXPECT_NE((*module)->open_hdf5, nullptr);
  EXPECT_NE((*module)->open_tiff_stack, nullptr);
  EXPECT_NE((*module)->shift_netcdf_time, nullptr);
}

TEST(Modules, MissingModuleIsFailedPreconditionNamingItsPath) {
  testing::TempDir dir;
  auto module = LoadFormatsModule(dir.path());
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(module.status().message().find(dir.Sub("libtilestage_formats.so")), std::string::npos)
      << module.status().ToString();
}

}  // namespace
}  // namespace tilestage::ingest
