// `tilestage ingest hdf5` and `tilestage ingest tiff-stack` end to end: the stored samples equal
// HDF5's / libtiff's own reads with the transforms computed directly in the test; bad inputs fail
// with a clear message and leave no manifest; 1 rank and 2 MPI ranks store the same content.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/common/test_util.h"
#include "tests/ingest_hdf5/fixtures.h"
#include "tiling/store.h"

namespace tilestage::testing {
namespace {

namespace fs = std::filesystem;

CommandResult Tilestage(const std::string& args) { return RunCommand(CliPath() + " " + args); }

std::unique_ptr<Store> OpenStore(const std::string& dir) {
  auto store = Store::Open(LocalStorage(), dir);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

std::vector<double> Values(const Array& a) {
  std::vector<double> v;
  for (int64_t i = 0; i < a.NumElements(); ++i) v.push_back(ElementAsDouble(a, i));
  return v;
}

// Centred crop of frame f of an [N,H,W] buffer, then clip/log1p/sqrt, computed directly.
template <typename T>
std::vector<double> DirectTransform(const std::vector<T>& frames, int64_t f, int64_t h, int64_t w,
                                    int64_t ch, int64_t cw, int64_t k, std::optional<double> clip,
                                    const std::string& scale) {
  const int64_t y0 = (h - ch) / 2, x0 = (w - cw) / 2;
  std::vector<double> out;
  for (int64_t y = 0; y < ch / k; ++y)
    for (int64_t x = 0; x < cw / k; ++x) {
      double v = 0;
      for (int64_t dy = 0; dy < k; ++dy)
        for (int64_t dx = 0; dx < k; ++dx)
          v += static_cast<double>(
              frames[static_cast<size_t>((f * h + y0 + y * k + dy) * w + x0 + x * k + dx)]);
      if (clip) v = std::max(v, *clip);
      if (scale == "log1p") v = std::log1p(v);
      if (scale == "sqrt") v = std::sqrt(v);
      out.push_back(v);
    }
  return out;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::abs(want[i])))
        << what << " element " << i;
}

struct ScanFile {
  std::string path;
  std::vector<uint16_t> frames;  // [6, 16, 16] (a 2 x 3 scan)
  std::vector<double> positions;
  std::vector<float> amplitude, phase;  // [6, 8, 8]
};

ScanFile WriteScanFile(const std::string& path) {
  ScanFile s;
  s.path = path;
  s.frames = MakeFrames<uint16_t>(6, 16, 16);
  for (int i = 0; i < 12; ++i) s.positions.push_back(0.25 * i - 1.0);
  s.amplitude = MakeFrames<float>(6, 8, 8);
  s.phase = MakeFrames<float>(6, 8, 8);
  for (auto& v : s.phase) v = -v / 100.0f;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  WriteH5Dataset(f, "/entry/data/data", H5T_STD_U16BE, H5T_NATIVE_UINT16, {2, 3, 16, 16},
                 s.frames.data(), {{1, 3, 16, 16}, 5, true});
  WriteH5Dataset(f, "/entry/positions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {6, 2},
                 s.positions.data());
  WriteH5Dataset(f, "/entry/amplitude", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3, 8, 8},
                 s.amplitude.data());
  WriteH5Dataset(f, "/entry/phase", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {6, 8, 8}, s.phase.data());
  WriteStringAttr(f, "/entry", "NX_class", "NXentry");
  WriteStringAttr(f, "/entry/data", "NX_class", "NXdata");
  H5Fclose(f);
  return s;
}

TEST(IngestHdf5Cli, ScanWithPositionsTargetsAndLog1pMatchesDirectComputation) {
  TempDir dir;
  ScanFile s = WriteScanFile(dir.Sub("scan.h5"));
  const std::string store_dir = dir.Sub("store");
  auto r = Tilestage("ingest hdf5 --json --out " + store_dir +
                     " --positions /entry/positions --target /entry/amplitude,/entry/phase"
                     " --crop 8,8 --log1p " +
                     s.path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(store_dir);
  ASSERT_TRUE(store);
  ASSERT_EQ(store->size(), 6u);
  EXPECT_EQ(store->manifest().kind, "hdf5");
  double sum = 0;
  for (int64_t i = 0; i < 6; ++i) {
    auto sample = store->Read(static_cast<uint64_t>(i));
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    const Array* x = sample->Find("x");
    const Array* y = sample->Find("y");
    ASSERT_TRUE(x && y);
    EXPECT_EQ(x->shape, (std::vector<int64_t>{1, 8, 8}));
    EXPECT_EQ(x->dtype, DType::kF32);
    auto want = DirectTransform(s.frames, i, 16, 16, 8, 8, 1, std::nullopt, "log1p");
    ExpectNear(Values(*x), want, "x of frame " + std::to_string(i));
    for (double v : want) sum += v;
    EXPECT_EQ(y->shape, (std::vector<int64_t>{2, 8, 8}));
    auto yv = Values(*y);
    for (int64_t k = 0; k < 64; ++k) {
      ASSERT_EQ(yv[static_cast<size_t>(k)], s.amplitude[static_cast<size_t>(i * 64 + k)]);
      ASSERT_EQ(yv[static_cast<size_t>(64 + k)], s.phase[static_cast<size_t>(i * 64 + k)]);
    }
    EXPECT_EQ(sample->meta["frame"], i);
    EXPECT_EQ(sample->meta["scan_index"], (std::vector<int64_t>{i / 3, i % 3}));
    EXPECT_EQ(sample->meta["position"],
              (std::vector<double>{s.positions[static_cast<size_t>(2 * i)],
                                   s.positions[static_cast<size_t>(2 * i + 1)]}));
  }
  const FieldSchema* x = store->manifest().FindField("x");
  ASSERT_TRUE(x);
  ASSERT_EQ(x->stats.size(), 1u);
  EXPECT_NEAR(x->stats[0].mean, sum / (6 * 64), 1e-6);  // statistics after the transform
  const FieldSchema* y = store->manifest().FindField("y");
  ASSERT_TRUE(y);
  EXPECT_EQ(y->channel_names, (std::vector<std::string>{"amplitude", "phase"}));
}

TEST(IngestHdf5Cli, BitshuffleEigenFrameCropBinSqrt) {
  TempDir dir;
  const std::string file = SharedData("hdf5/bitshuffle.h5");
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") +
                     " --crop 512,512 --bin 2 --clip-min 0 --sqrt " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  ASSERT_EQ(store->size(), 1u);
  auto sample = store->Read(0);
  ASSERT_TRUE(sample.ok());
  auto truth = H5ReadAll<uint32_t>(file, "/entry/data/data", H5T_NATIVE_UINT32);
  ExpectNear(Values(*sample->Find("x")),
             DirectTransform(truth, 0, 2167, 2070, 512, 512, 2, 0.0, "sqrt"), "eiger frame");
}

TEST(IngestHdf5Cli, BloscStackTiledPatchesEqualHdf5Read) {
  TempDir dir;
  const std::string file = SharedData("hdf5/blosc.h5");
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") + " --tile 50,50 " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  ASSERT_EQ(store->size(), 400u);  // 100 frames x 4 patches
  auto truth = H5ReadAll<float>(file, "/dset", H5T_NATIVE_FLOAT);
  for (uint64_t rec : {0ull, 5ull, 399ull}) {
    auto sample = store->Read(rec);
    ASSERT_TRUE(sample.ok());
    const int64_t frame = sample->meta["frame"];
    const auto window = sample->meta["window"].get<std::vector<int64_t>>();
    auto x = Values(*sample->Find("x"));
    for (int64_t yy = 0; yy < 50; ++yy)
      for (int64_t xx = 0; xx < 50; ++xx)
        ASSERT_EQ(
            x[static_cast<size_t>(yy * 50 + xx)],
            truth[static_cast<size_t>((frame * 100 + window[0] + yy) * 100 + window[1] + xx)]);
  }
}

// Two stores of the same input, record by record: identical x bytes and frame index, x equal to
// `expected(record)` computed directly, and identical statistics.
template <typename Expected>
void ExpectSameRecordsAndStats(Store& a, Store& b, const Expected& expected) {
  ASSERT_EQ(a.size(), b.size());
  for (uint64_t i = 0; i < a.size(); ++i) {
    auto sa = a.Read(i);
    auto sb = b.Read(i);
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_TRUE(sa->Find("x")->data == sb->Find("x")->data) << "record " << i;
    EXPECT_EQ(sa->meta["frame"], sb->meta["frame"]);
    ExpectNear(Values(*sa->Find("x")), expected(static_cast<int64_t>(i)),
               "record " + std::to_string(i));
  }
  EXPECT_EQ(a.manifest().fields[0].stats[0].ToJson(), b.manifest().fields[0].stats[0].ToJson());
}

TEST(IngestHdf5Cli, CxiFileTwoRanksStoreTheSameContentAsOne) {
  TempDir dir;
  const std::string file = dir.Sub("cxi.h5");
  auto frames = MakeFrames<float>(10, 12, 12);
  {
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    WriteH5Dataset(f, "/entry_1/data_1/data", H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, {10, 12, 12},
                   frames.data(), {{3, 12, 12}, 1, false});
    H5Fclose(f);
  }
  const std::string common = " --crop 8,8 --log1p --clip-min 1 " + file;
  auto one = Tilestage("ingest hdf5 --out " + dir.Sub("one") + common);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = RunCommand(std::string(TILESTAGE_MPIRUN_CMD) + " -np 2 " + CliPath() +
                        " ingest hdf5 --out " + dir.Sub("two") + common);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto a = OpenStore(dir.Sub("one"));
  auto b = OpenStore(dir.Sub("two"));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->size(), 10u);
  ASSERT_EQ(b->size(), 10u);
  EXPECT_GE(b->num_shards(), 2u);  // each rank wrote its own shards
  ExpectSameRecordsAndStats(
      *a, *b, [&](int64_t i) { return DirectTransform(frames, i, 12, 12, 8, 8, 1, 1.0, "log1p"); });
}

TEST(IngestHdf5Cli, DirectChunkPathStoresTheSameBytesAsTheH5DreadPath) {
  TempDir dir;
  const std::string file = dir.Sub("tiles.h5");
  auto frames = MakeFrames<uint16_t>(9, 20, 18);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<uint16_t>(frames[i] * 577);
  {
    // Chunks cut frames into tiles with partial edge chunks on every axis.
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    WriteH5Dataset(f, "/entry/data/data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {9, 20, 18},
                   frames.data(), {{2, 7, 8}, 4, true});
    H5Fclose(f);
  }
  const std::string common = " --crop 12,10 --log1p --codec none " + file;
  auto direct = Tilestage("ingest hdf5 --out " + dir.Sub("direct") + common);
  ASSERT_EQ(direct.exit_code, 0) << direct.output;
  auto h5dread = RunCommand("TILESTAGE_HDF5_NO_DIRECT_CHUNKS=1 " + CliPath() +
                            " ingest hdf5 --out " + dir.Sub("h5dread") + common);
  ASSERT_EQ(h5dread.exit_code, 0) << h5dread.output;
  auto a = OpenStore(dir.Sub("direct"));
  auto b = OpenStore(dir.Sub("h5dread"));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->size(), 9u);
  ASSERT_EQ(b->size(), 9u);
  ExpectSameRecordsAndStats(*a, *b, [&](int64_t i) {
    return DirectTransform(frames, i, 20, 18, 12, 10, 1, std::nullopt, "log1p");
  });
}

TEST(IngestHdf5Cli, CorruptCompressedChunkFailsNamingTheChunkAndWritesNoManifest) {
  TempDir dir;
  const std::string file = dir.Sub("corrupt.h5");
  auto frames = MakeFrames<uint16_t>(8, 10, 10);
  {
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    WriteH5Dataset(f, "/entry/data/data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {8, 10, 10},
                   frames.data(), {{2, 10, 10}, 4, true});
    hid_t ds = H5Dopen2(f, "/entry/data/data", H5P_DEFAULT);
    std::vector<uint8_t> junk(64, 0x5a);
    hsize_t offset[3] = {4, 0, 0};
    ASSERT_GE(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, offset, junk.size(), junk.data()), 0);
    H5Dclose(ds);
    H5Fclose(f);
  }
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") + " --log1p " + file);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(file), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dataset /entry/data/data: chunk at [4,0,0]"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestHdf5Cli, MissingPluginFailsNamingFilterAndPackageAndWritesNoManifest) {
  TempDir dir, empty;
  auto r = RunCommand("HDF5_PLUGIN_PATH=" + empty.path() + " " + CliPath() + " ingest hdf5 --out " +
                      dir.Sub("s") + " " + SharedData("hdf5/bitshuffle.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("filter 32008"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Debian package bitshuffle"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestHdf5Cli, PositionsOfOtherLengthFailWithoutManifest) {
  TempDir dir;
  ScanFile s = WriteScanFile(dir.Sub("scan.h5"));
  {
    hid_t f = H5Fopen(s.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    std::vector<double> short_positions(10, 0.0);
    WriteH5Dataset(f, "/entry/short_positions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {5, 2},
                   short_positions.data());
    H5Fclose(f);
  }
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") + " --positions /entry/short_positions " +
                     s.path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/entry/short_positions: 5 rows"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("6 frames"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestHdf5Cli, MissingDatasetListsDatasets) {
  TempDir dir;
  ScanFile s = WriteScanFile(dir.Sub("scan.h5"));
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") + " --dataset /entry/nope " + s.path);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("/entry/nope does not exist"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/entry/data/data u16[2,3,16,16]"), std::string::npos) << r.output;
}

TEST(IngestHdf5Cli, VirtualDatasetWithMissingSourceFailsWithoutManifest) {
  TempDir dir;
  {
    hsize_t dims[3] = {4, 6, 6};
    hid_t vspace = H5Screate_simple(3, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_virtual(dcpl, vspace, "gone.h5", "/frames", vspace);
    hid_t f = H5Fcreate(dir.Sub("vds.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(H5Dcreate2(f, "/data", H5T_STD_U16LE, vspace, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    H5Fclose(f);
    H5Pclose(dcpl);
    H5Sclose(vspace);
  }
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") + " --dataset /data " + dir.Sub("vds.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("source gone.h5:/frames"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestHdf5Cli, TruncatedFileFailsWithoutManifest) {
  TempDir dir;
  ScanFile s = WriteScanFile(dir.Sub("scan.h5"));
  TruncateFile(s.path, FileSize(s.path) - 1000);
  auto r = Tilestage("ingest hdf5 --out " + dir.Sub("s") + " " + s.path);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(s.path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestTiffStackCli, TiledU16StackWithCropMatchesLibtiff) {
  TempDir dir;
  const std::string file = dir.Sub("stack.tif");
  std::vector<TiffPage> pages;
  for (int p = 0; p < 4; ++p)
    pages.push_back(MakeTiffPage<uint16_t>(p, 40, 36, SAMPLEFORMAT_UINT, COMPRESSION_LZW, 16));
  WriteTiff(file, pages);
  auto r = Tilestage("ingest tiff-stack --out " + dir.Sub("s") + " --crop 20,30 --sqrt " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  ASSERT_EQ(store->size(), 4u);
  EXPECT_EQ(store->manifest().kind, "tiff-stack");
  for (int p = 0; p < 4; ++p) {
    auto raw = LibtiffReadPage(file, p);
    std::vector<uint16_t> page(raw.size() / 2);
    std::memcpy(page.data(), raw.data(), raw.size());
    auto sample = store->Read(static_cast<uint64_t>(p));
    ASSERT_TRUE(sample.ok());
    EXPECT_EQ(sample->meta["page"], p);
    ExpectNear(Values(*sample->Find("x")),
               DirectTransform(page, 0, 40, 36, 20, 30, 1, std::nullopt, "sqrt"),
               "page " + std::to_string(p));
  }
}

TEST(IngestTiffStackCli, CorruptPageFailsNamingPageAndWritesNoManifest) {
  TempDir dir;
  const std::string file = dir.Sub("stack.tif");
  std::vector<TiffPage> pages;
  for (int p = 0; p < 3; ++p)
    pages.push_back(
        MakeTiffPage<uint16_t>(p, 24, 24, SAMPLEFORMAT_UINT, COMPRESSION_ADOBE_DEFLATE, 0));
  WriteTiff(file, pages);
  {
    TIFF* tif = TIFFOpen(file.c_str(), "r");
    TIFFSetDirectory(tif, 2);
    const uint64_t offset = TIFFGetStrileOffset(tif, 0);
    TIFFClose(tif);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write("\xff\xff\xff\xff\xff\xff\xff\xff", 8);
  }
  auto r = Tilestage("ingest tiff-stack --out " + dir.Sub("s") + " " + file);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(file + ": page 2: strip 0"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestTiffStackCli, PagesOfDifferentSizesFail) {
  TempDir dir;
  const std::string file = dir.Sub("mixed.tif");
  WriteTiff(file, {MakeTiffPage<float>(0, 8, 8, SAMPLEFORMAT_IEEEFP, COMPRESSION_NONE, 0),
                   MakeTiffPage<float>(1, 8, 9, SAMPLEFORMAT_IEEEFP, COMPRESSION_NONE, 0)});
  auto r = Tilestage("ingest tiff-stack --out " + dir.Sub("s") + " " + file);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("page 1 is 9x8"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

// An NXmx-layout file as an Eiger writes it: u32 frames [4, 20, 24] with two gap rows
// (0xFFFFFFFF), a dead pixel with a wild value, and /entry/instrument/detector/pixel_mask flagging
// them (bit 0: gap, bit 3: dead), the frames linked into the NXdata group.
struct NxmxFile {
  std::string path;
  std::vector<uint32_t> frames;
  std::vector<uint32_t> mask;
};

NxmxFile WriteNxmxFile(const std::string& path) {
  NxmxFile n;
  n.path = path;
  n.frames = MakeFrames<uint32_t>(4, 20, 24);
  n.mask.assign(20 * 24, 0);
  for (int x = 0; x < 24; ++x) n.mask[9 * 24 + x] = n.mask[10 * 24 + x] = 1;
  n.mask[3 * 24 + 5] = 8;
  for (int f = 0; f < 4; ++f)
    for (int i = 0; i < 20 * 24; ++i)
      if (n.mask[i] == 1)
        n.frames[f * 480 + i] = 0xFFFFFFFFu;
      else if (n.mask[i] == 8)
        n.frames[f * 480 + i] = 3000000000u;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  WriteH5Dataset(f, "/entry/instrument/detector/data", H5T_STD_U32LE, H5T_NATIVE_UINT32,
                 {4, 20, 24}, n.frames.data(), {{1, 20, 24}, 4, true});
  WriteH5Dataset(f, "/entry/instrument/detector/pixel_mask", H5T_STD_U32LE, H5T_NATIVE_UINT32,
                 {20, 24}, n.mask.data());
  MakeGroup(f, "/entry/data");
  H5Lcreate_hard(f, "/entry/instrument/detector/data", f, "/entry/data/data", H5P_DEFAULT,
                 H5P_DEFAULT);
  WriteStringAttr(f, "/entry", "NX_class", "NXentry");
  WriteStringAttr(f, "/entry/instrument", "NX_class", "NXinstrument");
  WriteStringAttr(f, "/entry/instrument/detector", "NX_class", "NXdetector");
  WriteStringAttr(f, "/entry/data", "NX_class", "NXdata");
  WriteStringAttr(f, "/entry/data", "signal", "data");
  H5Fclose(f);
  return n;
}

TEST(IngestHdf5Cli, NxmxPixelMaskMakesGapsInvalidAndStatisticsEqualTheMaskedComputation) {
  TempDir dir;
  NxmxFile n = WriteNxmxFile(dir.Sub("nxmx.h5"));
  // The truth: HDF5's own read of frames and mask, the mask applied here.
  const auto frames = H5ReadAll<uint32_t>(n.path, "/entry/data/data", H5T_NATIVE_UINT32);
  const auto mask =
      H5ReadAll<uint32_t>(n.path, "/entry/instrument/detector/pixel_mask", H5T_NATIVE_UINT32);
  double sum = 0, sumsq = 0;
  uint64_t count = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (mask[i % mask.size()] != 0) continue;
    ++count;
    sum += frames[i];
    sumsq += static_cast<double>(frames[i]) * frames[i];
  }
  const double mean = sum / count, var = sumsq / count - mean * mean;
  ASSERT_EQ(count, 4u * (480 - 48 - 1));

  auto r = Tilestage("ingest hdf5 --no-progress --out " + dir.Sub("s") + " " + n.path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  const auto& stats = store->manifest().FindField("x")->stats[0];
  EXPECT_EQ(stats.count, count);
  EXPECT_EQ(stats.total, frames.size());
  EXPECT_NEAR(stats.mean, mean, 1e-9 * mean);
  EXPECT_NEAR(stats.variance(), var, 1e-6 * var);
  EXPECT_EQ(stats.max, 96);  // neither the gap value nor the dead pixel's
  EXPECT_EQ(store->manifest().attrs.at("ingest").at("nodata").at("x"),
            nlohmann::json::array({4294967295.0}));
  EXPECT_EQ(store->manifest().attrs.at("hdf5").at("files")[0].at("pixel_mask"),
            "/entry/instrument/detector/pixel_mask");
  for (uint64_t i = 0; i < store->size(); ++i) {
    auto s = store->Read(i);
    const uint32_t* x = reinterpret_cast<const uint32_t*>(s->Find("x")->data.data());
    for (size_t k = 0; k < 480; ++k)
      ASSERT_EQ(x[k], mask[k] ? 0xFFFFFFFFu : frames[i * 480 + k]) << "frame " << i << " " << k;
    EXPECT_DOUBLE_EQ(s->meta.at("valid_fraction").get<double>(), (480.0 - 49) / 480);
  }

  // --mask none: the gaps count (what the issue saw), so the option really switches it off.
  r = Tilestage("ingest hdf5 --no-progress --mask none --out " + dir.Sub("none") + " " + n.path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto unmasked = OpenStore(dir.Sub("none"));
  ASSERT_TRUE(unmasked);
  EXPECT_EQ(unmasked->manifest().FindField("x")->stats[0].count, frames.size());
}

TEST(IngestHdf5Cli, MaskedPixelsAreNaNAfterLog1pAndABinWithAGapPixelIsInvalid) {
  TempDir dir;
  NxmxFile n = WriteNxmxFile(dir.Sub("nxmx.h5"));
  auto r = Tilestage(
      "ingest hdf5 --no-progress --bin 2 --log1p --mask "
      "/entry/instrument/detector/pixel_mask --out " +
      dir.Sub("s") + " " + n.path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->manifest().attrs.at("ingest").at("nodata").at("x")[0], nullptr);
  for (uint64_t i = 0; i < store->size(); ++i) {
    auto s = store->Read(i);
    const Array* x = s->Find("x");
    ASSERT_EQ(x->shape, (std::vector<int64_t>{1, 10, 12}));
    const auto direct = DirectTransform(n.frames, static_cast<int64_t>(i), 20, 24, 20, 24, 2,
                                        std::nullopt, "log1p");
    for (int64_t y = 0; y < 10; ++y)
      for (int64_t c = 0; c < 12; ++c) {
        bool masked = false;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) masked |= n.mask[(2 * y + dy) * 24 + 2 * c + dx] != 0;
        const float v = x->As<float>()[y * 12 + c];
        if (masked)
          ASSERT_TRUE(std::isnan(v)) << "frame " << i << " (" << y << "," << c << ")";
        else
          ASSERT_NEAR(v, direct[y * 12 + c], 1e-5) << "frame " << i << " (" << y << "," << c << ")";
      }
  }
}

TEST(IngestHdf5Cli, CxiTranslationIsFoundAsPositionsAndMaskSharedAsTheMask) {
  TempDir dir;
  const std::string file = dir.Sub("cxi.h5");
  auto frames = MakeFrames<float>(5, 8, 8);
  std::vector<double> translation;
  for (int i = 0; i < 15; ++i) translation.push_back(1e-6 * i - 3e-6);
  std::vector<int32_t> mask(64, 0);
  mask[0] = -1;  // any nonzero value flags a pixel, negative ones too
  mask[63] = 2;
  {
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    WriteH5Dataset(f, "/entry_1/data_1/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {5, 8, 8},
                   frames.data());
    WriteH5Dataset(f, "/entry_1/sample_1/geometry_1/translation", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                   {5, 3}, translation.data());
    WriteH5Dataset(f, "/entry_1/instrument_1/detector_1/mask_shared", H5T_STD_I32LE,
                   H5T_NATIVE_INT32, {8, 8}, mask.data());
    H5Fclose(f);
  }
  auto r = Tilestage("ingest hdf5 --no-progress --out " + dir.Sub("s") + " " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  const auto truth =
      H5ReadAll<double>(file, "/entry_1/sample_1/geometry_1/translation", H5T_NATIVE_DOUBLE);
  for (uint64_t i = 0; i < store->size(); ++i) {
    auto s = store->Read(i);
    EXPECT_EQ(s->meta.at("position").get<std::vector<double>>(),
              std::vector<double>(truth.begin() + 3 * i, truth.begin() + 3 * i + 3));
    const Array* x = s->Find("x");
    EXPECT_TRUE(std::isnan(x->As<float>()[0]));
    EXPECT_TRUE(std::isnan(x->As<float>()[63]));
    EXPECT_EQ(x->As<float>()[1], frames[i * 64 + 1]);
  }
  const auto& files = store->manifest().attrs.at("hdf5").at("files");
  EXPECT_EQ(files[0].at("positions"), "/entry_1/sample_1/geometry_1/translation");
  EXPECT_EQ(files[0].at("pixel_mask"), "/entry_1/instrument_1/detector_1/mask_shared");
  EXPECT_EQ(store->manifest().FindField("x")->stats[0].count, 5u * 62);
  r = Tilestage("ingest hdf5 --no-progress --positions none --out " + dir.Sub("none") + " " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto without = OpenStore(dir.Sub("none"));
  ASSERT_TRUE(without);
  EXPECT_FALSE(without->Read(0)->meta.contains("position"));
}

// A CXI raster scan [2,3,12,10] of u16 frames with one mask per frame
// (/entry_1/instrument_1/detector_1/mask [2,3,12,10], a different dead column and hot pixel in
// every frame): each frame's own mask applies to it, as HDF5's reads of frames and masks say.
// Without --bin the store holds the dtype's nodata exactly there and the statistics cover the
// rest; with --bin 2 a bin is invalid exactly when its frame's mask flags one of its pixels.
TEST(IngestHdf5Cli, PerFrameCxiMaskIsAppliedToItsOwnFrame) {
  TempDir dir;
  const std::string file = dir.Sub("cxi_masks.h5");
  const char* kMask = "/entry_1/instrument_1/detector_1/mask";
  {
    std::vector<uint16_t> frames(6 * 120);
    for (size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<uint16_t>(i * 7919 % 5000);
    std::vector<uint32_t> mask(6 * 120, 0);
    for (int k = 0; k < 6; ++k) {
      for (int r = 0; r < 12; ++r) mask[k * 120 + r * 10 + k] = 8;
      mask[k * 120 + (k + 2) * 10 + 9 - k] = 0x80000000u;
    }
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    WriteH5Dataset(f, "/entry_1/data_1/data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {2, 3, 12, 10},
                   frames.data());
    WriteH5Dataset(f, kMask, H5T_STD_U32LE, H5T_NATIVE_UINT32, {2, 3, 12, 10}, mask.data());
    H5Fclose(f);
  }
  const auto frames = H5ReadAll<uint16_t>(file, "/entry_1/data_1/data", H5T_NATIVE_UINT16);
  const auto mask = H5ReadAll<uint32_t>(file, kMask, H5T_NATIVE_UINT32);
  double sum = 0;
  uint64_t count = 0;
  for (size_t i = 0; i < frames.size(); ++i)
    if (mask[i] == 0) sum += frames[i], ++count;
  ASSERT_EQ(count, 6u * (120 - 12 - 1));

  auto r = Tilestage("ingest hdf5 --no-progress --out " + dir.Sub("s") + " " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto store = OpenStore(dir.Sub("s"));
  ASSERT_TRUE(store);
  const auto& files = store->manifest().attrs.at("hdf5").at("files");
  EXPECT_EQ(files[0].at("pixel_mask"), kMask);
  EXPECT_EQ(files[0].at("pixel_mask_per_frame"), true);
  EXPECT_EQ(store->manifest().attrs.at("ingest").at("nodata").at("x"),
            nlohmann::json::array({65535.0}));
  ASSERT_EQ(store->size(), 6u);
  for (uint64_t i = 0; i < 6; ++i) {
    auto s = store->Read(i);
    ASSERT_TRUE(s.ok());
    const auto x = s->Find("x")->As<uint16_t>();
    for (size_t k = 0; k < 120; ++k)
      ASSERT_EQ(x[k], mask[i * 120 + k] ? 65535 : frames[i * 120 + k]) << "frame " << i << " " << k;
  }
  const auto& stats = store->manifest().FindField("x")->stats[0];
  EXPECT_EQ(stats.count, count);
  EXPECT_NEAR(stats.mean, sum / count, 1e-9 * sum / count);

  r = Tilestage("ingest hdf5 --no-progress --bin 2 --out " + dir.Sub("b") + " " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto binned = OpenStore(dir.Sub("b"));
  ASSERT_TRUE(binned);
  const auto& nodata = binned->manifest().attrs.at("ingest").at("nodata").at("x")[0];
  for (uint64_t i = 0; i < 6; ++i) {
    auto s = binned->Read(i);
    ASSERT_TRUE(s.ok());
    const Array* x = s->Find("x");
    ASSERT_EQ(x->shape, (std::vector<int64_t>{1, 6, 5}));
    for (int64_t y = 0; y < 6; ++y)
      for (int64_t c = 0; c < 5; ++c) {
        bool masked = false;
        double want = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) {
            const size_t at = i * 120 + (2 * y + dy) * 10 + 2 * c + dx;
            masked |= mask[at] != 0;
            want += frames[at];
          }
        const double v = ElementAsDouble(*x, y * 5 + c);
        if (!masked)
          ASSERT_EQ(v, want) << "frame " << i << " (" << y << "," << c << ")";
        else if (nodata.is_null())
          ASSERT_TRUE(std::isnan(v)) << "frame " << i << " (" << y << "," << c << ")";
        else
          ASSERT_EQ(v, nodata.get<double>()) << "frame " << i << " (" << y << "," << c << ")";
      }
  }
}

TEST(IngestHdf5Cli, MaskOfAnotherShapeFailsNamingPathAndBothShapes) {
  TempDir dir;
  NxmxFile n = WriteNxmxFile(dir.Sub("nxmx.h5"));
  {
    hid_t f = H5Fopen(n.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    std::vector<uint8_t> small(10 * 12, 0);
    WriteH5Dataset(f, "/entry/small_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, {10, 12}, small.data());
    H5Fclose(f);
  }
  auto r = Tilestage("ingest hdf5 --no-progress --mask /entry/small_mask --out " + dir.Sub("s") +
                     " " + n.path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(n.path + ": pixel mask /entry/small_mask: shape [10,12] is neither "
                                   "the frame shape [20,24]"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir.Sub("s/manifest.json")));
}

TEST(IngestHdf5Cli, DirectoryInputSaysItIsADirectory) {
  TempDir dir;
  fs::create_directories(dir.Sub("frames.h5"));
  auto r =
      Tilestage("ingest hdf5 --no-progress --out " + dir.Sub("s") + " " + dir.Sub("frames.h5"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(dir.Sub("frames.h5") + ": is a directory"), std::string::npos)
      << r.output;
  EXPECT_LT(r.output.size(), 300u) << r.output;  // no library error stack
}

}  // namespace
}  // namespace tilestage::testing
