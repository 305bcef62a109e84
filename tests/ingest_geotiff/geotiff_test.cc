// The GeoTIFF source against GDAL itself: every stored tile is compared with GDAL's own windowed
// read (GDALRasterIO) of that window, statistics with a direct computation over those reads, and a
// warped store with GDAL's own warp (GDALWarp into a MEM dataset). Real files from
// ../shared/data/geotiff plus small GeoTIFFs written here with GDAL.
#include <cpl_conv.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ogr_srs_api.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "ingest/driver.h"
#include "ingest/geotiff_source.h"
#include "tests/common/test_util.h"
#include "tiling/store.h"

namespace tilestage::ingest {
namespace {

using testing::SharedData;
using testing::TempDir;

struct GdalInit {
  GdalInit() { GDALAllRegister(); }
};
const GdalInit gdal_init;

GDALDataType GdalType(DType d) {
  switch (d) {
    case DType::kU8:
      return GDT_Byte;
    case DType::kU16:
      return GDT_UInt16;
    case DType::kI16:
      return GDT_Int16;
    case DType::kU32:
      return GDT_UInt32;
    case DType::kI32:
      return GDT_Int32;
    case DType::kF32:
      return GDT_Float32;
    default:
      return GDT_Float64;
  }
}

// GDAL's own read of bands at a window of a dataset, band-sequential, as `dtype`.
std::vector<uint8_t> GdalRead(GDALDatasetH ds, const std::vector<int>& bands, int64_t row,
                              int64_t col, int64_t h, int64_t w, DType dtype) {
  const size_t elem = DTypeSize(dtype);
  std::vector<uint8_t> out(bands.size() * h * w * elem);
  std::vector<int> map = bands;
  EXPECT_EQ(GDALDatasetRasterIO(ds, GF_Read, (int)col, (int)row, (int)w, (int)h, out.data(), (int)w,
                                (int)h, GdalType(dtype), (int)map.size(), map.data(), (int)elem,
                                (GSpacing)(elem * w), (GSpacing)(elem * w * h)),
            CE_None);
  return out;
}

struct Ingested {
  std::unique_ptr<Store> store;
  IngestSummary summary;
};

Ingested Ingest(const GeoTiffOptions& gopts, const std::string& out, TileSpec tile,
                double min_valid = 0.0, int threads = 2,
                std::optional<DType> x_dtype = std::nullopt) {
  auto source = OpenGeoTiffSource(gopts);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  if (!source.ok()) return {};
  DriverOptions o;
  o.out = out;
  o.tile = tile;
  o.min_valid = min_valid;
  o.codec = *ParseCodec("lz4");
  o.threads = threads;
  o.x_dtype = x_dtype;
  auto summary = RunIngest(**source, o);
  EXPECT_TRUE(summary.ok()) << summary.status().ToString();
  if (!summary.ok()) return {};
  auto store = Store::Open(LocalStorage(), out);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return {};
  return {std::move(store).value(), *summary};
}

TileSpec Tiles(int64_t h, int64_t w, EdgePolicy edge = EdgePolicy::kShift) {
  return TileSpec{false, h, w, h, w, edge};
}

// Checks every record of `store` against GDAL reads of `path` (bands), returns the number checked.
uint64_t ExpectTilesEqualGdal(const Store& store, const std::string& path,
                              const std::vector<int>& bands) {
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  EXPECT_NE(ds, nullptr) << path;
  if (!ds) return 0;
  for (uint64_t i = 0; i < store.size(); ++i) {
    auto sample = store.Read(i);
    EXPECT_TRUE(sample.ok());
    if (!sample.ok()) break;
    const auto win = sample->meta.at("window");
    const Array* x = sample->Find("x");
    EXPECT_EQ(x->shape, (std::vector<int64_t>{(int64_t)bands.size(), win[2], win[3]}));
    auto truth = GdalRead(ds, bands, win[0], win[1], win[2], win[3], x->dtype);
    // Pixels GDAL's mask band marks invalid (alpha, internal mask) hold the recorded nodata.
    const auto& nodata = store.manifest().attrs.at("ingest").at("nodata").at("x");
    const int64_t plane = win[2].get<int64_t>() * win[3].get<int64_t>();
    for (size_t c = 0; c < bands.size(); ++c) {
      GDALRasterBandH band = GDALGetRasterBand(ds, bands[c]);
      const int flags = GDALGetMaskFlags(band);
      if ((flags & GMF_ALL_VALID) || flags == GMF_NODATA) continue;
      std::vector<uint8_t> mask(plane);
      EXPECT_EQ(GDALRasterIO(GDALGetMaskBand(band), GF_Read, win[1], win[0], win[3], win[2],
                             mask.data(), win[3], win[2], GDT_Byte, 0, 0),
                CE_None);
      VisitDType(x->dtype, [&](auto zero) {
        using T = decltype(zero);
        T* t = reinterpret_cast<T*>(truth.data()) + c * plane;
        for (int64_t k = 0; k < plane; ++k)
          if (!mask[k]) t[k] = static_cast<T>(nodata[c].get<double>());
      });
    }
    EXPECT_TRUE(truth == x->data) << path << " record " << i << " window " << win.dump();
  }
  GDALClose(ds);
  return store.size();
}

TEST(GeoTiffIngest, EveryTileEqualsGdalWindowedReadOnRealFiles) {
  struct Case {
    std::string file;
    std::vector<int> bands;
    int64_t tile;
  };
  const std::vector<Case> cases = {
      {"geotiff/RGB.byte.tif", {1, 2, 3}, 200},     // striped, nodata 0
      {"geotiff/shade.tif", {1}, 256},              // tiled, nodata 255
      {"geotiff/world.byte.tif", {1}, 512},         // tiled LZW, geographic
      {"geotiff/goes.tif", {1, 2, 3}, 256},         // JPEG, no EPSG code
      {"geotiff/RGBA.uint16.tif", {1, 2, 3}, 128},  // deflate striped, alpha band left out
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    TempDir dir;
    GeoTiffOptions g;
    g.files = {SharedData(c.file)};
    auto r = Ingest(g, dir.path(), Tiles(c.tile, c.tile));
    ASSERT_TRUE(r.store);
    EXPECT_GT(ExpectTilesEqualGdal(*r.store, SharedData(c.file), c.bands), 0u);
    EXPECT_EQ(r.store->manifest().FindField("x")->channel_names.size(), c.bands.size());
  }
}

TEST(GeoTiffIngest, BandSelectionKeepsTheRequestedOrder) {
  TempDir dir;
  GeoTiffOptions g;
  g.files = {SharedData("geotiff/RGB.byte.tif")};
  g.bands = {3, 1};
  auto r = Ingest(g, dir.path(), Tiles(256, 256));
  ASSERT_TRUE(r.store);
  EXPECT_EQ(r.store->manifest().FindField("x")->channel_names,
            (std::vector<std::string>{"b3", "b1"}));
  ExpectTilesEqualGdal(*r.store, SharedData("geotiff/RGB.byte.tif"), {3, 1});
}

TEST(GeoTiffIngest, StackedLandsatBandsAreChannelsInFileOrder) {
  TempDir dir;
  GeoTiffOptions g;
  for (int b = 1; b <= 7; ++b)
    g.files.push_back(
        SharedData("geotiff/landsat8/LC08_L1TP_016037_20170813_B" + std::to_string(b) + ".TIF"));
  g.stack_bands = true;
  g.bands = {4, 3, 2};  // a true-colour composite
  auto r = Ingest(g, dir.path(), Tiles(100, 100));
  ASSERT_TRUE(r.store);
  EXPECT_EQ(r.summary.items, 1);
  std::vector<GDALDatasetH> files;
  for (int b : {4, 3, 2}) files.push_back(GDALOpen(g.files[b - 1].c_str(), GA_ReadOnly));
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    auto s = r.store->Read(i);
    ASSERT_TRUE(s.ok());
    const auto w = s->meta.at("window");
    const Array* x = s->Find("x");
    ASSERT_EQ(x->dtype, DType::kU16);
    const size_t plane = 100 * 100 * 2;
    for (size_t c = 0; c < 3; ++c) {
      auto truth = GdalRead(files[c], {1}, w[0], w[1], 100, 100, DType::kU16);
      EXPECT_EQ(0, std::memcmp(truth.data(), x->data.data() + c * plane, plane)) << "channel " << c;
    }
  }
  for (auto f : files) GDALClose(f);
  EXPECT_EQ(r.store->manifest().FindField("x")->channel_names[0], "LC08_L1TP_016037_20170813_B4");
}

// Direct statistics of the valid values (value != nodata per band) of the stored windows.
TEST(GeoTiffIngest, StatisticsMatchDirectComputationOverValidPixels) {
  TempDir dir;
  const std::string path = SharedData("geotiff/RGB.byte.tif");
  GeoTiffOptions g;
  g.files = {path};
  auto r = Ingest(g, dir.path(), Tiles(256, 256));
  ASSERT_TRUE(r.store);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  std::vector<double> sum(3), sumsq(3), lo(3, 1e9), hi(3, -1e9);
  std::vector<uint64_t> count(3), total(3);
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    const auto w = r.store->Read(i)->meta.at("window");
    auto px = GdalRead(ds, {1, 2, 3}, w[0], w[1], 256, 256, DType::kU8);
    for (size_t c = 0; c < 3; ++c)
      for (size_t k = 0; k < 256 * 256; ++k) {
        const double v = px[c * 256 * 256 + k];
        ++total[c];
        if (v == 0) continue;  // the file's nodata
        ++count[c];
        sum[c] += v;
        sumsq[c] += v * v;
        lo[c] = std::min(lo[c], v);
        hi[c] = std::max(hi[c], v);
      }
  }
  GDALClose(ds);
  const auto& stats = r.store->manifest().FindField("x")->stats;
  ASSERT_EQ(stats.size(), 3u);
  for (size_t c = 0; c < 3; ++c) {
    const double mean = sum[c] / count[c];
    const double var = sumsq[c] / count[c] - mean * mean;
    EXPECT_EQ(stats[c].count, count[c]);
    EXPECT_EQ(stats[c].total, total[c]);
    EXPECT_NEAR(stats[c].mean, mean, 1e-9 * mean);
    EXPECT_NEAR(stats[c].variance(), var, 1e-6 * var);
    EXPECT_EQ(stats[c].min, lo[c]);
    EXPECT_EQ(stats[c].max, hi[c]);
  }
}

TEST(GeoTiffIngest, MinValidDropsExactlyTheTilesBelowTheFraction) {
  const std::string path = SharedData("geotiff/RGB.byte.tif");
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  // Expected: windows of the shift plan whose fraction of pixels nonzero in all bands >= 0.6.
  std::vector<int64_t> rows{0, 128, 256, 384, 512, 590}, cols{0, 128, 256, 384, 512, 640, 663};
  std::set<std::pair<int64_t, int64_t>> expected;
  int considered = 0;
  for (int64_t r0 : rows)
    for (int64_t c0 : cols) {
      ++considered;
      auto px = GdalRead(ds, {1, 2, 3}, r0, c0, 128, 128, DType::kU8);
      int valid = 0;
      for (int k = 0; k < 128 * 128; ++k)
        valid += px[k] && px[128 * 128 + k] && px[2 * 128 * 128 + k];
      if (valid >= 0.6 * 128 * 128) expected.insert({r0, c0});
    }
  GDALClose(ds);
  TempDir dir;
  GeoTiffOptions g;
  g.files = {path};
  auto r = Ingest(g, dir.path(), Tiles(128, 128), /*min_valid=*/0.6);
  ASSERT_TRUE(r.store);
  EXPECT_EQ(r.summary.tiles_considered, (uint64_t)considered);
  EXPECT_EQ(r.summary.tiles_dropped, considered - expected.size());
  EXPECT_GT(r.summary.tiles_dropped, 0u);
  std::set<std::pair<int64_t, int64_t>> got;
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    auto s = r.store->Read(i);
    const auto w = s->meta.at("window");
    got.insert({w[0].get<int64_t>(), w[1].get<int64_t>()});
    EXPECT_GE(s->meta.at("valid_fraction").get<double>(), 0.6);
  }
  EXPECT_EQ(got, expected);
}

TEST(GeoTiffIngest, AlphaBandIsAMaskNotAChannel) {
  const std::string path = SharedData("geotiff/RGBA.uint16.tif");
  TempDir dir;
  GeoTiffOptions g;
  g.files = {path};
  auto r = Ingest(g, dir.path(), Tiles(128, 128));
  ASSERT_TRUE(r.store);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  uint64_t valid = 0, total = 0;
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    const auto w = r.store->Read(i)->meta.at("window");
    auto alpha = GdalRead(ds, {4}, w[0], w[1], 128, 128, DType::kU16);
    const uint16_t* a = reinterpret_cast<const uint16_t*>(alpha.data());
    for (int k = 0; k < 128 * 128; ++k) valid += a[k] != 0;
    total += 128 * 128;
  }
  GDALClose(ds);
  const auto& stats = r.store->manifest().FindField("x")->stats;
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_LT(valid, total);  // the file really has transparent pixels
  // They hold the u16 fill chosen for them, recorded as the channels' nodata (the stored values
  // against GDAL's: EveryTileEqualsGdalWindowedReadOnRealFiles).
  EXPECT_EQ(r.store->manifest().attrs.at("ingest").at("nodata").at("x"),
            nlohmann::json::array({65535.0, 65535.0, 65535.0}));
  for (const auto& s : stats) {
    EXPECT_EQ(s.count, valid);
    EXPECT_EQ(s.total, total);
  }
}

TEST(GeoTiffIngest, FloatNodataIsInvalidAndPaddedEdgeIsFilledWithNodata) {
  const std::string path = SharedData("geotiff/float_raster_with_nodata.tif");  // 13x12 f32
  TempDir dir;
  GeoTiffOptions g;
  g.files = {path};
  auto r = Ingest(g, dir.path(), Tiles(8, 8, EdgePolicy::kPad));
  ASSERT_TRUE(r.store);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  int has = 0;
  const float nodata = static_cast<float>(GDALGetRasterNoDataValue(GDALGetRasterBand(ds, 1), &has));
  ASSERT_TRUE(has);
  auto all = GdalRead(ds, {1}, 0, 0, 12, 13, DType::kF32);
  GDALClose(ds);
  const float* v = reinterpret_cast<const float*>(all.data());
  uint64_t valid = 0;
  for (int k = 0; k < 12 * 13; ++k) valid += v[k] != nodata;
  ASSERT_LT(valid, 12u * 13u);
  const auto& s = r.store->manifest().FindField("x")->stats[0];
  EXPECT_EQ(s.count, valid);
  EXPECT_EQ(s.total, r.store->size() * 64);
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    auto sample = r.store->Read(i);
    const auto w = sample->meta.at("window");
    const float* t = sample->Find("x")->As<float>().data();
    for (int rr = 0; rr < 8; ++rr)
      for (int cc = 0; cc < 8; ++cc) {
        const int64_t R = w[0].get<int64_t>() + rr, C = w[1].get<int64_t>() + cc;
        const float want = (R < 12 && C < 13) ? v[R * 13 + C] : nodata;
        ASSERT_EQ(t[rr * 8 + cc], want) << "row " << R << " col " << C;
      }
  }
}

// Writes a small GeoTIFF with GDAL: values a function of (band, row, col) in any dtype.
std::string WriteTestTiff(const std::string& path, GDALDataType type, int w, int h, int bands,
                          std::vector<std::string> creation, int epsg = 32618, double x0 = 500000,
                          double y0 = 4000000, double res = 30) {
  GDALDriverH drv = GDALGetDriverByName("GTiff");
  std::vector<char*> opts;
  for (auto& s : creation) opts.push_back(s.data());
  opts.push_back(nullptr);
  GDALDatasetH ds = GDALCreate(drv, path.c_str(), w, h, bands, type, opts.data());
  EXPECT_NE(ds, nullptr);
  double gt[6] = {x0, res, 0, y0, 0, -res};
  GDALSetGeoTransform(ds, gt);
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, epsg);
  char* wkt = nullptr;
  OSRExportToWkt(srs, &wkt);
  GDALSetProjection(ds, wkt);
  CPLFree(wkt);
  OSRDestroySpatialReference(srs);
  std::vector<double> buf(static_cast<size_t>(w) * h);
  for (int b = 1; b <= bands; ++b) {
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c)
        buf[r * w + c] = ((b * 37 + r * 11 + c * 7) % 251) -
                         (GDALDataTypeIsSigned(type) ? 100 : 0) +
                         (GDALDataTypeIsFloating(type) ? 0.25 : 0);
    EXPECT_EQ(GDALRasterIO(GDALGetRasterBand(ds, b), GF_Write, 0, 0, w, h, buf.data(), w, h,
                           GDT_Float64, 0, 0),
              CE_None);
  }
  GDALClose(ds);
  return path;
}

TEST(GeoTiffIngest, AnyDtypeTilingAndCompressionReadsLikeGdal) {
  TempDir dir;
  struct Case {
    GDALDataType type;
    std::vector<std::string> creation;
  };
  const std::vector<Case> cases = {
      {GDT_Int16, {"TILED=YES", "BLOCKXSIZE=32", "BLOCKYSIZE=32", "COMPRESS=DEFLATE"}},
      {GDT_UInt32, {"COMPRESS=LZW"}},
      {GDT_Int32, {"BIGTIFF=YES", "TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"}},
      {GDT_Float32, {"COMPRESS=ZSTD", "PREDICTOR=3", "INTERLEAVE=BAND"}},
      {GDT_Float64, {"TILED=YES", "COMPRESS=DEFLATE"}},
      {GDT_UInt16, {"TILED=YES", "COMPRESS=LZW", "PREDICTOR=2", "INTERLEAVE=PIXEL"}},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(GDALGetDataTypeName(c.type));
    const std::string path =
        WriteTestTiff(dir.Sub("in" + std::to_string(n) + ".tif"), c.type, 70, 50, 2, c.creation);
    GeoTiffOptions g;
    g.files = {path};
    auto r = Ingest(g, dir.Sub("store" + std::to_string(n++)), Tiles(24, 24));
    ASSERT_TRUE(r.store);
    EXPECT_EQ(GdalType(r.store->manifest().FindField("x")->dtype), c.type);
    EXPECT_EQ(ExpectTilesEqualGdal(*r.store, path, {1, 2}), 9u);  // shift: 3 x 3 windows
  }
}

// Uncompressed rasters are opened with GTIFF_DIRECT_IO (read past GDAL's block cache): tiles
// equal GDAL's own reads through the cache for pixel- and band-interleaved, tiled and striped
// files with windows across blocks, and the caller's thread keeps its own setting, set or not.
TEST(GeoTiffIngest, UncompressedFilesReadDirectlyEqualGdalAndLeaveTheCallersSetting) {
  TempDir dir;
  struct Case {
    GDALDataType type;
    int bands;
    std::vector<std::string> creation;
  };
  const std::vector<Case> cases = {
      {GDT_Byte, 3, {"TILED=YES", "BLOCKXSIZE=32", "BLOCKYSIZE=32", "INTERLEAVE=PIXEL"}},
      {GDT_UInt16, 2, {"INTERLEAVE=BAND"}},
      {GDT_Float32, 2, {"TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", "INTERLEAVE=BAND"}},
  };
  int n = 0;
  for (const char* callers : {static_cast<const char*>(nullptr), "NO"})
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(GDALGetDataTypeName(c.type)) + (callers ? ", caller NO" : ""));
      const std::string path = WriteTestTiff(dir.Sub("in" + std::to_string(n) + ".tif"), c.type, 70,
                                             50, c.bands, c.creation);
      CPLSetThreadLocalConfigOption("GTIFF_DIRECT_IO", callers);
      GeoTiffOptions g;
      g.files = {path};
      auto r = Ingest(g, dir.Sub("store" + std::to_string(n++)), Tiles(24, 24));
      const char* after = CPLGetConfigOption("GTIFF_DIRECT_IO", nullptr);
      EXPECT_EQ(after ? std::string(after) : "unset", callers ? callers : "unset");
      CPLSetThreadLocalConfigOption("GTIFF_DIRECT_IO", nullptr);
      ASSERT_TRUE(r.store);
      std::vector<int> bands(c.bands);
      std::iota(bands.begin(), bands.end(), 1);
      EXPECT_EQ(ExpectTilesEqualGdal(*r.store, path, bands), 9u);  // shift: 3 x 3 windows
    }
}

TEST(GeoTiffIngest, TileGeotransformLocatesTheWindowAndSceneCrsIsInManifest) {
  TempDir dir;
  const std::string path = SharedData("geotiff/RGB.byte.tif");
  GeoTiffOptions g;
  g.files = {path};
  auto r = Ingest(g, dir.path(), Tiles(256, 256));
  ASSERT_TRUE(r.store);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  double gt[6];
  GDALGetGeoTransform(ds, gt);
  GDALClose(ds);
  auto s = r.store->Read(r.store->size() - 1);
  const auto w = s->meta.at("window");
  const auto tgt = s->meta.at("geotransform");
  EXPECT_DOUBLE_EQ(tgt[0].get<double>(), gt[0] + w[1].get<double>() * gt[1]);
  EXPECT_DOUBLE_EQ(tgt[3].get<double>(), gt[3] + w[0].get<double>() * gt[5]);
  EXPECT_EQ(s->meta.at("scene"), path);
  const auto& scenes = r.store->manifest().attrs.at("scenes");
  ASSERT_EQ(scenes.size(), 1u);
  EXPECT_EQ(scenes[0].at("epsg"), 32618);
  EXPECT_NE(scenes[0].at("crs_wkt").get<std::string>().find("UTM zone 18N"), std::string::npos);
  const auto& sources = r.store->manifest().provenance.at("sources");
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].at("bytes"), testing::FileSize(path));
  EXPECT_EQ(sources[0].at("xxh3").get<std::string>().size(), 16u);
}

// GDAL's own warp of the same file into memory, with the options the source documents.
GDALDatasetH GdalWarpToMem(const std::string& path, std::vector<std::string> args) {
  GDALDatasetH src = GDALOpen(path.c_str(), GA_ReadOnly);
  std::vector<char*> argv;
  args.insert(args.begin(), {"-of", "MEM", "-et", "0"});
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  GDALWarpAppOptions* o = GDALWarpAppOptionsNew(argv.data(), nullptr);
  GDALDatasetH out = GDALWarp("", nullptr, 1, &src, o, nullptr);
  GDALWarpAppOptionsFree(o);
  GDALClose(src);
  return out;
}

TEST(GeoTiffIngest, WarpedStoreEqualsGdalWarp) {
  const std::string path = SharedData("geotiff/RGB.byte.tif");
  TempDir dir;
  GeoTiffOptions g;
  g.files = {path};
  g.dst_crs = "EPSG:4326";
  g.res = {0.004, 0.004};
  auto r = Ingest(g, dir.path(), Tiles(64, 64));
  ASSERT_TRUE(r.store);
  // u8 data: nearest is the documented default.
  GDALDatasetH warped =
      GdalWarpToMem(path, {"-t_srs", "EPSG:4326", "-tr", "0.004", "0.004", "-tap", "-r", "near"});
  ASSERT_NE(warped, nullptr);
  const auto& scene = r.store->manifest().attrs.at("scenes")[0];
  EXPECT_EQ(scene.at("width"), GDALGetRasterXSize(warped));
  EXPECT_EQ(scene.at("height"), GDALGetRasterYSize(warped));
  EXPECT_EQ(scene.at("epsg"), 4326);
  EXPECT_EQ(scene.at("resampling"), "near");
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    auto s = r.store->Read(i);
    const auto w = s->meta.at("window");
    auto truth = GdalRead(warped, {1, 2, 3}, w[0], w[1], 64, 64, DType::kU8);
    ASSERT_TRUE(truth == s->Find("x")->data) << "window " << w.dump();
  }
  GDALClose(warped);
}

TEST(GeoTiffIngest, LabelOnAnotherGridIsWarpedWithNearestOntoTheSceneAsY) {
  TempDir dir;
  // Scene 60x40 at 30 m; label 30x20 at 60 m over the same area, with classes 0..4.
  const std::string scene = WriteTestTiff(dir.Sub("scene.tif"), GDT_UInt16, 60, 40, 2, {});
  const std::string label =
      WriteTestTiff(dir.Sub("label.tif"), GDT_Byte, 30, 20, 1, {}, 32618, 500000, 4000000, 60);
  GeoTiffOptions g;
  g.files = {scene};
  g.labels = {label};
  auto r = Ingest(g, dir.Sub("store"), Tiles(20, 20));
  ASSERT_TRUE(r.store);
  const FieldSchema* y = r.store->manifest().FindField("y");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->dtype, DType::kU8);
  GDALDatasetH truth = GdalWarpToMem(label, {"-t_srs", "EPSG:32618", "-te", "500000", "3998800",
                                             "501800", "4000000", "-ts", "60", "40", "-r", "near"});
  ASSERT_NE(truth, nullptr);
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    auto s = r.store->Read(i);
    const auto w = s->meta.at("window");
    const Array* yt = s->Find("y");
    ASSERT_NE(yt, nullptr);
    EXPECT_EQ(yt->shape, (std::vector<int64_t>{1, 20, 20}));
    EXPECT_TRUE(GdalRead(truth, {1}, w[0], w[1], 20, 20, DType::kU8) == yt->data);
    // Nearest from a 2x coarser grid: each label pixel covers 2x2 scene pixels.
    EXPECT_EQ(yt->data[0], yt->data[1]);
  }
  GDALClose(truth);
}

TEST(GeoTiffIngest, SameStoreForOneAndManyThreads) {
  TempDir a, b;
  GeoTiffOptions g;
  g.files = {SharedData("geotiff/shade.tif"), SharedData("geotiff/world.byte.tif")};
  auto one = Ingest(g, a.path(), Tiles(200, 200), 0.1, 1);
  auto many = Ingest(g, b.path(), Tiles(200, 200), 0.1, 4);
  ASSERT_TRUE(one.store && many.store);
  ASSERT_EQ(one.store->size(), many.store->size());
  for (uint64_t i = 0; i < one.store->size(); ++i) {
    auto sa = one.store->Read(i);
    auto sb = many.store->Read(i);
    ASSERT_EQ(sa->fields[0].array.data, sb->fields[0].array.data);
    ASSERT_EQ(sa->meta, sb->meta);
  }
  const auto& xa = one.store->manifest().FindField("x")->stats[0];
  const auto& xb = many.store->manifest().FindField("x")->stats[0];
  EXPECT_EQ(xa.mean, xb.mean);
  EXPECT_EQ(xa.m2, xb.m2);
  EXPECT_EQ(xa.count, xb.count);
}

TEST(GeoTiffIngest, OverlappingStrideAndFloatOutputTurnNodataIntoNaN) {
  const std::string path = SharedData("geotiff/RGB.byte.tif");
  TempDir dir;
  GeoTiffOptions g;
  g.files = {path};
  TileSpec tile{false, 256, 256, 128, 128, EdgePolicy::kDrop};
  auto r = Ingest(g, dir.path(), tile, 0.0, 2, DType::kF32);
  ASSERT_TRUE(r.store);
  // drop: rows 0,128,256,384 (384+256=640 <= 718) x cols 0..512 step 128 (512+256 <= 791).
  EXPECT_EQ(r.summary.tiles_considered, 4u * 5u);
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  uint64_t nan_seen = 0;
  for (uint64_t i = 0; i < r.store->size(); ++i) {
    auto s = r.store->Read(i);
    const auto w = s->meta.at("window");
    EXPECT_EQ(w[0].get<int64_t>() % 128, 0);
    const Array* x = s->Find("x");
    ASSERT_EQ(x->dtype, DType::kF32);
    auto truth = GdalRead(ds, {1, 2, 3}, w[0], w[1], 256, 256, DType::kU8);
    auto v = x->As<float>();
    for (size_t k = 0; k < truth.size(); ++k) {
      if (truth[k] == 0) {
        ASSERT_TRUE(std::isnan(v[k])) << k;
        ++nan_seen;
      } else {
        ASSERT_EQ(v[k], static_cast<float>(truth[k])) << k;
      }
    }
  }
  GDALClose(ds);
  EXPECT_GT(nan_seen, 0u);
  EXPECT_EQ(r.store->manifest().attrs.at("ingest").at("invalid_to_nan"), true);
}

// Landsat 8 band 1 (u16, no nodata) warped from UTM to geographic: a rotated footprint, so the
// target grid has corners the source does not cover.
const char* kLandsatB1 = "geotiff/landsat8/LC08_L1TP_016037_20170813_B1.TIF";

GeoTiffOptions WarpedLandsat() {
  GeoTiffOptions g;
  g.files = {SharedData(kLandsatB1)};
  g.dst_crs = "EPSG:4326";
  g.res = {0.01, 0.01};
  g.resampling = "near";
  return g;
}

// GDAL's warp of the same file with a destination alpha band: alpha 0 marks the pixels outside
// the source footprint.
GDALDatasetH GdalWarpLandsatWithAlpha() {
  return GdalWarpToMem(SharedData(kLandsatB1), {"-t_srs", "EPSG:4326", "-tr", "0.01", "0.01",
                                                "-tap", "-r", "near", "-dstalpha"});
}

TEST(GeoTiffIngest, WarpedFillOutsideFootprintIsInvalidForEveryDtype) {
  GDALDatasetH truth = GdalWarpLandsatWithAlpha();
  ASSERT_NE(truth, nullptr);
  ASSERT_EQ(GDALGetRasterCount(truth), 2);
  for (std::optional<DType> dtype : {std::optional<DType>(), std::optional<DType>(DType::kF32)}) {
    TempDir dir;
    GeoTiffOptions g = WarpedLandsat();
    g.store_dtype = dtype;
    auto r = Ingest(g, dir.path(), Tiles(64, 64), 0.0, 2, dtype);
    ASSERT_TRUE(r.store);
    const auto& nodata = r.store->manifest().attrs.at("ingest").at("nodata").at("x");
    // u16 without nodata: the chosen fill (the type's maximum) is recorded as its nodata; stored
    // as f32, NaN marks them and no value is chosen.
    EXPECT_EQ(nodata, dtype ? nlohmann::json::array({nullptr}) : nlohmann::json::array({65535.0}));
    uint64_t valid_total = 0, outside_total = 0;
    for (uint64_t i = 0; i < r.store->size(); ++i) {
      auto s = r.store->Read(i);
      const auto w = s->meta.at("window");
      const Array* x = s->Find("x");
      const auto values = GdalRead(truth, {1}, w[0], w[1], 64, 64, DType::kF64);
      const auto alpha = GdalRead(truth, {2}, w[0], w[1], 64, 64, DType::kU8);
      const double* v = reinterpret_cast<const double*>(values.data());
      uint64_t valid = 0;
      for (int k = 0; k < 64 * 64; ++k) {
        const double stored = x->dtype == DType::kF32
                                  ? reinterpret_cast<const float*>(x->data.data())[k]
                                  : reinterpret_cast<const uint16_t*>(x->data.data())[k];
        if (alpha[k]) {
          ++valid;
          ASSERT_EQ(stored, v[k]) << "record " << i << " pixel " << k;
        } else if (x->dtype == DType::kF32) {
          ASSERT_TRUE(std::isnan(stored)) << "record " << i << " pixel " << k;
        } else {
          ASSERT_EQ(stored, 65535.0) << "record " << i << " pixel " << k;
        }
      }
      EXPECT_DOUBLE_EQ(s->meta.at("valid_fraction").get<double>(), valid / (64.0 * 64.0));
      valid_total += valid;
      outside_total += 64 * 64 - valid;
    }
    EXPECT_GT(outside_total, 0u);  // the corners really are outside the footprint
    const auto& stats = r.store->manifest().FindField("x")->stats[0];
    EXPECT_EQ(stats.count, valid_total);
    EXPECT_EQ(stats.total, valid_total + outside_total);
  }
  GDALClose(truth);
}

TEST(GeoTiffIngest, MinValidDropsWarpedTilesOutsideTheFootprint) {
  GDALDatasetH truth = GdalWarpLandsatWithAlpha();
  ASSERT_NE(truth, nullptr);
  TempDir all_dir, kept_dir;
  auto all = Ingest(WarpedLandsat(), all_dir.path(), Tiles(32, 32), 0.0);
  auto kept = Ingest(WarpedLandsat(), kept_dir.path(), Tiles(32, 32), 0.9);
  ASSERT_TRUE(all.store && kept.store);
  std::set<std::pair<int64_t, int64_t>> expected, got;
  for (uint64_t i = 0; i < all.store->size(); ++i) {
    const auto w = all.store->Read(i)->meta.at("window");
    const auto alpha = GdalRead(truth, {2}, w[0], w[1], 32, 32, DType::kU8);
    const auto valid = std::count_if(alpha.begin(), alpha.end(), [](uint8_t a) { return a != 0; });
    if (valid >= 0.9 * 32 * 32) expected.insert({w[0].get<int64_t>(), w[1].get<int64_t>()});
  }
  for (uint64_t i = 0; i < kept.store->size(); ++i) {
    const auto w = kept.store->Read(i)->meta.at("window");
    got.insert({w[0].get<int64_t>(), w[1].get<int64_t>()});
  }
  EXPECT_GT(kept.summary.tiles_dropped, 0u);
  EXPECT_EQ(kept.summary.tiles_dropped, all.store->size() - expected.size());
  EXPECT_EQ(got, expected);
  GDALClose(truth);
}

TEST(GeoTiffIngest, ChosenNodataIsRecordedAndAValidPixelEqualToItIsRefused) {
  TempDir dir;
  // u8 values (b*37 + r*11 + c*7) % 251 never reach 251..255: the default fill 255 is free.
  const std::string path = WriteTestTiff(dir.Sub("in.tif"), GDT_Byte, 60, 40, 1, {});
  GeoTiffOptions g;
  g.files = {path};
  g.dst_crs = "EPSG:4326";
  auto ok = Ingest(g, dir.Sub("ok"), Tiles(16, 16));
  ASSERT_TRUE(ok.store);
  EXPECT_EQ(ok.store->manifest().attrs.at("ingest").at("nodata").at("x"),
            nlohmann::json::array({255.0}));
  // --dst-nodata 7: the data has 7s, which would silently turn invalid.
  g.dst_nodata = 7;
  auto source = OpenGeoTiffSource(g);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  DriverOptions o;
  o.out = dir.Sub("bad");
  o.tile = Tiles(16, 16);
  auto summary = RunIngest(**source, o);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), ::testing::HasSubstr("a valid pixel equals 7"));
  EXPECT_THAT(summary.status().message(), ::testing::HasSubstr("--dst-nodata"));
  // A fill the type cannot hold is refused up front.
  g.dst_nodata = 300;
  auto bad = OpenGeoTiffSource(g);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("--dst-nodata 300"));
}

TEST(GeoTiffIngest, WarpedTilesEqualGdalwarpForNearBilinearAndCubic) {
  for (const std::string resampling : {"near", "bilinear", "cubic"}) {
    SCOPED_TRACE(resampling);
    TempDir dir;
    GeoTiffOptions g = WarpedLandsat();
    g.resampling = resampling;
    g.store_dtype = DType::kF32;
    auto r = Ingest(g, dir.path(), Tiles(64, 64), 0.0, 2, DType::kF32);
    ASSERT_TRUE(r.store);
    // gdalwarp with the same options, the kernel scale included (the source documents why).
    const auto scale = r.store->manifest().attrs.at("scenes")[0].at("warp_scale");
    EXPECT_NEAR(scale[0].get<double>(), 0.889, 0.001);  // 900 m Landsat pixels in degrees / 0.01
    GDALDatasetH truth = GdalWarpToMem(
        SharedData(kLandsatB1),
        {"-t_srs", "EPSG:4326", "-tr", "0.01", "0.01", "-tap", "-r", resampling, "-dstalpha", "-ot",
         "Float32", "-wo", StrCat("XSCALE=", std::setprecision(17), scale[0].get<double>()), "-wo",
         StrCat("YSCALE=", std::setprecision(17), scale[1].get<double>())});
    ASSERT_NE(truth, nullptr);
    uint64_t compared = 0, differ = 0;
    double worst = 0;
    for (uint64_t i = 0; i < r.store->size(); ++i) {
      auto s = r.store->Read(i);
      const auto w = s->meta.at("window");
      const auto values = GdalRead(truth, {1}, w[0], w[1], 64, 64, DType::kF32);
      const auto alpha = GdalRead(truth, {2}, w[0], w[1], 64, 64, DType::kF32);
      const float* v = reinterpret_cast<const float*>(values.data());
      const float* a = reinterpret_cast<const float*>(alpha.data());
      const float* x = reinterpret_cast<const float*>(s->Find("x")->data.data());
      for (int k = 0; k < 64 * 64; ++k) {
        if (a[k] == 0) {
          EXPECT_TRUE(std::isnan(x[k]));
          continue;
        }
        ++compared;
        if (x[k] != v[k]) {
          ++differ;
          worst = std::max(worst, std::fabs(double(x[k]) - v[k]));
        }
      }
    }
    GDALClose(truth);
    EXPECT_GT(compared, 0u);
    EXPECT_EQ(differ, 0u) << "worst " << worst << " of " << compared;
  }
}

}  // namespace
}  // namespace tilestage::ingest
