// TiffStackReader against libtiff's own scanline/tile reads and the values the test wrote.
#include <gtest/gtest.h>

#include <fstream>

#include "ingest/tiff_stack_reader.h"
#include "tests/common/test_util.h"
#include "tests/ingest_hdf5/fixtures.h"

namespace tilestage::ingest {
namespace {

using testing::MakeTiffPage;
using testing::TempDir;
using testing::TiffPage;

void ExpectPagesMatch(const std::string& file, const std::vector<TiffPage>& pages, DType dtype) {
  auto reader = TiffStackReader::Open(file);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().num_frames, static_cast<int64_t>(pages.size()));
  EXPECT_EQ((*reader)->info().dtype, dtype);
  for (size_t p = 0; p < pages.size(); ++p) {
    auto frame = (*reader)->ReadFrame(static_cast<int64_t>(p));
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    EXPECT_EQ(frame->shape, (std::vector<int64_t>{pages[p].height, pages[p].width}));
    EXPECT_TRUE(frame->data == pages[p].data) << "page " << p << " differs from what was written";
    EXPECT_TRUE(frame->data == testing::LibtiffReadPage(file, static_cast<int>(p)))
        << "page " << p << " differs from libtiff's scanline/tile read";
  }
}

TEST(TiffStackReader, DeflateStripsU16) {
  TempDir dir;
  std::vector<TiffPage> pages;
  for (int p = 0; p < 3; ++p)
    pages.push_back(
        MakeTiffPage<uint16_t>(p, 23, 17, SAMPLEFORMAT_UINT, COMPRESSION_ADOBE_DEFLATE, 0));
  testing::WriteTiff(dir.Sub("s.tif"), pages);
  ExpectPagesMatch(dir.Sub("s.tif"), pages, DType::kU16);
}

TEST(TiffStackReader, LzwTilesU32WithPartialEdgeTiles) {
  TempDir dir;
  std::vector<TiffPage> pages;
  for (int p = 0; p < 2; ++p)
    pages.push_back(MakeTiffPage<uint32_t>(p, 40, 36, SAMPLEFORMAT_UINT, COMPRESSION_LZW, 16));
  testing::WriteTiff(dir.Sub("t.tif"), pages);
  ExpectPagesMatch(dir.Sub("t.tif"), pages, DType::kU32);
}

TEST(TiffStackReader, UncompressedF32AndPackbitsU8) {
  TempDir dir;
  std::vector<TiffPage> f32{
      MakeTiffPage<float>(0, 9, 11, SAMPLEFORMAT_IEEEFP, COMPRESSION_NONE, 0),
      MakeTiffPage<float>(1, 9, 11, SAMPLEFORMAT_IEEEFP, COMPRESSION_NONE, 0)};
  testing::WriteTiff(dir.Sub("f.tif"), f32);
  ExpectPagesMatch(dir.Sub("f.tif"), f32, DType::kF32);
  std::vector<TiffPage> u8{
      MakeTiffPage<uint8_t>(0, 32, 32, SAMPLEFORMAT_UINT, COMPRESSION_PACKBITS, 16),
      MakeTiffPage<uint8_t>(1, 32, 32, SAMPLEFORMAT_UINT, COMPRESSION_PACKBITS, 16)};
  testing::WriteTiff(dir.Sub("u8.tif"), u8);
  ExpectPagesMatch(dir.Sub("u8.tif"), u8, DType::kU8);
}

TEST(TiffStackReader, PagesOfDifferentSizesAreInvalidNamingThePage) {
  TempDir dir;
  std::vector<TiffPage> pages{
      MakeTiffPage<uint16_t>(0, 16, 16, SAMPLEFORMAT_UINT, COMPRESSION_NONE, 0),
      MakeTiffPage<uint16_t>(1, 16, 16, SAMPLEFORMAT_UINT, COMPRESSION_NONE, 0),
      MakeTiffPage<uint16_t>(2, 16, 20, SAMPLEFORMAT_UINT, COMPRESSION_NONE, 0)};
  testing::WriteTiff(dir.Sub("mixed.tif"), pages);
  auto reader = TiffStackReader::Open(dir.Sub("mixed.tif"));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = reader.status().message();
  EXPECT_NE(msg.find(dir.Sub("mixed.tif") + ": page 2 is 20x16"), std::string::npos) << msg;
}

// Overwrites the first compressed strip of `page` with 0xFF bytes (not a zlib stream).
void CorruptFirstStrip(const std::string& file, int page) {
  TIFF* tif = TIFFOpen(file.c_str(), "r");
  ASSERT_NE(tif, nullptr);
  ASSERT_TRUE(TIFFSetDirectory(tif, static_cast<tdir_t>(page)));
  const uint64_t offset = TIFFGetStrileOffset(tif, 0);
  const uint64_t bytes = TIFFGetStrileByteCount(tif, 0);
  TIFFClose(tif);
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  std::string junk(static_cast<size_t>(bytes), '\xff');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

TEST(TiffStackReader, CorruptPageIsDataLossNamingFileAndPage) {
  TempDir dir;
  const std::string file = dir.Sub("corrupt.tif");
  std::vector<TiffPage> pages;
  for (int p = 0; p < 3; ++p)
    pages.push_back(
        MakeTiffPage<uint16_t>(p, 24, 24, SAMPLEFORMAT_UINT, COMPRESSION_ADOBE_DEFLATE, 0));
  testing::WriteTiff(file, pages);
  CorruptFirstStrip(file, 1);
  auto reader = TiffStackReader::Open(file);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();  // directories are intact
  ASSERT_TRUE((*reader)->ReadFrame(0).ok());
  auto bad = (*reader)->ReadFrame(1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find(file + ": page 1: strip 0"), std::string::npos)
      << bad.status().message();
  EXPECT_TRUE((*reader)->ReadFrame(2).ok());
}

TEST(TiffStackReader, NotATiffIsDataLoss) {
  TempDir dir;
  std::ofstream(dir.Sub("x.tif")) << "this is not a tiff";
  auto reader = TiffStackReader::Open(dir.Sub("x.tif"));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(reader.status().message().find(dir.Sub("x.tif")), std::string::npos);
}

}  // namespace
}  // namespace tilestage::ingest
