// Hdf5FrameReader against HDF5's own reads and against values the tests wrote.
#include <gtest/gtest.h>

#include <filesystem>

#include "ingest/hdf5_frame_reader.h"
#include "ingest/hdf5_util.h"
#include "tests/common/test_util.h"
#include "tests/ingest_hdf5/fixtures.h"

namespace tilestage::ingest {
namespace {

using ::tilestage::testing::H5ReadAll;
using ::tilestage::testing::MakeFrames;
using ::tilestage::testing::TempDir;
using ::tilestage::testing::WriteH5Dataset;
using ::tilestage::testing::WriteStringAttr;

template <typename T>
std::vector<T> ToVector(const Array& a) {
  auto s = a.As<T>();
  return std::vector<T>(s.begin(), s.end());
}

hid_t CreateFile(const std::string& path) {
  return H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
}

TEST(Hdf5FrameReader, BitshuffleEigenFrameMatchesHdf5Read) {
  const std::string file = testing::SharedData("hdf5/bitshuffle.h5");
  auto reader = Hdf5FrameReader::Open(file, "");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const auto& info = (*reader)->info();
  EXPECT_EQ(info.dataset, "/entry/data/data");  // found through NXentry/NXdata classes
  EXPECT_EQ(info.dtype, DType::kU32);
  EXPECT_EQ(info.num_frames, 1);
  EXPECT_EQ(info.height, 2167);
  EXPECT_EQ(info.width, 2070);
  ASSERT_EQ(info.filters, std::vector<std::string>{"bitshuffle"});
  auto frames = (*reader)->ReadFrames(0, 1);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  std::vector<uint32_t> truth;
  {
    Hdf5Lock lock;
    truth = H5ReadAll<uint32_t>(file, "/entry/data/data", H5T_NATIVE_UINT32);
  }
  auto got = ToVector<uint32_t>(*frames);
  ASSERT_EQ(got.size(), truth.size());
  EXPECT_TRUE(got == truth);
  uint64_t sum = 0;
  for (uint32_t v : got) sum += v;
  EXPECT_GT(sum, 0u);  // a real frame, not fill values
}

TEST(Hdf5FrameReader, BloscStackMatchesHdf5Read) {
  const std::string file = testing::SharedData("hdf5/blosc.h5");
  auto reader = Hdf5FrameReader::Open(file, "");  // the only image-like dataset
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const auto& info = (*reader)->info();
  EXPECT_EQ(info.dataset, "/dset");
  EXPECT_EQ(info.dtype, DType::kF32);
  EXPECT_EQ(info.num_frames, 100);
  std::vector<float> truth;
  {
    Hdf5Lock lock;
    truth = H5ReadAll<float>(file, "/dset", H5T_NATIVE_FLOAT);
  }
  std::vector<float> got;
  const int64_t batch = (*reader)->BatchFrames(16 << 10);
  for (int64_t first = 0; first < info.num_frames; first += batch) {
    auto frames = (*reader)->ReadFrames(first, std::min(batch, info.num_frames - first));
    ASSERT_TRUE(frames.ok()) << frames.status().ToString();
    auto v = ToVector<float>(*frames);
    got.insert(got.end(), v.begin(), v.end());
  }
  EXPECT_TRUE(got == truth);
}

class Hdf5Fixture : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.Sub(name); }
  TempDir dir_;
};

TEST_F(Hdf5Fixture, NexusDefaultAndSignalAttributesChooseTheDataset) {
  const std::string file = Path("nexus.h5");
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    auto decoy = MakeFrames<uint16_t>(2, 4, 5);
    auto frames = MakeFrames<uint16_t>(3, 6, 7);
    WriteH5Dataset(f, "/entry/data/data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {2, 4, 5},
                   decoy.data());
    WriteH5Dataset(f, "/entry/results/counts", H5T_STD_U16LE, H5T_NATIVE_UINT16, {3, 6, 7},
                   frames.data());
    WriteStringAttr(f, "/", "default", "entry");
    WriteStringAttr(f, "/entry", "NX_class", "NXentry");
    WriteStringAttr(f, "/entry", "default", "results");
    WriteStringAttr(f, "/entry/data", "NX_class", "NXdata");
    WriteStringAttr(f, "/entry/results", "NX_class", "NXdata");
    WriteStringAttr(f, "/entry/results", "signal", "counts");
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().dataset, "/entry/results/counts");
  auto frames = (*reader)->ReadFrames(0, 3);
  ASSERT_TRUE(frames.ok());
  EXPECT_EQ(ToVector<uint16_t>(*frames), MakeFrames<uint16_t>(3, 6, 7));
}

TEST_F(Hdf5Fixture, OldNexusSignalAttributeOnTheDataset) {
  const std::string file = Path("old_nexus.h5");
  auto axis = MakeFrames<double>(1, 1, 5);
  auto frames = MakeFrames<uint32_t>(2, 5, 5);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/scan/d/axis", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {5}, axis.data());
    WriteH5Dataset(f, "/scan/d/counts", H5T_STD_U32LE, H5T_NATIVE_UINT32, {2, 5, 5}, frames.data());
    WriteH5Dataset(f, "/scan/d/other", H5T_STD_U32LE, H5T_NATIVE_UINT32, {2, 5, 5}, frames.data());
    WriteStringAttr(f, "/scan", "NX_class", "NXentry");
    WriteStringAttr(f, "/scan/d", "NX_class", "NXdata");
    const int32_t one = 1;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate_by_name(f, "/scan/d/counts", "signal", H5T_STD_I32LE, space, H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT32, &one);
    H5Aclose(attr);
    H5Sclose(space);
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().dataset, "/scan/d/counts");
}

TEST_F(Hdf5Fixture, NoFrameDatasetFoundListsCandidates) {
  const std::string file = Path("ambiguous.h5");
  auto frames = MakeFrames<uint16_t>(2, 4, 4);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/a", H5T_STD_U16LE, H5T_NATIVE_UINT16, {2, 4, 4}, frames.data());
    WriteH5Dataset(f, "/b", H5T_STD_U16LE, H5T_NATIVE_UINT16, {2, 4, 4}, frames.data());
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_NE(reader.status().message().find("pass --dataset, one of: /a u16[2,4,4], /b u16[2,4,4]"),
            std::string::npos)
      << reader.status().message();
}

TEST_F(Hdf5Fixture, CxiLayoutThroughSoftLink) {
  const std::string file = Path("cxi.h5");
  auto frames = MakeFrames<float>(4, 5, 6);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/entry_1/instrument_1/detector_1/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                   {4, 5, 6}, frames.data());
    testing::MakeGroup(f, "/entry_1/data_1");
    // CXI files link data_1/data to the detector's data.
    ASSERT_GE(H5Lcreate_soft("/entry_1/instrument_1/detector_1/data", f, "/entry_1/data_1/data",
                             H5P_DEFAULT, H5P_DEFAULT),
              0);
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().dataset, "/entry_1/data_1/data");
  auto got = (*reader)->ReadFrames(1, 3);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(ToVector<float>(*got), std::vector<float>(frames.begin() + 30, frames.end()));
}

TEST_F(Hdf5Fixture, ExternalLinkIsFollowed) {
  const std::string data_file = Path("frames.h5");
  const std::string master = Path("master.h5");
  auto frames = MakeFrames<int32_t>(2, 3, 4);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(data_file);
    WriteH5Dataset(f, "/frames", H5T_STD_I32LE, H5T_NATIVE_INT32, {2, 3, 4}, frames.data());
    H5Fclose(f);
    hid_t m = CreateFile(master);
    testing::MakeGroup(m, "/entry/data");
    ASSERT_GE(
        H5Lcreate_external("frames.h5", "/frames", m, "/entry/data/data", H5P_DEFAULT, H5P_DEFAULT),
        0);
    H5Fclose(m);
  }
  auto reader = Hdf5FrameReader::Open(master, "/entry/data/data");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto got = (*reader)->ReadFrames(0, 2);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(ToVector<int32_t>(*got), frames);

  std::filesystem::remove(data_file);
  auto missing = Hdf5FrameReader::Open(master, "/entry/data/data");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("external link to frames.h5:/frames"),
            std::string::npos)
      << missing.status().message();
}

TEST_F(Hdf5Fixture, RasterScanFlattensWithScanIndexAndPositions) {
  const std::string file = Path("scan.h5");
  const int64_t ny = 3, nx = 4, h = 8, w = 10;
  auto frames = MakeFrames<int32_t>(ny * nx, h, w);
  std::vector<double> positions(static_cast<size_t>(ny * nx * 2));
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = 0.5 * static_cast<double>(i);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    testing::H5Options opt{{1, 2, 8, 10}, 4, false};
    WriteH5Dataset(f, "/entry/data/data", H5T_STD_I32LE, H5T_NATIVE_INT32, {3, 4, 8, 10},
                   frames.data(), opt);
    WriteH5Dataset(f, "/entry/positions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {3, 4, 2},
                   positions.data());
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "/entry/data/data");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const auto& info = (*reader)->info();
  EXPECT_EQ(info.num_frames, 12);
  EXPECT_EQ(info.scan_shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(info.frames_per_chunk, 2);
  EXPECT_EQ((*reader)->ScanIndex(5), (std::vector<int64_t>{1, 1}));
  // Frames 2..10 cross two scan-line boundaries.
  auto got = (*reader)->ReadFrames(2, 9);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->shape, (std::vector<int64_t>{9, 8, 10}));
  EXPECT_EQ(ToVector<int32_t>(*got),
            std::vector<int32_t>(frames.begin() + 2 * h * w, frames.begin() + 11 * h * w));
  auto aux = (*reader)->OpenAux("/entry/positions", 1);
  ASSERT_TRUE(aux.ok()) << aux.status().ToString();
  EXPECT_EQ(aux->item_shape, (std::vector<int64_t>{2}));
  auto pos = (*reader)->ReadAux(*aux, 3, 6, DType::kF64);
  ASSERT_TRUE(pos.ok()) << pos.status().ToString();
  EXPECT_EQ(ToVector<double>(*pos),
            std::vector<double>(positions.begin() + 6, positions.begin() + 18));
}

TEST_F(Hdf5Fixture, BigEndianDtypesReadAsNativeValues) {
  const std::string file = Path("be.h5");
  struct Case {
    const char* path;
    hid_t file_type;
    DType dtype;
  };
  const std::vector<Case> cases = {
      {"/u8", H5T_STD_U8BE, DType::kU8},     {"/u16", H5T_STD_U16BE, DType::kU16},
      {"/i16", H5T_STD_I16BE, DType::kI16},  {"/u32", H5T_STD_U32BE, DType::kU32},
      {"/i32", H5T_STD_I32BE, DType::kI32},  {"/f32", H5T_IEEE_F32BE, DType::kF32},
      {"/f64", H5T_IEEE_F64BE, DType::kF64}, {"/u16le", H5T_STD_U16LE, DType::kU16}};
  auto values = MakeFrames<double>(2, 3, 5);
  for (double& v : values) v -= 40;  // negative values for the signed and float types
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    for (const auto& c : cases) {
      std::vector<double> data = values;
      if (c.dtype == DType::kU8 || c.dtype == DType::kU16 || c.dtype == DType::kU32)
        for (double& v : data) v = std::abs(v);
      WriteH5Dataset(f, c.path, c.file_type, H5T_NATIVE_DOUBLE, {2, 3, 5}, data.data(),
                     {{1, 3, 5}, 1, true});
    }
    H5Fclose(f);
  }
  for (const auto& c : cases) {
    auto reader = Hdf5FrameReader::Open(file, c.path);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->info().dtype, c.dtype) << c.path;
    auto got = (*reader)->ReadFrames(0, 2);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (int64_t i = 0; i < got->NumElements(); ++i) {
      double want = values[static_cast<size_t>(i)];
      if (c.dtype == DType::kU8 || c.dtype == DType::kU16 || c.dtype == DType::kU32)
        want = std::abs(want);
      ASSERT_EQ(ElementAsDouble(*got, i), want) << c.path << " element " << i;
    }
  }
}

TEST_F(Hdf5Fixture, ChunkedDeflateShuffleReadsInChunkAlignedBatches) {
  const std::string file = Path("deflate.h5");
  auto frames = MakeFrames<uint16_t>(10, 16, 12);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/stack", H5T_STD_U16LE, H5T_NATIVE_UINT16, {10, 16, 12}, frames.data(),
                   {{4, 16, 12}, 6, true});
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "/stack");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().frames_per_chunk, 4);
  EXPECT_EQ((*reader)->info().filters, (std::vector<std::string>{"shuffle", "deflate"}));
  EXPECT_TRUE((*reader)->info().direct_chunks);
  const int64_t batch = (*reader)->BatchFrames(3 * 16 * 12 * 2);  // 3 frames' worth
  EXPECT_EQ(batch, 4);                                            // rounded to whole chunks
  std::vector<uint16_t> got;
  for (int64_t first = 0; first < 10; first += batch) {
    auto part = (*reader)->ReadFrames(first, std::min<int64_t>(batch, 10 - first));
    ASSERT_TRUE(part.ok());
    auto v = ToVector<uint16_t>(*part);
    got.insert(got.end(), v.begin(), v.end());
  }
  EXPECT_EQ(got, frames);
}

TEST_F(Hdf5Fixture, SingleFrameIsOneSample) {
  const std::string file = Path("single.h5");
  auto frame = MakeFrames<uint16_t>(1, 9, 7);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/image", H5T_STD_U16LE, H5T_NATIVE_UINT16, {9, 7}, frame.data());
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().num_frames, 1);
  EXPECT_TRUE((*reader)->info().scan_shape.empty());
  auto got = (*reader)->ReadFrames(0, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(ToVector<uint16_t>(*got), frame);
}

TEST_F(Hdf5Fixture, TruncatedFileIsDataLossNamingTheFile) {
  const std::string file = Path("truncated.h5");
  auto frames = MakeFrames<uint16_t>(8, 64, 64);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/stack", H5T_STD_U16LE, H5T_NATIVE_UINT16, {8, 64, 64}, frames.data());
    H5Fclose(f);
  }
  testing::TruncateFile(file, testing::FileSize(file) / 2);
  Status status;
  auto reader = Hdf5FrameReader::Open(file, "/stack");
  if (reader.ok()) {
    auto got = (*reader)->ReadFrames(0, 8);
    ASSERT_FALSE(got.ok()) << "a truncated file read without error";
    status = got.status();
  } else {
    status = reader.status();
  }
  EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status.ToString();
  EXPECT_NE(status.message().find(file), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("truncated"), std::string::npos) << status.message();
}

TEST_F(Hdf5Fixture, MissingDatasetListsTheDatasetsThatExist) {
  const std::string file = Path("list.h5");
  auto frames = MakeFrames<uint16_t>(2, 4, 4);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/entry/data/data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {2, 4, 4},
                   frames.data());
    WriteH5Dataset(f, "/entry/other", H5T_STD_U16LE, H5T_NATIVE_UINT16, {2, 4, 4}, frames.data());
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "/entry/nope");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  const std::string& msg = reader.status().message();
  EXPECT_NE(msg.find("/entry/nope does not exist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/entry/data/data u16[2,4,4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/entry/other u16[2,4,4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
}

void WriteVirtualFile(const std::string& vds, const std::string& src_name, int64_t n) {
  Hdf5Lock lock;
  hsize_t dims[3] = {static_cast<hsize_t>(n), 4, 5};
  hid_t vspace = H5Screate_simple(3, dims, nullptr);
  hid_t sspace = H5Screate_simple(3, dims, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_virtual(dcpl, vspace, src_name.c_str(), "/frames", sspace);
  hid_t f = CreateFile(vds);
  hid_t ds = H5Dcreate2(f, "/vds", H5T_STD_U16LE, vspace, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Dclose(ds);
  H5Fclose(f);
  H5Pclose(dcpl);
  H5Sclose(sspace);
  H5Sclose(vspace);
}

TEST_F(Hdf5Fixture, VirtualDatasetReadsItsSourceAndMissingSourceIsNotFound) {
  const std::string src = Path("src.h5");
  const std::string vds = Path("vds.h5");
  auto frames = MakeFrames<uint16_t>(3, 4, 5);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(src);
    WriteH5Dataset(f, "/frames", H5T_STD_U16LE, H5T_NATIVE_UINT16, {3, 4, 5}, frames.data());
    H5Fclose(f);
  }
  WriteVirtualFile(vds, "src.h5", 3);
  {
    auto reader = Hdf5FrameReader::Open(vds, "/vds");
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_TRUE((*reader)->info().is_virtual);
    auto got = (*reader)->ReadFrames(0, 3);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(ToVector<uint16_t>(*got), frames);
  }
  std::filesystem::remove(src);
  auto reader = Hdf5FrameReader::Open(vds, "/vds");
  ASSERT_FALSE(reader.ok()) << "a VDS with a missing source must not read as fill values";
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  const std::string& msg = reader.status().message();
  EXPECT_NE(msg.find("src.h5:/frames"), std::string::npos) << msg;
  EXPECT_NE(msg.find(vds), std::string::npos) << msg;
}

TEST_F(Hdf5Fixture, PositionsOrTargetsOfOtherLengthAreInvalid) {
  const std::string file = Path("aux.h5");
  auto frames = MakeFrames<uint16_t>(6, 4, 4);
  std::vector<double> positions(5 * 2, 1.0);
  auto targets = MakeFrames<float>(7, 3, 3);
  {
    Hdf5Lock lock;
    hid_t f = CreateFile(file);
    WriteH5Dataset(f, "/data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {6, 4, 4}, frames.data());
    WriteH5Dataset(f, "/pos", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {5, 2}, positions.data());
    WriteH5Dataset(f, "/amp", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {7, 3, 3}, targets.data());
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "/data");
  ASSERT_TRUE(reader.ok());
  auto pos = (*reader)->OpenAux("/pos", 1);
  ASSERT_FALSE(pos.ok());
  EXPECT_EQ(pos.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(pos.status().message().find("/pos: 5 rows"), std::string::npos)
      << pos.status().message();
  EXPECT_NE(pos.status().message().find("has 6 frames"), std::string::npos);
  auto amp = (*reader)->OpenAux("/amp", 2);
  ASSERT_FALSE(amp.ok());
  EXPECT_NE(amp.status().message().find("/amp: 7 rows"), std::string::npos)
      << amp.status().message();
  auto nope = (*reader)->OpenAux("/phase", 2);
  ASSERT_FALSE(nope.ok());
  EXPECT_EQ(nope.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tilestage::ingest

namespace tilestage::ingest {
namespace {

TEST(Hdf5FrameReaderDirect, UnwrittenChunksReadAsFillValues) {
  testing::TempDir dir;
  const std::string file = dir.Sub("partial.h5");
  auto frames = testing::MakeFrames<uint16_t>(2, 4, 4);
  {
    Hdf5Lock lock;
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {6, 4, 4}, chunk[3] = {2, 4, 4};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 1);
    const uint16_t fill = 7;
    H5Pset_fill_value(dcpl, H5T_NATIVE_UINT16, &fill);
    hid_t space = H5Screate_simple(3, dims, nullptr);
    hid_t ds = H5Dcreate2(f, "/d", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hsize_t start[3] = {0, 0, 0}, count[3] = {2, 4, 4};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t mem = H5Screate_simple(3, count, nullptr);
    H5Dwrite(ds, H5T_NATIVE_UINT16, mem, space, H5P_DEFAULT, frames.data());
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "/d");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->info().direct_chunks);
  auto got = (*reader)->ReadFrames(1, 4);  // crosses a stored and an unwritten chunk
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto v = got->As<uint16_t>();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[i], frames[16 + i]);
  for (int i = 16; i < 64; ++i) EXPECT_EQ(v[i], 7);
}

}  // namespace
}  // namespace tilestage::ingest
