// `tilestage ingest geotiff` on bad input, through the CLI: exit codes, messages that name the
// file and the place, and no store left that looks complete.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/test_util.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::SharedData;
using testing::TempDir;

testing::CommandResult Ingest(const std::string& out, const std::string& args) {
  return RunCommand(CliPath() + " ingest geotiff --no-progress --out " + out + " " + args);
}

bool HasManifest(const std::string& dir) { return std::filesystem::exists(dir + "/manifest.json"); }

bool Contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST(GeoTiffCli, CorruptTiffFailsNamingFileBandAndBlockAndLeavesNoManifest) {
  TempDir dir;
  const std::string out = dir.Sub("store");
  // f32: masked pixels become NaN, so no valid 255 meets the u8 fill chosen for them first.
  auto r = Ingest(out, "--dtype f32 " + SharedData("geotiff/corrupt.tif"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.output, "corrupt.tif")) << r.output;
  EXPECT_TRUE(Contains(r.output, "band 1")) << r.output;
  EXPECT_TRUE(Contains(r.output, "block (x=1, y=1)")) << r.output;
  EXPECT_TRUE(Contains(r.output, "rows 512-1023")) << r.output;
  EXPECT_FALSE(HasManifest(out));
  // Nothing partial is left either: the shards written before the failure are removed.
  for (const auto& e : std::filesystem::directory_iterator(out)) ADD_FAILURE() << e.path();
  auto verify = RunCommand(CliPath() + " verify " + out);
  EXPECT_NE(verify.exit_code, 0) << verify.output;
}

TEST(GeoTiffCli, FailedOverwriteOfAnOldStoreLeavesTheOldStoreComplete) {
  TempDir dir;
  const std::string out = dir.Sub("store");
  ASSERT_EQ(Ingest(out, SharedData("geotiff/shade.tif")).exit_code, 0);
  ASSERT_TRUE(HasManifest(out));
  // f32: masked pixels become NaN, so no valid 255 meets the u8 fill chosen for them first.
  auto r = Ingest(out, "--overwrite --dtype f32 " + SharedData("geotiff/corrupt.tif"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.output, "corrupt.tif")) << r.output;
  EXPECT_EQ(RunCommand(CliPath() + " verify " + out).exit_code, 0);
}

TEST(GeoTiffCli, AllNodataGivesZeroTilesAndAClearMessage) {
  TempDir dir;
  const std::string out = dir.Sub("store");
  auto r = Ingest(out, "--tile 64,64 " + SharedData("geotiff/all-nodata.tif"));
  EXPECT_EQ(r.exit_code, 1) << r.output;  // an error exit, not a crash (signal gives -1)
  EXPECT_TRUE(Contains(r.output, "no tiles written")) << r.output;
  EXPECT_TRUE(Contains(r.output, "all-nodata.tif")) << r.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(GeoTiffCli, TileLargerThanRasterIsInvalidArgumentNamingSizes) {
  TempDir dir;
  const std::string out = dir.Sub("store");
  auto r = Ingest(out, "--tile 64,64 " + SharedData("geotiff/float_raster_with_nodata.tif"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "float_raster_with_nodata.tif")) << r.output;
  EXPECT_TRUE(Contains(r.output, "64x64 is larger than the raster (12x13")) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(GeoTiffCli, MissingFileIsNotFoundNamingIt) {
  TempDir dir;
  auto r = Ingest(dir.Sub("store"), dir.Sub("no-such-scene.tif"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.output, "NotFound")) << r.output;
  EXPECT_TRUE(Contains(r.output, "no-such-scene.tif: no such file")) << r.output;
}

TEST(GeoTiffCli, GlobMatchingNothingIsNotFound) {
  TempDir dir;
  auto r = Ingest(dir.Sub("store"), "'" + dir.Sub("*.tif") + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.output, "no file matches")) << r.output;
}

TEST(GeoTiffCli, FileThatIsNotARasterIsInvalidArgument) {
  TempDir dir;
  const std::string fake = dir.Sub("fake.tif");
  RunCommand("echo 'this is not a tiff' > " + fake);
  auto r = Ingest(dir.Sub("store"), fake);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "fake.tif: not a raster GDAL can read")) << r.output;
}

TEST(GeoTiffCli, StackedBandsOnDifferentGridsNameBothFilesAndTheDifference) {
  TempDir dir;
  const std::string b1 = SharedData("geotiff/landsat8/LC08_L1TP_016037_20170813_B1.TIF");
  auto r = Ingest(dir.Sub("store"), "--stack-bands " + b1 + " " + SharedData("geotiff/shade.tif"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "shade.tif is not on the grid of")) << r.output;
  EXPECT_TRUE(Contains(r.output, "B1.TIF")) << r.output;
  EXPECT_TRUE(Contains(r.output, "size 255x259 vs 1024x1024")) << r.output;
}

TEST(GeoTiffCli, BandOutOfRangeNamesTheBandAndCount) {
  TempDir dir;
  auto r = Ingest(dir.Sub("store"), "--bands 1,4 " + SharedData("geotiff/RGB.byte.tif"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--bands 4 is out of range (the raster has 3 bands)")) << r.output;
}

TEST(GeoTiffCli, JsonSummaryReportsDroppedTiles) {
  TempDir dir;
  const std::string out = dir.Sub("store");
  auto r = Ingest(out, "--json --tile 128,128 --min-valid 0.9 --codec none " +
                           SharedData("geotiff/RGB.byte.tif"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("tiles_considered"), 42);
  EXPECT_GT(j.at("tiles_dropped").get<int>(), 0);
  EXPECT_EQ(j.at("tiles_written").get<int>() + j.at("tiles_dropped").get<int>(), 42);
  auto verify = RunCommand(CliPath() + " verify " + out);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

}  // namespace
}  // namespace tilestage
