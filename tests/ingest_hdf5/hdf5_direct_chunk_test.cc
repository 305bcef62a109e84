// The direct chunk path of Hdf5FrameReader (raw chunks read under the HDF5 lock, inflated with
// libdeflate, unshuffled and byte-swapped in parallel outside it) against HDF5's own H5Dread of
// the same files: every chunk shape (several frames, tiles of a frame, partial edge chunks, scan
// chunks), chunks written with a non-zero filter mask, corrupt chunks, and the layouts and
// filters that must fall back to H5Dread.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <mutex>

#include "ingest/frame_transforms.h"
#include "ingest/hdf5_frame_reader.h"
#include "ingest/hdf5_source.h"
#include "ingest/hdf5_util.h"
#include "tests/common/test_util.h"
#include "tests/ingest_hdf5/fixtures.h"

namespace tilestage::ingest {
namespace {

using ::tilestage::testing::H5ReadAll;
using ::tilestage::testing::MakeFrames;
using ::tilestage::testing::TempDir;

struct Layout {
  std::vector<hsize_t> dims;
  std::vector<hsize_t> chunk;
  bool shuffle = false;
  int deflate = 0;
  bool fletcher32 = false;
  bool dont_filter_partial_chunks = false;
};

// Writes `data` (native `mem_type`) as dataset /d of `file_type` with the given layout.
void WriteDataset(const std::string& file, hid_t file_type, hid_t mem_type, const Layout& layout,
                  const void* data) {
  Hdf5Lock lock;
  hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0) << file;
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!layout.chunk.empty()) {
    H5Pset_chunk(dcpl, static_cast<int>(layout.chunk.size()), layout.chunk.data());
    if (layout.dont_filter_partial_chunks)
      H5Pset_chunk_opts(dcpl, H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS);
    if (layout.fletcher32) H5Pset_fletcher32(dcpl);
    if (layout.shuffle) H5Pset_shuffle(dcpl);
    if (layout.deflate) H5Pset_deflate(dcpl, static_cast<unsigned>(layout.deflate));
  }
  hid_t space = H5Screate_simple(static_cast<int>(layout.dims.size()), layout.dims.data(), nullptr);
  hid_t ds = H5Dcreate2(f, "/d", file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  ASSERT_GE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
  H5Dclose(ds);
  H5Sclose(space);
  H5Pclose(dcpl);
  H5Fclose(f);
}

template <typename T>
std::vector<T> TruthOf(const std::string& file, hid_t mem_type) {
  Hdf5Lock lock;
  return H5ReadAll<T>(file, "/d", mem_type);
}

// Frames [first, first + count) through ReadFrames and through ForEachFrame, both checked
// against the same frames of HDF5's own read of the whole dataset.
template <typename T>
void ExpectFramesEqualTruth(const Hdf5FrameReader& reader, const std::vector<T>& truth,
                            int64_t first, int64_t count) {
  const auto& info = reader.info();
  const size_t frame = static_cast<size_t>(info.height * info.width);
  auto got = reader.ReadFrames(first, count);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto v = got->As<T>();
  ASSERT_EQ(v.size(), frame * static_cast<size_t>(count));
  for (size_t i = 0; i < v.size(); ++i) {
    // Compared as bytes so that NaN payloads and -0.0 count too.
    ASSERT_EQ(std::memcmp(&v[i], &truth[static_cast<size_t>(first) * frame + i], sizeof(T)), 0)
        << "frames " << first << "+" << count << " element " << i;
  }
  std::vector<T> seen(frame * static_cast<size_t>(count));
  std::vector<int> calls(static_cast<size_t>(count), 0);
  std::mutex mu;
  Status s = reader.ForEachFrame(first, count, [&](int64_t i, const uint8_t* data) {
    std::memcpy(seen.data() + static_cast<size_t>(i) * frame, data, frame * sizeof(T));
    std::lock_guard<std::mutex> lock(mu);
    ++calls[static_cast<size_t>(i)];
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int c : calls) EXPECT_EQ(c, 1);
  EXPECT_EQ(std::memcmp(seen.data(), v.data(), v.size() * sizeof(T)), 0);
}

template <typename T>
void ExpectAllRangesEqualTruth(const std::string& file, hid_t mem_type, bool want_direct) {
  auto reader = Hdf5FrameReader::Open(file, "/d");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().direct_chunks, want_direct);
  const auto truth = TruthOf<T>(file, mem_type);
  const int64_t n = (*reader)->info().num_frames;
  ExpectFramesEqualTruth<T>(**reader, truth, 0, n);
  for (int64_t first = 0; first < n; ++first) {
    ExpectFramesEqualTruth<T>(**reader, truth, first, 1);
    ExpectFramesEqualTruth<T>(**reader, truth, first, std::min<int64_t>(3, n - first));
  }
}

TEST(Hdf5DirectChunks, DeflateOnlyEqualsHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("deflate.h5");
  auto frames = MakeFrames<uint16_t>(10, 16, 12);
  WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, {{10, 16, 12}, {3, 16, 12}, false, 5},
               frames.data());
  ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, true);
}

TEST(Hdf5DirectChunks, ShuffleDeflateChunksOfSeveralFramesEqualHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("shuffle.h5");
  auto frames = MakeFrames<uint32_t>(11, 8, 6);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] += static_cast<uint32_t>(i) << 12;
  // 11 frames in chunks of 4: the last chunk is partial along the frame axis.
  WriteDataset(file, H5T_STD_U32LE, H5T_NATIVE_UINT32, {{11, 8, 6}, {4, 8, 6}, true, 4},
               frames.data());
  ExpectAllRangesEqualTruth<uint32_t>(file, H5T_NATIVE_UINT32, true);
}

TEST(Hdf5DirectChunks, PartialEdgeChunksCuttingFramesEqualHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("tiles.h5");
  auto frames = MakeFrames<uint16_t>(7, 13, 11);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] += static_cast<uint16_t>(i * 7);
  // Chunks 3x5x4: partial on every axis (7 % 3, 13 % 5, 11 % 4 are not 0).
  WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, {{7, 13, 11}, {3, 5, 4}, true, 6},
               frames.data());
  ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, true);
}

TEST(Hdf5DirectChunks, ScanChunksCuttingScanLinesAndFramesEqualHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("scan.h5");
  // [Ny=3, Nx=5, 9, 7] in chunks [1, 2, 4, 5]: chunks cut scan lines and frames, edge chunks on
  // the scan axis and on both frame axes.
  auto frames = MakeFrames<int16_t>(15, 9, 7);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<int16_t>(frames[i] - 50);
  WriteDataset(file, H5T_STD_I16LE, H5T_NATIVE_INT16, {{3, 5, 9, 7}, {1, 2, 4, 5}, true, 1},
               frames.data());
  ExpectAllRangesEqualTruth<int16_t>(file, H5T_NATIVE_INT16, true);
}

TEST(Hdf5DirectChunks, ScanChunksOverSeveralPartialScanLinesUseHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("scan_lines.h5");
  // Chunks [2, 2, ...] of a 5-wide scan: batches follow scan lines, so each chunk would be
  // decoded once per line; H5Dread keeps it in HDF5's chunk cache instead.
  auto frames = MakeFrames<int16_t>(15, 9, 7);
  WriteDataset(file, H5T_STD_I16LE, H5T_NATIVE_INT16, {{3, 5, 9, 7}, {2, 2, 4, 7}, true, 1},
               frames.data());
  ExpectAllRangesEqualTruth<int16_t>(file, H5T_NATIVE_INT16, false);
}

TEST(Hdf5DirectChunks, ScanChunksOfWholeScanLinesEqualHdf5Read) {
  // [Ny=4, Nx=3] frames in chunks of 3 whole scan lines: the last chunk is partial.
  TempDir dir;
  const std::string file = dir.Sub("scan_whole.h5");
  auto frames = MakeFrames<uint16_t>(12, 5, 6);
  WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, {{4, 3, 5, 6}, {3, 3, 5, 6}, true, 3},
               frames.data());
  ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, true);
}

TEST(Hdf5DirectChunks, SingleFrameInTilesEqualsHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("single.h5");
  auto frame = MakeFrames<uint8_t>(1, 13, 11);
  WriteDataset(file, H5T_STD_U8LE, H5T_NATIVE_UINT8, {{13, 11}, {5, 4}, true, 2}, frame.data());
  ExpectAllRangesEqualTruth<uint8_t>(file, H5T_NATIVE_UINT8, true);
}

TEST(Hdf5DirectChunks, BigEndianShuffleDeflateIsSwappedToNative) {
  TempDir dir;
  auto base = MakeFrames<double>(5, 6, 4);
  {
    const std::string file = dir.Sub("be_i16.h5");
    std::vector<int16_t> v(base.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int16_t>(base[i] * 300 - 9000);
    WriteDataset(file, H5T_STD_I16BE, H5T_NATIVE_INT16, {{5, 6, 4}, {2, 6, 4}, true, 4}, v.data());
    ExpectAllRangesEqualTruth<int16_t>(file, H5T_NATIVE_INT16, true);
  }
  {
    const std::string file = dir.Sub("be_f32.h5");
    std::vector<float> v(base.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(base[i] * 0.37 - 5.0);
    WriteDataset(file, H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, {{5, 6, 4}, {2, 3, 3}, true, 4}, v.data());
    ExpectAllRangesEqualTruth<float>(file, H5T_NATIVE_FLOAT, true);
  }
  {
    const std::string file = dir.Sub("be_f64.h5");
    std::vector<double> v(base.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = base[i] * 1e-3 + 1e9;
    WriteDataset(file, H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, {{5, 6, 4}, {3, 6, 4}, false, 4},
                 v.data());
    ExpectAllRangesEqualTruth<double>(file, H5T_NATIVE_DOUBLE, true);
  }
}

// The shuffle filter's byte layout, written out independently: byte b of element i goes to
// b * n + i.
std::vector<uint8_t> ShuffleBytes(const void* data, size_t n, size_t element_bytes) {
  const auto* in = static_cast<const uint8_t*>(data);
  std::vector<uint8_t> out(n * element_bytes);
  for (size_t i = 0; i < n; ++i)
    for (size_t b = 0; b < element_bytes; ++b) out[b * n + i] = in[i * element_bytes + b];
  return out;
}

TEST(Hdf5DirectChunks, ChunksWithNonZeroFilterMaskAreDecodedAsStored) {
  TempDir dir;
  const std::string file = dir.Sub("mask.h5");
  auto frames = MakeFrames<uint16_t>(6, 4, 5);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] += static_cast<uint16_t>(i * 300);
  const size_t chunk_elements = 2 * 4 * 5;
  {
    Hdf5Lock lock;
    hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {6, 4, 5}, chunk[3] = {2, 4, 5};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    H5Pset_shuffle(dcpl);     // filter 0
    H5Pset_deflate(dcpl, 5);  // filter 1
    hid_t space = H5Screate_simple(3, dims, nullptr);
    hid_t ds = H5Dcreate2(f, "/d", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    // Chunk 0 through the normal pipeline (mask 0).
    hsize_t start[3] = {0, 0, 0}, count[3] = {2, 4, 5};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t mem = H5Screate_simple(3, count, nullptr);
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_UINT16, mem, space, H5P_DEFAULT, frames.data()), 0);
    // Chunk 1: shuffled but not deflated (mask bit 1).
    auto shuffled = ShuffleBytes(frames.data() + chunk_elements, chunk_elements, 2);
    hsize_t offset1[3] = {2, 0, 0};
    ASSERT_GE(H5Dwrite_chunk(ds, H5P_DEFAULT, 0x2, offset1, shuffled.size(), shuffled.data()), 0);
    // Chunk 2: stored as plain little-endian values (mask bits 0 and 1).
    hsize_t offset2[3] = {4, 0, 0};
    ASSERT_GE(H5Dwrite_chunk(ds, H5P_DEFAULT, 0x3, offset2, chunk_elements * 2,
                             frames.data() + 2 * chunk_elements),
              0);
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Fclose(f);
  }
  const auto truth = TruthOf<uint16_t>(file, H5T_NATIVE_UINT16);
  ASSERT_EQ(truth, frames);  // HDF5 itself honours the masks
  ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, true);
}

TEST(Hdf5DirectChunks, CorruptCompressedChunkIsDataLossNamingFileDatasetAndChunk) {
  TempDir dir;
  const std::string file = dir.Sub("corrupt.h5");
  auto frames = MakeFrames<uint16_t>(6, 4, 4);
  WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, {{6, 4, 4}, {2, 4, 4}, true, 4},
               frames.data());
  {
    // Overwrite the chunk at frame 2 with bytes that are not a zlib stream.
    Hdf5Lock lock;
    hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/d", H5P_DEFAULT);
    std::vector<uint8_t> junk(40);
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 37 + 11);
    hsize_t offset[3] = {2, 0, 0};
    ASSERT_GE(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, offset, junk.size(), junk.data()), 0);
    H5Dclose(ds);
    H5Fclose(f);
  }
  auto reader = Hdf5FrameReader::Open(file, "/d");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_TRUE((*reader)->info().direct_chunks);
  auto got = (*reader)->ReadFrames(0, 6);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << got.status().ToString();
  const std::string message = got.status().ToString();
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find("dataset /d"), std::string::npos) << message;
  EXPECT_NE(message.find("chunk at [2,0,0]"), std::string::npos) << message;
  Status each = (*reader)->ForEachFrame(2, 1, [](int64_t, const uint8_t*) {});
  EXPECT_EQ(each.code(), StatusCode::kDataLoss) << each.ToString();
  // The chunks around it are intact and still read.
  auto before = (*reader)->ReadFrames(0, 2);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  auto v = before->As<uint16_t>();
  EXPECT_TRUE(std::equal(v.begin(), v.end(), frames.begin()));
}

TEST(Hdf5DirectChunks, OtherFiltersAndLayoutsFallBackToHdf5Read) {
  TempDir dir;
  auto frames = MakeFrames<uint16_t>(7, 6, 5);
  {
    // fletcher32 is not a filter the direct path undoes.
    const std::string file = dir.Sub("fletcher.h5");
    Layout layout{{7, 6, 5}, {2, 6, 5}, true, 4};
    layout.fletcher32 = true;
    WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, layout, frames.data());
    ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, false);
  }
  {
    // Partial edge chunks stored unfiltered without a filter mask: HDF5 must decode them.
    const std::string file = dir.Sub("dont_filter_partial.h5");
    Layout layout{{7, 6, 5}, {2, 4, 5}, true, 4};
    layout.dont_filter_partial_chunks = true;
    WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, layout, frames.data());
    ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, false);
  }
  {
    const std::string file = dir.Sub("contiguous.h5");
    WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, {{7, 6, 5}, {}}, frames.data());
    ExpectAllRangesEqualTruth<uint16_t>(file, H5T_NATIVE_UINT16, false);
  }
}

TEST(Hdf5DirectChunks, SourceCropLog1pEqualsDirectComputationOnHdf5Read) {
  TempDir dir;
  const std::string file = dir.Sub("transform.h5");
  auto frames = MakeFrames<uint16_t>(9, 12, 10);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<uint16_t>(frames[i] * 613);
  // Tiles that cut frames, so the source goes through the assembled-frame path too.
  for (const std::vector<hsize_t>& chunk :
       {std::vector<hsize_t>{4, 12, 10}, std::vector<hsize_t>{2, 5, 3}}) {
    WriteDataset(file, H5T_STD_U16LE, H5T_NATIVE_UINT16, {{9, 12, 10}, chunk, true, 4},
                 frames.data());
    const auto truth = TruthOf<uint16_t>(file, H5T_NATIVE_UINT16);
    Hdf5SourceOptions options;
    options.files = {file};
    options.dataset = "/d";
    auto transform = FrameTransform::Parse("8,6", 1, /*log1p=*/true, false, std::nullopt);
    ASSERT_TRUE(transform.ok());
    options.transform = *transform;
    options.batch_bytes = 3 * 12 * 10 * 2;  // several batches
    auto source = OpenHdf5Source(options);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    auto reader = (*source)->OpenReader();
    ASSERT_TRUE(reader.ok());
    ASSERT_EQ((*source)->num_items(), 9);
    for (int64_t item = 0; item < 9; ++item) {
      RegionData data;
      ASSERT_TRUE((*reader)->Read(item, Region{0, 0, 8, 6}, &data).ok());
      ASSERT_EQ(data.x.dtype, DType::kF32);
      auto got = data.x.As<float>();
      ASSERT_EQ(got.size(), 48u);
      for (int64_t y = 0; y < 8; ++y) {
        for (int64_t x = 0; x < 6; ++x) {
          // Centred crop of a 12x10 frame to 8x6 starts at (2, 2).
          const uint16_t v = truth[static_cast<size_t>((item * 12 + y + 2) * 10 + x + 2)];
          ASSERT_EQ(got[static_cast<size_t>(y * 6 + x)], std::log1p(static_cast<float>(v)))
              << "item " << item << " at " << y << "," << x;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tilestage::ingest
