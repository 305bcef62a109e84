#include "bench/e2e/inputs.h"

#include <gtest/gtest.h>
#include <netcdf.h>

#include <filesystem>
#include <fstream>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::CliPath;
using ::tilestage::testing::SourceDir;
using ::tilestage::testing::TempDir;

const std::string kEra5 = "/examples/data/netcdf/era5_1995-07-14T12.nc";

// Where the formats module is: beside the built tilestage executable.
std::string ModuleDir() { return std::filesystem::path(CliPath()).parent_path().string(); }

// The "time" value of a file with one time step, as netCDF-C reads it.
double TimeValue(const std::string& path) {
  int nc = 0, var = 0;
  double t = -1;
  EXPECT_EQ(nc_open(path.c_str(), NC_NOWRITE, &nc), NC_NOERR) << path;
  EXPECT_EQ(nc_inq_varid(nc, "time", &var), NC_NOERR);
  EXPECT_EQ(nc_get_var_double(nc, var, &t), NC_NOERR);
  nc_close(nc);
  return t;
}

TEST(Inputs, CopiesOfANetcdfFileFormATimeSeries) {
  TempDir dir;
  const std::string src = SourceDir() + kEra5;
  const double t0 = TimeValue(src);
  auto copies = CopyInputs({src}, 3, dir.Sub("netcdf"), ModuleDir());
  ASSERT_TRUE(copies.ok()) << copies.status().ToString();
  ASSERT_EQ(copies->size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ((*copies)[k], dir.Sub("netcdf/era5_1995-07-14T12_" + std::to_string(k) + ".nc"));
    EXPECT_DOUBLE_EQ(TimeValue((*copies)[k]), t0 + double(k)) << k;
  }
  EXPECT_DOUBLE_EQ(TimeValue(src), t0);  // the source is untouched
}

TEST(Inputs, OneCopyIsTheFilesThemselves) {
  auto same = CopyInputs({"/data/a.tif", "/data/b.tif"}, 1, "/nonexistent/unused", ModuleDir());
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, (std::vector<std::string>{"/data/a.tif", "/data/b.tif"}));
}

TEST(Inputs, CopyOfANetcdfFileWithoutTimeIsIOErrorNamingTheCopy) {
  TempDir dir;
  const std::string path = dir.Sub("no_time.nc");
  int nc = 0, dim = 0, var = 0;
  ASSERT_EQ(nc_create(path.c_str(), NC_CLOBBER, &nc), NC_NOERR);
  ASSERT_EQ(nc_def_dim(nc, "x", 2, &dim), NC_NOERR);
  ASSERT_EQ(nc_def_var(nc, "t2m", NC_FLOAT, 1, &dim, &var), NC_NOERR);
  ASSERT_EQ(nc_close(nc), NC_NOERR);
  auto copies = CopyInputs({path}, 2, dir.Sub("out"), ModuleDir());
  ASSERT_FALSE(copies.ok());
  const Status& s = copies.status();
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_NE(s.message().find(dir.Sub("out/no_time_1.nc")), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("time variable"), std::string::npos);
}

TEST(Inputs, CopiesOfAFileLeftAsItIsAreHardLinks) {
  TempDir dir;
  const std::string src = dir.Sub("scene.tif");
  { std::ofstream(src) << "tiff bytes"; }
  auto copies = CopyInputs({src}, 3, dir.Sub("out"), ModuleDir());
  ASSERT_TRUE(copies.ok()) << copies.status().ToString();
  ASSERT_EQ(copies->size(), 3u);
  for (const auto& c : *copies) EXPECT_TRUE(std::filesystem::equivalent(c, src)) << c;
  EXPECT_EQ(std::filesystem::hard_link_count(src), 4u);
  // Run again over the same directory: the links are replaced, not refused.
  ASSERT_TRUE(CopyInputs({src}, 3, dir.Sub("out"), ModuleDir()).ok());
  EXPECT_EQ(std::filesystem::hard_link_count(src), 4u);
}

TEST(Inputs, MissingSourceIsIOErrorNamingIt) {
  TempDir dir;
  auto r = CopyInputs({dir.Sub("missing.tif")}, 2, dir.Sub("out"), ModuleDir());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find(dir.Sub("missing.tif")), std::string::npos);
}

}  // namespace
}  // namespace tilestage::bench
