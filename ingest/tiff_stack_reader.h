// TiffStackReader: detector frames from a multi-page TIFF, one frame per page, through libtiff.
//
// Open walks every directory (page) once and checks that all pages share size, sample type and
// one sample per pixel (pages of different sizes are an error naming the page). ReadFrame
// decodes one page from its strips or tiles (any compression libtiff supports); a page libtiff
// cannot decode is DataLoss naming the file, page and strip/tile.
//
// Thread-safety: a TiffStackReader holds one TIFF handle, so its methods are serialized on an
// internal mutex; use one reader per thread (or per file) to decode in parallel: libtiff is safe
// with one handle per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tiling/sample.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct TiffStackInfo {
  std::string file;
  DType dtype = DType::kU16;
  int64_t num_frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool tiled = false;
  int compression = 1;  // the TIFF Compression tag value of page 0
};

class TiffStackReader {
 public:
  // NotFound (no such file), DataLoss (not a TIFF, a page libtiff cannot parse), InvalidArgument
  // (pages of different sizes or types, unsupported sample types: u8 u16 u32 f32 and also i8
  // i16 i32 f64, one sample per pixel), each naming the file and the page.
  static Result<std::unique_ptr<TiffStackReader>> Open(const std::string& file);
  ~TiffStackReader();

  const TiffStackInfo& info() const { return info_; }
  // Page `page` as [H, W] in info().dtype.
  Result<Array> ReadFrame(int64_t page);

 private:
  TiffStackReader() = default;
  Status ReadInto(int64_t page, uint8_t* dst);

  TiffStackInfo info_;
  std::mutex mu_;
  void* tiff_ = nullptr;    // TIFF*
  std::string last_error_;  // libtiff's latest error message for this handle
  // Each page's directory offset: TIFFSetSubDirectory jumps to page n directly, where
  // TIFFSetDirectory(n) may walk the IFD chain from the start (quadratic over a long stack).
  std::vector<uint64_t> page_offsets_;
};

}  // namespace tilestage::ingest
