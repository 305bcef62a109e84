// Test fixtures written with HDF5 and libtiff themselves: small NeXus/CXI/scan/VDS files and
// multi-page TIFF stacks with known values. Single-threaded test helpers.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <tiffio.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace tilestage::testing {

// A deterministic pixel value for frame f at (y, x), small enough for every dtype.
inline double PixelValue(int64_t f, int64_t y, int64_t x) {
  return static_cast<double>((f * 37 + y * 11 + x * 3) % 97);
}

template <typename T>
std::vector<T> MakeFrames(int64_t n, int64_t h, int64_t w) {
  std::vector<T> v(static_cast<size_t>(n * h * w));
  for (int64_t f = 0; f < n; ++f)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        v[static_cast<size_t>((f * h + y) * w + x)] = static_cast<T>(PixelValue(f, y, x));
  return v;
}

struct H5Options {
  std::vector<hsize_t> chunk;  // empty: contiguous
  int deflate = 0;             // 0: none
  bool shuffle = false;
};

// Creates (with intermediate groups) and writes a dataset of `file_type` from `mem_type` data.
inline void WriteH5Dataset(hid_t file, const std::string& path, hid_t file_type, hid_t mem_type,
                           const std::vector<hsize_t>& dims, const void* data,
                           const H5Options& opt = {}) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!opt.chunk.empty()) {
    H5Pset_chunk(dcpl, static_cast<int>(opt.chunk.size()), opt.chunk.data());
    if (opt.shuffle) H5Pset_shuffle(dcpl);
    if (opt.deflate) H5Pset_deflate(dcpl, static_cast<unsigned>(opt.deflate));
  }
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t ds = H5Dcreate2(file, path.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT);
  ASSERT_GE(ds, 0) << path;
  ASSERT_GE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0) << path;
  H5Dclose(ds);
  H5Sclose(space);
  H5Pclose(dcpl);
  H5Pclose(lcpl);
}

inline void WriteStringAttr(hid_t file, const std::string& obj, const std::string& name,
                            const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.size() + 1);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate_by_name(file, obj.c_str(), name.c_str(), type, space, H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, type, value.c_str());
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

inline void MakeGroup(hid_t file, const std::string& path) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t g = H5Gcreate2(file, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Gclose(g);
  H5Pclose(lcpl);
}

// Reads a whole dataset with HDF5 into native `mem_type`: the independent truth for tests.
template <typename T>
std::vector<T> H5ReadAll(const std::string& file, const std::string& path, hid_t mem_type) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  std::vector<T> v(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(f);
  return v;
}

struct TiffPage {
  uint32_t width = 0;
  uint32_t height = 0;
  uint16_t bits = 16;
  uint16_t format = SAMPLEFORMAT_UINT;
  uint16_t compression = COMPRESSION_ADOBE_DEFLATE;
  uint32_t tile = 0;  // 0: strips
  uint32_t rows_per_strip = 4;
  std::vector<uint8_t> data;  // height * width * bits/8, native byte order
};

template <typename T>
TiffPage MakeTiffPage(int64_t page, uint32_t h, uint32_t w, uint16_t format, uint16_t compression,
                      uint32_t tile) {
  TiffPage p;
  p.width = w;
  p.height = h;
  p.bits = sizeof(T) * 8;
  p.format = format;
  p.compression = compression;
  p.tile = tile;
  auto values = MakeFrames<T>(page + 1, h, w);
  p.data.resize(static_cast<size_t>(h) * w * sizeof(T));
  std::memcpy(p.data.data(), values.data() + static_cast<size_t>(page) * h * w, p.data.size());
  return p;
}

inline void WriteTiff(const std::string& path, const std::vector<TiffPage>& pages) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(tif, nullptr) << path;
  for (const auto& p : pages) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, p.width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, p.height);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, p.bits);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, p.format);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, p.compression);
    const size_t pixel = p.bits / 8;
    if (p.tile) {
      TIFFSetField(tif, TIFFTAG_TILEWIDTH, p.tile);
      TIFFSetField(tif, TIFFTAG_TILELENGTH, p.tile);
      std::vector<uint8_t> tile(static_cast<size_t>(p.tile) * p.tile * pixel, 0);
      for (uint32_t ty = 0; ty < p.height; ty += p.tile) {
        for (uint32_t tx = 0; tx < p.width; tx += p.tile) {
          std::fill(tile.begin(), tile.end(), 0);
          for (uint32_t r = 0; r < p.tile && ty + r < p.height; ++r) {
            const uint32_t cols = std::min(p.tile, p.width - tx);
            std::memcpy(tile.data() + r * p.tile * pixel,
                        p.data.data() + ((ty + r) * p.width + tx) * pixel, cols * pixel);
          }
          ASSERT_GE(TIFFWriteTile(tif, tile.data(), tx, ty, 0, 0), 0);
        }
      }
    } else {
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, p.rows_per_strip);
      for (uint32_t y = 0; y < p.height; ++y) {
        ASSERT_GE(
            TIFFWriteScanline(tif, const_cast<uint8_t*>(p.data.data()) + y * p.width * pixel, y, 0),
            0);
      }
    }
    ASSERT_TRUE(TIFFWriteDirectory(tif));
  }
  TIFFClose(tif);
}

// libtiff's own decode of one page (scanline or tile API), the independent truth for tests.
inline std::vector<uint8_t> LibtiffReadPage(const std::string& path, int page) {
  TIFF* tif = TIFFOpen(path.c_str(), "r");
  TIFFSetDirectory(tif, static_cast<tdir_t>(page));
  uint32_t w = 0, h = 0;
  uint16_t bits = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  const size_t pixel = bits / 8;
  std::vector<uint8_t> out(static_cast<size_t>(w) * h * pixel);
  if (TIFFIsTiled(tif)) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    std::vector<uint8_t> tile(TIFFTileSize(tif));
    for (uint32_t ty = 0; ty < h; ty += th)
      for (uint32_t tx = 0; tx < w; tx += tw) {
        TIFFReadTile(tif, tile.data(), tx, ty, 0, 0);
        for (uint32_t r = 0; r < th && ty + r < h; ++r)
          std::memcpy(out.data() + ((ty + r) * w + tx) * pixel, tile.data() + r * tw * pixel,
                      std::min(tw, w - tx) * pixel);
      }
  } else {
    for (uint32_t y = 0; y < h; ++y) TIFFReadScanline(tif, out.data() + y * w * pixel, y, 0);
  }
  TIFFClose(tif);
  return out;
}

}  // namespace tilestage::testing
