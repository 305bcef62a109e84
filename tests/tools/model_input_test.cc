// What reaches the model is true, end to end through the CLI on a real raster: integer nodata in
// x (RGB.byte.tif, nodata 0) and in a u8 label (nodata 255, written here with GDAL) is invalid in
// the C++ loader exactly where GDAL reads the nodata value, the statistics exclude it as GDAL's
// own statistics do, the pure-numpy reader's normalized values equal the loader's bit for bit,
// torch's default_collate works over a padded store, and the training loss stays sane. Plus the
// CLI's answers on an existing store, a patch that does not divide the tile, and the smaller
// reports (inspect, export, load).
#include <gdal.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "loaders/loader.h"
#include "tests/common/test_util.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using testing::CliPath;
using testing::CommandResult;
using testing::RunCommand;
using testing::SharedData;
using testing::TempDir;

constexpr uint8_t kLabelNodata = 255;

CommandResult Cli(const std::string& args) { return RunCommand(CliPath() + " " + args); }

bool Contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

std::string Raster() { return SharedData("geotiff/RGB.byte.tif"); }

// Reads band `band` of `path` in the window (row, col, h, w) as GDAL sees it, as doubles.
std::vector<double> GdalRead(const std::string& path, int band, int64_t row, int64_t col, int64_t h,
                             int64_t w) {
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  EXPECT_NE(ds, nullptr) << path;
  std::vector<double> out(static_cast<size_t>(h * w));
  if (!ds) return out;
  EXPECT_EQ(GDALRasterIO(GDALGetRasterBand(ds, band), GF_Read, static_cast<int>(col),
                         static_cast<int>(row), static_cast<int>(w), static_cast<int>(h),
                         out.data(), static_cast<int>(w), static_cast<int>(h), GDT_Float64, 0, 0),
            CE_None);
  GDALClose(ds);
  return out;
}

struct RasterInfo {
  int width = 0, height = 0;
  std::optional<double> nodata;
};

RasterInfo GdalInfo(const std::string& path) {
  GDALAllRegister();
  RasterInfo info;
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  EXPECT_NE(ds, nullptr) << path;
  if (!ds) return info;
  info.width = GDALGetRasterXSize(ds);
  info.height = GDALGetRasterYSize(ds);
  int has = 0;
  const double nodata = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, 1), &has);
  if (has) info.nodata = nodata;
  GDALClose(ds);
  return info;
}

// The C++ loader over `store` in record order, normalized, with x validity masks when asked.
std::unique_ptr<Loader> LoaderInOrder(const std::string& store, int64_t batch, bool x_valid) {
  LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = ShuffleMode::kNone;
  o.validity_mask = x_valid;
  auto loader = Loader::Open(LocalStorage(), store, o);
  EXPECT_TRUE(loader.ok()) << loader.status().ToString();
  return loader.ok() ? std::move(loader).value() : nullptr;
}

// Every record of a single-channel store through the C++ loader (normalized, validity masks),
// checked pixel by pixel against band 1 of `path` read by GDAL: x_valid is 1 exactly inside the
// raster where GDAL's value is not its nodata, x is 0 wherever it is 0. Returns the invalid count.
int64_t ExpectLoaderValidityEqualsGdal(const std::string& store, const std::string& path) {
  const RasterInfo info = GdalInfo(path);
  std::unique_ptr<Loader> loader = LoaderInOrder(store, 1, true);
  if (!loader) return 0;
  auto opened = Store::Open(LocalStorage(), store);
  EXPECT_TRUE(opened.ok());
  if (!opened.ok()) return 0;
  Batch b;
  int64_t invalid = 0;
  while (*loader->Next(&b)) {
    auto record = (*opened)->Read(b.indices[0]);
    EXPECT_TRUE(record.ok());
    if (!record.ok()) return invalid;
    const auto& w = record->meta.at("window");
    const int64_t row = w[0], col = w[1], h = w[2], wd = w[3];
    const int64_t in_h = std::min<int64_t>(h, info.height - row);
    const int64_t in_w = std::min<int64_t>(wd, info.width - col);
    const auto truth = GdalRead(path, 1, row, col, in_h, in_w);
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < wd; ++c) {
        const bool inside = r < in_h && c < in_w;
        const bool valid = inside && !(info.nodata && truth[r * in_w + c] == *info.nodata);
        const size_t at = static_cast<size_t>(r * wd + c);
        EXPECT_EQ(b.x_valid[at], valid ? 1 : 0)
            << store << " record " << b.indices[0] << " row " << row + r << " col " << col + c;
        if (!valid) {
          EXPECT_EQ(b.x[at], 0.0f);
        }
        invalid += !valid;
      }
  }
  return invalid;
}

// A u8 label aligned with RGB.byte.tif: class band1 / 64 (0..3), nodata 255 where band 1 is
// nodata and over a block, so whole tiles and parts of tiles are unlabelled.
void WriteLabel(const std::string& path) {
  GDALAllRegister();
  GDALDatasetH src = GDALOpen(Raster().c_str(), GA_ReadOnly);
  ASSERT_NE(src, nullptr);
  const int w = GDALGetRasterXSize(src), h = GDALGetRasterYSize(src);
  std::vector<uint8_t> b1(static_cast<size_t>(w) * h);
  ASSERT_EQ(GDALRasterIO(GDALGetRasterBand(src, 1), GF_Read, 0, 0, w, h, b1.data(), w, h,
                         GDT_Byte, 0, 0),
            CE_None);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) {
      uint8_t& v = b1[static_cast<size_t>(r) * w + c];
      const bool hole = r >= 100 && r < 300 && c >= 200 && c < 400;
      v = (v == 0 || hole) ? kLabelNodata : static_cast<uint8_t>(v / 64);
    }
  GDALDatasetH dst = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), w, h, 1, GDT_Byte,
                                nullptr);
  ASSERT_NE(dst, nullptr);
  double gt[6];
  GDALGetGeoTransform(src, gt);
  GDALSetGeoTransform(dst, gt);
  GDALSetProjection(dst, GDALGetProjectionRef(src));
  GDALRasterBandH band = GDALGetRasterBand(dst, 1);
  GDALSetRasterNoDataValue(band, kLabelNodata);
  ASSERT_EQ(GDALRasterIO(band, GF_Write, 0, 0, w, h, b1.data(), w, h, GDT_Byte, 0, 0), CE_None);
  GDALClose(dst);
  GDALClose(src);
}

// One labelled store per test binary: RGB.byte.tif (u8, nodata 0) with the u8 label.
class LabelStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    label_ = tmp_->Sub("label.tif");
    WriteLabel(label_);
    store_ = tmp_->Sub("lab");
    CommandResult r = Cli("ingest geotiff --no-progress " + Raster() + " --label " + label_ +
                          " --out " + store_ + " --tile 64,64");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete tmp_; }
  static TempDir* tmp_;
  static std::string label_, store_;
};
TempDir* LabelStore::tmp_ = nullptr;
std::string LabelStore::label_, LabelStore::store_;

TEST_F(LabelStore, IntegerNodataInXAndYIsInvalidInTheLoaderWhereGdalReadsIt) {
  auto store = Store::Open(LocalStorage(), store_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const Manifest& m = (*store)->manifest();
  const auto& x_stats = m.FindField("x")->stats;
  LoaderOptions o;
  o.batch_size = 16;
  o.shuffle = ShuffleMode::kNone;
  o.validity_mask = true;
  auto loader = Loader::Open(LocalStorage(), store_, o);
  ASSERT_TRUE(loader.ok()) << loader.status().ToString();
  Batch b;
  int64_t invalid_x = 0, invalid_y = 0;
  std::set<uint64_t> seen;  // the last batch is padded to full size with repeated records
  while (*(*loader)->Next(&b)) {
    for (int64_t s = 0; s < b.size; ++s) {
      seen.insert(b.indices[s]);
      auto record = (*store)->Read(b.indices[s]);
      ASSERT_TRUE(record.ok());
      const auto& w = record->meta.at("window");
      const int64_t row = w[0], col = w[1];
      for (int band = 1; band <= 3; ++band) {
        const auto truth = GdalRead(Raster(), band, row, col, 64, 64);
        const ChannelStats& st = x_stats[band - 1];
        const float mean = static_cast<float>(st.mean);
        const float inv_std = static_cast<float>(1.0 / st.std());
        for (int64_t i = 0; i < 64 * 64; ++i) {
          const int64_t at = s * 3 * 4096 + (band - 1) * 4096 + i;
          const bool valid = truth[i] != 0;
          ASSERT_EQ(b.x_valid[at], valid ? 1 : 0) << "record " << b.indices[s] << " band " << band;
          ASSERT_EQ(b.x[at], valid ? (static_cast<float>(truth[i]) - mean) * inv_std : 0.0f);
          invalid_x += !valid;
        }
      }
      const auto labels = GdalRead(label_, 1, row, col, 64, 64);
      for (int64_t i = 0; i < 64 * 64; ++i) {
        const bool valid = labels[i] != kLabelNodata;
        ASSERT_EQ(b.y_valid[s * 4096 + i], valid ? 1 : 0) << "record " << b.indices[s];
        ASSERT_EQ(b.y[s * 4096 + i], valid ? static_cast<float>(labels[i]) : 0.0f);
        invalid_y += !valid;
      }
    }
  }
  EXPECT_EQ(seen.size(), (*store)->size());
  EXPECT_GT(invalid_x, 0);
  EXPECT_GT(invalid_y, invalid_x / 3);  // the label's block is unlabelled too

  // With augmentation (flips, quarter turns) the masks travel with the pixels.
  o.augment = true;
  o.validity_mask = true;
  auto augmented = Loader::Open(LocalStorage(), store_, o);
  ASSERT_TRUE(augmented.ok());
  int64_t aug_invalid_x = 0, aug_invalid_y = 0;
  while (*(*augmented)->Next(&b)) {
    for (size_t i = 0; i < b.x.size(); ++i) {
      if (!b.x_valid[i]) {
        ASSERT_EQ(b.x[i], 0.0f);
      }
      aug_invalid_x += !b.x_valid[i];
    }
    for (size_t i = 0; i < b.y.size(); ++i) {
      if (!b.y_valid[i]) {
        ASSERT_EQ(b.y[i], 0.0f);
      }
      aug_invalid_y += !b.y_valid[i];
    }
  }
  EXPECT_EQ(aug_invalid_x, invalid_x);
  EXPECT_EQ(aug_invalid_y, invalid_y);
}

// Four vit-regress steps on `store` (labels 0..3 with nodata): an untrained model's squared error
// stays below 3^2 + a margin only when the nodata targets are skipped.
void ExpectRegressLossSkipsNodataTargets(const std::string& store) {
  CommandResult r = RunCommand(CliPath() + " train --store " + store +
                               " --model vit-regress --max-steps 4 --batch 8 --depth 2 --dim 64 "
                               "--heads 2 --json - 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  int steps = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "step") continue;
    ++steps;
    const double loss = j.at("loss");
    EXPECT_GT(loss, 0.0);
    EXPECT_LT(loss, 12.0) << line;
  }
  EXPECT_EQ(steps, 4) << r.output;
}

TEST_F(LabelStore, RegressLossOnAU8LabelWithNodataIsSane) {
  // The issue's reproduction: with the 255s fed as targets the loss was near 2500.
  ExpectRegressLossSkipsNodataTargets(store_);
}

// The u8 label (nodata 255) stored as float (--y-dtype f32): its nodata becomes NaN, invalid in
// y_valid exactly where GDAL reads 255 (the manifest records no float nodata: NaN marks them), and
// vit-regress skips those targets: its loss stays at the scale of the classes 0..3.
TEST_F(LabelStore, FloatLabelDtypeKeepsLabelNodataInvalidAndOutOfTheLoss) {
  const std::string store = tmp_->Sub("lab_f32");
  CommandResult r = Cli("ingest geotiff --no-progress " + Raster() + " --label " + label_ +
                        " --out " + store + " --tile 64,64 --y-dtype f32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto opened = Store::Open(LocalStorage(), store);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const Manifest& m = (*opened)->manifest();
  EXPECT_EQ(m.FindField("y")->dtype, DType::kF32);
  EXPECT_EQ(m.attrs.at("ingest").at("nodata").at("y"), nlohmann::json::array({nullptr}));
  EXPECT_EQ(m.attrs.at("ingest").at("source_nodata").at("y"),
            nlohmann::json::array({static_cast<double>(kLabelNodata)}));
  const ChannelStats& y_stats = m.FindField("y")->stats[0];
  EXPECT_LE(y_stats.max, 3.0);  // the 255s are outside the statistics
  const float y_mean = static_cast<float>(y_stats.mean);
  const float y_inv_std = static_cast<float>(1.0 / y_stats.std());
  std::unique_ptr<Loader> loader = LoaderInOrder(store, 16, false);
  ASSERT_TRUE(loader);
  Batch b;
  int64_t invalid_y = 0;
  while (*loader->Next(&b)) {
    for (int64_t s = 0; s < b.size; ++s) {
      auto record = (*opened)->Read(b.indices[s]);
      ASSERT_TRUE(record.ok());
      const auto& w = record->meta.at("window");
      const auto labels = GdalRead(label_, 1, w[0], w[1], 64, 64);
      for (int64_t i = 0; i < 64 * 64; ++i) {
        const bool valid = labels[i] != kLabelNodata;
        ASSERT_EQ(b.y_valid[s * 4096 + i], valid ? 1 : 0) << "record " << b.indices[s];
        // A float y on x's grid is normalized like x, with its own statistics.
        ASSERT_EQ(b.y[s * 4096 + i],
                  valid ? (static_cast<float>(labels[i]) - y_mean) * y_inv_std : 0.0f);
        invalid_y += !valid;
      }
    }
  }
  EXPECT_GT(invalid_y, 0);
  ExpectRegressLossSkipsNodataTargets(store);
}

// The "loss_targets" of the first `tilestage train` step on `store` (vit-mae, batch 8, store
// order, patch 8, mask ratio 0.75): the valid pixels of the masked patches it averaged over.
double FirstMaeStepTargets(const std::string& store) {
  CommandResult r = RunCommand(CliPath() + " train --store " + store +
                               " --model vit-mae --max-steps 1 --batch 8 --shuffle none --patch 8 "
                               "--mask-ratio 0.75 --depth 1 --dim 32 --heads 2 --json - "
                               "2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == "step") return j.at("loss_targets");
  }
  ADD_FAILURE() << "no step record: " << r.output;
  return 0.0;
}

// tilestage train --model vit-mae asks the loader for x's validity: on a padded store its loss
// averages over fewer pixels than the masked patches hold (the first batch, in store order,
// holds a tile that is 3 columns of Landsat and 61 of padding); on a store without invalid
// pixels, over all of them: 8 samples x 48 masked patches of 64 pixels.
TEST(ModelInput, MaeTrainingLeavesPaddedPixelsOutOfTheLoss) {
  const std::string path = SharedData("geotiff/landsat8/LC08_L1TP_016037_20170813_B1.TIF");
  TempDir tmp;
  for (const char* edge : {"pad", "shift"}) {
    CommandResult r = Cli("ingest geotiff --no-progress " + path + " --out " + tmp.Sub(edge) +
                          " --tile 64,64 --edge " + edge);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const double full = 8.0 * 48 * 64;
  EXPECT_EQ(FirstMaeStepTargets(tmp.Sub("shift")), full);
  const double padded = FirstMaeStepTargets(tmp.Sub("pad"));
  EXPECT_GT(padded, 0.0);
  EXPECT_LT(padded, full);
}

TEST(ModelInput, StatisticsExcludeNodataAsGdalComputesThem) {
  TempDir tmp;
  // --edge pad: every pixel lies in exactly one tile (padding is invalid), as GDAL counts it.
  CommandResult r = Cli("ingest geotiff --no-progress " + Raster() + " --out " + tmp.Sub("s") +
                        " --tile 64,64 --edge pad");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto m = ReadManifest(*LocalStorage(), tmp.Sub("s"));
  ASSERT_TRUE(m.ok());
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(Raster().c_str(), GA_ReadOnly);
  ASSERT_NE(ds, nullptr);
  for (int band = 1; band <= 3; ++band) {
    double mn, mx, mean, sd;
    ASSERT_EQ(GDALComputeRasterStatistics(GDALGetRasterBand(ds, band), FALSE, &mn, &mx, &mean,
                                          &sd, nullptr, nullptr),
              CE_None);
    const ChannelStats& s = m->FindField("x")->stats[band - 1];
    EXPECT_NEAR(s.mean, mean, 1e-9 * mean) << "band " << band;
    EXPECT_NEAR(s.std(), sd, 1e-9 * sd) << "band " << band;
    EXPECT_EQ(s.min, mn);  // 1, not the nodata 0
    EXPECT_EQ(s.max, mx);
  }
  GDALClose(ds);
}

// A float raster with nodata stored as integers (--dtype), tiles padded past its edge: the
// nodata pixels (-3.4e38, which no integer type holds) and the padding are stored as the dtype's
// recorded nodata value, invalid in the loader where GDAL reads nodata or nothing, and outside the
// statistics. They used to become -32768 or 0 and reach the model as data.
TEST(ModelInput, IntegerDtypeOfAFloatRasterKeepsNodataAndPaddingInvalid) {
  const std::string path = SharedData("geotiff/float_raster_with_nodata.tif");  // 13x12 f32
  const RasterInfo info = GdalInfo(path);
  ASSERT_TRUE(info.nodata);
  const auto all = GdalRead(path, 1, 0, 0, info.height, info.width);
  uint64_t valid = 0;
  for (double v : all) valid += v != *info.nodata;
  ASSERT_GT(valid, 0u);
  ASSERT_LT(valid, all.size());
  TempDir tmp;
  for (const auto& [dtype, stored_nodata] :
       std::vector<std::pair<std::string, double>>{{"i16", -32768.0}, {"u8", 255.0}}) {
    const std::string out = tmp.Sub(dtype);
    CommandResult r = Cli("ingest geotiff --no-progress " + path + " --out " + out +
                          " --tile 8,8 --edge pad --dtype " + dtype);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto m = ReadManifest(*LocalStorage(), out);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->attrs.at("ingest").at("nodata").at("x"), nlohmann::json::array({stored_nodata}));
    EXPECT_EQ(m->attrs.at("ingest").at("source_nodata").at("x")[0].get<double>(), *info.nodata);
    // --edge pad: every pixel lies in exactly one tile, so the counts are the raster's.
    const ChannelStats& st = m->FindField("x")->stats[0];
    EXPECT_EQ(st.count, valid) << dtype;
    EXPECT_EQ(st.min, 0.0) << dtype;  // 0 and 0.25 round to 0; nothing near the nodata
    EXPECT_EQ(st.max, 0.0) << dtype;
    const int64_t invalid = ExpectLoaderValidityEqualsGdal(out, path);
    EXPECT_EQ(static_cast<uint64_t>(invalid), st.total - valid) << dtype;
  }
}

// An integer raster without nodata (Landsat 8 band 1, u16) in padded tiles: the padding is stored
// as the type's maximum, recorded as nodata and invalid in the loader; statistics equal GDAL's
// over the raster. Stored as u8, valid values would saturate into that nodata value: refused.
TEST(ModelInput, PaddedIntegerStoreWithoutNodataMarksPaddingInvalidAndRefusesCollisions) {
  const std::string path = SharedData("geotiff/landsat8/LC08_L1TP_016037_20170813_B1.TIF");
  ASSERT_FALSE(GdalInfo(path).nodata);
  TempDir tmp;
  CommandResult r = Cli("ingest geotiff --no-progress " + path + " --out " + tmp.Sub("s") +
                        " --tile 64,64 --edge pad");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto m = ReadManifest(*LocalStorage(), tmp.Sub("s"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->attrs.at("ingest").at("nodata").at("x"), nlohmann::json::array({65535.0}));
  EXPECT_EQ(m->attrs.at("ingest").at("source_nodata").at("x"), nlohmann::json::array({nullptr}));
  GDALAllRegister();
  GDALDatasetH ds = GDALOpen(path.c_str(), GA_ReadOnly);
  ASSERT_NE(ds, nullptr);
  double mn, mx, mean, sd;
  ASSERT_EQ(GDALComputeRasterStatistics(GDALGetRasterBand(ds, 1), FALSE, &mn, &mx, &mean, &sd,
                                        nullptr, nullptr),
            CE_None);
  const RasterInfo info = GdalInfo(path);
  GDALClose(ds);
  const ChannelStats& st = m->FindField("x")->stats[0];
  EXPECT_EQ(st.count, static_cast<uint64_t>(info.width) * info.height);
  EXPECT_NEAR(st.mean, mean, 1e-9 * mean);
  EXPECT_NEAR(st.std(), sd, 1e-9 * sd);
  EXPECT_EQ(st.max, mx);
  const int64_t invalid = ExpectLoaderValidityEqualsGdal(tmp.Sub("s"), path);
  EXPECT_EQ(static_cast<uint64_t>(invalid), st.total - st.count);
  EXPECT_GT(invalid, 0);

  r = Cli("ingest geotiff --no-progress " + path + " --out " + tmp.Sub("u8") +
          " --tile 64,64 --edge pad --dtype u8");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "channel 0, row ")) << r.output;
  EXPECT_TRUE(Contains(r.output, "is stored as u8 255")) << r.output;
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("u8") + "/manifest.json"));
}

// The pure-numpy reader with normalize=True gives the loader's float32 values and masks bit for
// bit (the loader's output written by `tilestage export --normalize`).
TEST_F(LabelStore, PythonReaderNormalizedEqualsTheLoaderBitForBit) {
  const std::string out = tmp_->Sub("exported");
  const int records = 6;
  for (int i = 0; i < records; ++i)
    for (const char* field : {"x", "y"}) {
      CommandResult r = Cli(StrCat("export ", store_, " --record ", i * 9, " --field ", field,
                                   " --normalize --out ", out, "/", field, i,
                                   ".npy --mask-out ", out, "/", field, i, "_valid.npy"));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  const std::string script = tmp_->Sub("agree.py");
  std::ofstream(script) << R"(
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import tilestage_reader as tr
store, out, records = tr.Store(sys.argv[2], normalize=True), sys.argv[3], int(sys.argv[4])
raw = tr.Store(sys.argv[2])
for i in range(records):
    s = store[i * 9]
    for f in ("x", "y"):
        want = np.load(f"{out}/{f}{i}.npy")
        mask = np.load(f"{out}/{f}{i}_valid.npy")
        assert s[f].dtype == np.float32 and s[f].shape == want.shape, (f, s[f].dtype, s[f].shape)
        assert np.array_equal(s[f].view(np.uint32), want.view(np.uint32)), (i, f)
        assert np.array_equal(s[f + "_valid"], mask), (i, f)
    # Independent of both: invalid exactly where the raw store holds the nodata value.
    r = raw[i * 9]
    assert np.array_equal(s["x_valid"] == 0, r["x"] == 0)
    assert np.array_equal(s["y_valid"] == 0, r["y"] == 255)
print("agree", records)
)";
  CommandResult r = RunCommand(testing::PythonPath() + " " + script + " " + testing::SourceDir() +
                               "/tools/python " + store_ + " " + out + " " +
                               std::to_string(records));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "agree 6")) << r.output;
}

// Every record of a store has the same metadata keys, so torch's default_collate can batch them:
// a store ingested with --edge pad, and an older store whose records carry "padded" only where
// it is true (the C++ and Python readers fill in the default).
TEST(ModelInput, DefaultCollateBatchesAPaddedStore) {
  TempDir tmp;
  CommandResult r = Cli("ingest geotiff --no-progress " + Raster() + " --out " + tmp.Sub("pad") +
                        " --tile 100,100 --edge pad");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The older layout: "padded" only on padded records (written with the tiling library).
  {
    auto old = Store::Open(LocalStorage(), tmp.Sub("pad"));
    ASSERT_TRUE(old.ok());
    StoreWriterOptions options;
    auto writer = StoreWriter::Create(LocalStorage(), tmp.Sub("old"), options);
    ASSERT_TRUE(writer.ok());
    int without = 0;
    for (uint64_t i = 0; i < (*old)->size(); ++i) {
      auto s = (*old)->Read(i);
      ASSERT_TRUE(s.ok());
      if (!s->meta.at("padded").get<bool>()) {
        s->meta.erase("padded");
        ++without;
      }
      ASSERT_TRUE((*writer)->Append(*s).ok());
    }
    ASSERT_GT(without, 0);
    Manifest m = (*old)->manifest();
    m.shards = *(*writer)->Close();
    ASSERT_TRUE(WriteManifest(*LocalStorage(), tmp.Sub("old"), m).ok());
    auto reread = Store::Open(LocalStorage(), tmp.Sub("old"));
    ASSERT_TRUE(reread.ok());
    for (uint64_t i = 0; i < (*reread)->size(); ++i) {
      auto a = (*reread)->Read(i);
      auto b = (*old)->Read(i);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->meta, b->meta);  // the default filled in: the same keys and values
    }
  }
  const std::string script = tmp.Sub("collate.py");
  std::ofstream(script) << R"(
import sys
sys.path.insert(0, sys.argv[1])
import torch
import tilestage_reader as tr
from torch.utils.data import DataLoader
for path in sys.argv[2:]:
    ds = tr.TorchDataset(path, normalize=True)
    n = padded = 0
    for batch in DataLoader(ds, batch_size=7, shuffle=False):
        assert batch["x"].dtype == torch.float32 and batch["x_valid"].dtype == torch.uint8
        assert batch["meta"]["padded"].dtype == torch.bool, batch["meta"]["padded"]
        rows, cols = batch["meta"]["window"][0], batch["meta"]["window"][1]
        want = (rows + 100 > 718) | (cols + 100 > 791)
        assert torch.equal(batch["meta"]["padded"], want)
        n += len(batch["x"])
        padded += int(batch["meta"]["padded"].sum())
    assert n == len(ds) and 0 < padded < n, (n, padded)
    print("collated", path, n, padded)
)";
  r = RunCommand(testing::PythonPath() + " " + script + " " + testing::SourceDir() +
                 "/tools/python " + tmp.Sub("pad") + " " + tmp.Sub("old"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "collated " + tmp.Sub("old"))) << r.output;
}

TEST(ModelInput, ExistingStoreIsRefusedWithoutOverwriteThenReplacedWithIt) {
  TempDir tmp;
  const std::string out = tmp.Sub("store");
  const std::string ingest = "ingest geotiff --no-progress " + Raster() + " --out " + out;
  ASSERT_EQ(Cli(ingest + " --tile 64,64").exit_code, 0);
  auto before = LocalStorage()->ReadAll(out + "/manifest.json");
  ASSERT_TRUE(before.ok());
  CommandResult r = Cli(ingest + " --tile 128,128");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.output, out)) << r.output;
  EXPECT_TRUE(Contains(r.output, "pass --overwrite")) << r.output;
  EXPECT_EQ(*LocalStorage()->ReadAll(out + "/manifest.json"), *before);
  r = Cli(ingest + " --tile 128,128 --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Cli("verify " + out).exit_code, 0);
  EXPECT_EQ(ReadManifest(*LocalStorage(), out)->FindField("x")->shape[1], 128);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
    left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"store"});  // no staging directory left behind
  // A failed overwrite (a corrupt input) leaves the old store complete.
  r = Cli("ingest geotiff --no-progress " + SharedData("geotiff/corrupt.tif") + " --out " + out +
          " --overwrite");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Cli("verify " + out).exit_code, 0);
  EXPECT_EQ(ReadManifest(*LocalStorage(), out)->FindField("x")->shape[1], 128);
}

TEST(ModelInput, OverwriteUnderMpiSwapsOnceAllRanksFinished) {
  TempDir tmp;
  const std::string out = tmp.Sub("store");
  const std::string ingest = "ingest geotiff --no-progress " + Raster() + " " + Raster() +
                             " --out " + out;
  ASSERT_EQ(Cli(ingest + " --tile 64,64").exit_code, 0);
  CommandResult r = RunCommand(std::string(TILESTAGE_MPIRUN_CMD) + " -np 2 " + CliPath() + " " +
                               ingest + " --tile 128,128 --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Cli("verify " + out).exit_code, 0);
  auto m = ReadManifest(*LocalStorage(), out);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->FindField("x")->shape[1], 128);
  EXPECT_EQ(m->attrs["ingest"]["ranks"], 2);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
    left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"store"});
}

// The issue's default `--tile full` NetCDF store of a 36x72 grid, trained with --patch 8.
TEST(ModelInput, PatchNotDividingTheTileNamesTileSizePatchAndFixes) {
  TempDir tmp;
  std::ostringstream cdl;
  cdl << "netcdf grid { dimensions: time = 2 ; lat = 36 ; lon = 72 ;\n"
      << "variables: double time(time) ; time:units = \"hours since 2000-01-01\" ;\n"
      << "float lat(lat) ; lat:units = \"degrees_north\" ; float lon(lon) ;\n"
      << "lon:units = \"degrees_east\" ; float t(time, lat, lon) ; t:units = \"K\" ;\n"
      << "data: time = 0, 6 ;\nlat = ";
  for (int i = 0; i < 36; ++i) cdl << (i ? ", " : "") << -87.5 + 5 * i;
  cdl << " ;\nlon = ";
  for (int i = 0; i < 72; ++i) cdl << (i ? ", " : "") << 2.5 + 5 * i;
  cdl << " ;\nt = ";
  for (int i = 0; i < 2 * 36 * 72; ++i) cdl << (i ? ", " : "") << 250 + i % 50;
  cdl << " ;\n}\n";
  std::ofstream(tmp.Sub("grid.cdl")) << cdl.str();
  ASSERT_EQ(RunCommand("ncgen -o " + tmp.Sub("grid.nc") + " " + tmp.Sub("grid.cdl")).exit_code, 0);
  CommandResult r = Cli("ingest netcdf --no-progress --vars t --out " + tmp.Sub("s") + " " +
                        tmp.Sub("grid.nc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Cli("train --store " + tmp.Sub("s") + " --model vit-mae --patch 8 --batch 2 --max-steps 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.output, "--patch 8 does not divide the 36x72 tiles")) << r.output;
  EXPECT_TRUE(Contains(r.output, "--patch 18, 12, 9, 6, 4, 3, 2")) << r.output;
  EXPECT_TRUE(Contains(r.output, "--crop 32,72")) << r.output;
  EXPECT_TRUE(Contains(r.output, "re-ingest with --tile")) << r.output;
  // Each way out works: the crop the message names.
  r = Cli("train --store " + tmp.Sub("s") +
          " --model vit-mae --patch 8 --crop 32,72 --batch 2 --max-steps 1 --depth 1 --dim 32 "
          "--heads 2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(LabelStore, InspectShowsCrsGeotransformUnitsAndNodata) {
  CommandResult r = Cli("inspect " + store_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "crs         EPSG:32618 WGS 84 / UTM zone 18N")) << r.output;
  EXPECT_TRUE(Contains(r.output, "geotransform [101985, 300.0379267, 0, 2826915, 0, "))
      << r.output;
  EXPECT_TRUE(Contains(r.output, "nodata 0\n")) << r.output;    // x bands
  EXPECT_TRUE(Contains(r.output, "nodata 255\n")) << r.output;  // the label
}

TEST(ModelInput, InspectShowsTimeRangeAndUnitsOfANetcdfStore) {
  TempDir tmp;
  CommandResult r = Cli("ingest netcdf --no-progress --vars t2m --out " + tmp.Sub("s") + " " +
                        SharedData("netcdf/era5_1995-07-14T12.nc"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Cli("inspect " + tmp.Sub("s"));
  EXPECT_TRUE(Contains(r.output, "time        1995-07-14T12:00:00 .. 1995-07-14T12:00:00"))
      << r.output;
  EXPECT_TRUE(Contains(r.output, "units K")) << r.output;
  EXPECT_TRUE(Contains(r.output, "crs         latitude/longitude grid")) << r.output;
}

TEST(ModelInput, IngestSummaryAndInspectShowTheSameCompressionRatio) {
  TempDir tmp;
  CommandResult ingest = Cli("ingest geotiff --no-progress --json " + Raster() + " --out " +
                             tmp.Sub("s") + " --tile 64,64 2>/dev/null");
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  CommandResult inspect = Cli("inspect --json " + tmp.Sub("s") + " 2>/dev/null");
  ASSERT_EQ(inspect.exit_code, 0);
  const double a = nlohmann::json::parse(ingest.output).at("compression_ratio");
  const double b = nlohmann::json::parse(inspect.output).at("compression_ratio");
  EXPECT_GT(a, 0.0);
  EXPECT_DOUBLE_EQ(a, b);
  // And the text forms print the same figure.
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2fx", b);
  EXPECT_TRUE(Contains(Cli("inspect " + tmp.Sub("s")).output, ratio));
}

TEST_F(LabelStore, ExportIntoAMissingDirectoryCreatesIt) {
  const std::string out = tmp_->Sub("not/yet/there/x.npy");
  CommandResult r = Cli("export " + store_ + " --record 1 --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(out));
  // A parent that is a file is named as the problem.
  r = Cli("export " + store_ + " --record 1 --out " + label_ + "/x.npy");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.output, "is not a directory")) << r.output;
}

TEST_F(LabelStore, LoadWithoutComputeMsPrintsNoAu) {
  CommandResult r = Cli("load " + store_ + " --batch 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(Contains(r.output, "AU 0.0%")) << r.output;
  EXPECT_TRUE(Contains(r.output, "no AU: pass --compute-ms")) << r.output;
}

TEST(ModelInput, HelpSaysMissingParentsOfOutAreCreated) {
  CommandResult r = Cli("ingest geotiff --help");
  EXPECT_TRUE(Contains(r.output, "created, with any missing parent directories")) << r.output;
  EXPECT_TRUE(Contains(r.output, "--overwrite")) << r.output;
}

}  // namespace
}  // namespace tilestage
