#include "ingest/tiff_stack_reader.h"

#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace tilestage::ingest {
namespace {

int CaptureError(TIFF*, void* user_data, const char* module, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  auto* last = static_cast<std::string*>(user_data);
  *last = module ? std::string(module) + ": " + buf : std::string(buf);
  return 1;  // handled: libtiff does not print it
}

int IgnoreWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

Result<DType> PageDType(uint16_t bits, uint16_t format, const std::string& where) {
  if (format == SAMPLEFORMAT_UINT || format == SAMPLEFORMAT_VOID) {
    if (bits == 8) return DType::kU8;
    if (bits == 16) return DType::kU16;
    if (bits == 32) return DType::kU32;
  } else if (format == SAMPLEFORMAT_INT) {
    if (bits == 8) return DType::kI8;
    if (bits == 16) return DType::kI16;
    if (bits == 32) return DType::kI32;
  } else if (format == SAMPLEFORMAT_IEEEFP) {
    if (bits == 32) return DType::kF32;
    if (bits == 64) return DType::kF64;
  }
  return InvalidArgument(where, ": ", bits, "-bit samples of format ", format,
                         " are not supported (u8 u16 u32 f32, also i8 i16 i32 f64)");
}

}  // namespace

TiffStackReader::~TiffStackReader() {
  if (tiff_) TIFFClose(static_cast<TIFF*>(tiff_));
}

Result<std::unique_ptr<TiffStackReader>> TiffStackReader::Open(const std::string& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return NotFound("TIFF file ", file, " does not exist");
  std::unique_ptr<TiffStackReader> reader(new TiffStackReader());
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, CaptureError, &reader->last_error_);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, IgnoreWarning, nullptr);
  TIFF* tif = TIFFOpenExt(file.c_str(), "r", opts);
  TIFFOpenOptionsFree(opts);
  if (!tif) return DataLoss("TIFF file ", file, ": cannot open: ", reader->last_error_);
  reader->tiff_ = tif;
  TiffStackInfo& info = reader->info_;
  info.file = file;
  int64_t page = 0;
  do {
    const std::string where = StrCat("TIFF file ", file, ": page ", page);
    uint32_t width = 0, height = 0;
    uint16_t bits = 1, format = SAMPLEFORMAT_UINT, spp = 1, compression = COMPRESSION_NONE;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width) ||
        !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height))
      return DataLoss(where, ": no image size: ", reader->last_error_);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    if (spp != 1)
      return InvalidArgument(where, ": ", spp,
                             " samples per pixel; detector frames have one (grey) sample");
    TS_ASSIGN_OR_RETURN(DType dtype, PageDType(bits, format, where));
    if (page == 0) {
      info.width = width;
      info.height = height;
      info.dtype = dtype;
      info.tiled = TIFFIsTiled(tif);
      info.compression = compression;
    } else if (width != info.width || height != info.height) {
      return InvalidArgument(where, " is ", width, "x", height, " (WxH) but page 0 is ", info.width,
                             "x", info.height, ": all pages of a stack must have the same size");
    } else if (dtype != info.dtype) {
      return InvalidArgument(where, " holds ", DTypeName(dtype), " but page 0 holds ",
                             DTypeName(info.dtype), ": all pages must have the same type");
    }
    reader->page_offsets_.push_back(TIFFCurrentDirOffset(tif));
    ++page;
    reader->last_error_.clear();
  } while (TIFFReadDirectory(tif));
  if (!reader->last_error_.empty())
    return DataLoss("TIFF file ", file, ": page ", page, ": ", reader->last_error_);
  info.num_frames = page;
  return reader;
}

Result<Array> TiffStackReader::ReadFrame(int64_t page) {
  Array out(info_.dtype, {info_.height, info_.width});
  TS_RETURN_IF_ERROR(ReadInto(page, out.data.data()));
  return out;
}

Status TiffStackReader::ReadInto(int64_t page, uint8_t* dst) {
  std::lock_guard<std::mutex> lock(mu_);
  TIFF* tif = static_cast<TIFF*>(tiff_);
  const std::string where = StrCat("TIFF file ", info_.file, ": page ", page);
  if (page < 0 || page >= info_.num_frames)
    return InvalidArgument(where, ": outside 0..", info_.num_frames - 1);
  last_error_.clear();
  if (!TIFFSetSubDirectory(tif, page_offsets_[static_cast<size_t>(page)]))
    return DataLoss(where, ": cannot read the directory: ", last_error_);
  const size_t pixel_bytes = DTypeSize(info_.dtype);
  const size_t row_bytes = static_cast<size_t>(info_.width) * pixel_bytes;
  if (TIFFIsTiled(tif)) {
    uint32_t tile_w = 0, tile_h = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tile_w);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &tile_h);
    const tmsize_t tile_bytes = TIFFTileSize(tif);
    if (tile_w == 0 || tile_h == 0 || tile_bytes <= 0)
      return DataLoss(where, ": bad tile size: ", last_error_);
    std::vector<uint8_t> tile(static_cast<size_t>(tile_bytes));
    for (uint32_t ty = 0; ty < info_.height; ty += tile_h) {
      for (uint32_t tx = 0; tx < info_.width; tx += tile_w) {
        const uint32_t index = TIFFComputeTile(tif, tx, ty, 0, 0);
        if (TIFFReadEncodedTile(tif, index, tile.data(), tile_bytes) < 0)
          return DataLoss(where, ": tile ", index, " cannot be decoded: ", last_error_);
        const uint32_t rows = std::min<uint32_t>(tile_h, static_cast<uint32_t>(info_.height) - ty);
        const uint32_t cols = std::min<uint32_t>(tile_w, static_cast<uint32_t>(info_.width) - tx);
        for (uint32_t r = 0; r < rows; ++r) {
          std::memcpy(dst + (ty + r) * row_bytes + tx * pixel_bytes,
                      tile.data() + static_cast<size_t>(r) * tile_w * pixel_bytes,
                      cols * pixel_bytes);
        }
      }
    }
  } else {
    const tstrip_t strips = TIFFNumberOfStrips(tif);
    uint32_t rows_per_strip = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    rows_per_strip = std::min<uint32_t>(rows_per_strip, static_cast<uint32_t>(info_.height));
    for (tstrip_t s = 0; s < strips; ++s) {
      const int64_t row0 = static_cast<int64_t>(s) * rows_per_strip;
      if (row0 >= info_.height) break;
      const int64_t rows = std::min<int64_t>(rows_per_strip, info_.height - row0);
      const tmsize_t want = static_cast<tmsize_t>(rows * static_cast<int64_t>(row_bytes));
      const tmsize_t got = TIFFReadEncodedStrip(tif, s, dst + row0 * row_bytes, want);
      if (got < 0) return DataLoss(where, ": strip ", s, " cannot be decoded: ", last_error_);
      if (got < want)
        return DataLoss(where, ": strip ", s, " decoded to ", got, " bytes, expected ", want);
    }
  }
  return Status::Ok();
}

}  // namespace tilestage::ingest
