// Hdf5FrameReader: detector frames from one HDF5 file (NeXus/NXmx, CXI or any dataset path).
//
// Opens a file, finds the frame dataset (an explicit path, or discovery through NeXus
// `default`/`NX_class`/`signal` attributes and the CXI `/entry_1/data_1/data` layout), follows
// soft and external links, checks that virtual datasets have all their source files and that
// every filter in the pipeline has its plugin, then reads frames in chunk-aligned hyperslabs.
// Shapes: [H,W] (one frame), [N,H,W] (a stack), [Ny,Nx,H,W] (a raster scan, flattened in C order;
// ScanIndex gives the (iy, ix) of a frame).
//
// Thread-safety: every method may be called from any thread; all HDF5 calls are serialized on
// the process-wide Hdf5Mutex, so reads from several readers never overlap. Callers parallelize
// the work after the read (transforms, tiling, compression).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tiling/sample.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct Hdf5FrameInfo {
  std::string file;
  std::string dataset;  // the resolved path inside the file
  DType dtype = DType::kU16;
  std::vector<int64_t> shape;       // the dataset's shape
  std::vector<int64_t> scan_shape;  // leading (non-frame) dimensions: {}, {N} or {Ny, Nx}
  int64_t num_frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  // Frames covered by one chunk along the flattened frame axis (1 for contiguous data).
  int64_t frames_per_chunk = 1;
  std::vector<std::string> filters;  // filter names in pipeline order ("shuffle", "deflate")
  bool is_virtual = false;
  // Chunked data filtered only by shuffle and/or deflate: chunks are read raw under the HDF5
  // lock and decoded (libdeflate, unshuffle, byte order) in parallel outside it. Any chunk shape
  // (whole frames, several frames, tiles of a frame); other layouts and filters use H5Dread.
  bool direct_chunks = false;
};

// A per-frame auxiliary dataset of the same file (positions, targets): its leading dimensions
// flatten to the frames, the trailing `item_shape` is one frame's worth.
struct Hdf5AuxInfo {
  std::string path;
  DType dtype = DType::kF64;
  std::vector<int64_t> shape;
  std::vector<int64_t> item_shape;
  int64_t rows = 0;
};

class Hdf5FrameReader {
 public:
  // dataset empty: discover it. Errors: NotFound (no such file; a dataset path that does not
  // exist, the message listing the datasets that do; a virtual dataset's missing source file),
  // FailedPrecondition (a filter whose plugin is not installed, naming the filter id and the
  // Debian package), InvalidArgument (unsupported shape or dtype), IOError/DataLoss (a file
  // HDF5 cannot read, e.g. truncated), all naming the file and dataset.
  static Result<std::unique_ptr<Hdf5FrameReader>> Open(const std::string& file,
                                                       const std::string& dataset);
  ~Hdf5FrameReader();

  const Hdf5FrameInfo& info() const { return info_; }

  // Frames [first, first + count) as one C-order array [count, H, W] in info().dtype (native
  // byte order). Reads whole chunks per call; pick count a multiple of frames_per_chunk.
  Result<Array> ReadFrames(int64_t first, int64_t count) const;
  // Calls fn(i, frame) for each frame first + i, i in [0, count), from parallel TBB tasks in any
  // order; `frame` is one C-order [H, W] frame in native byte order, valid only during the call.
  // With direct chunk reads each frame comes straight from its decoded chunk, so a per-frame
  // transform runs while the chunk is still in cache and no [count, H, W] array is built. A chunk
  // that does not decode is DataLoss naming the file, the dataset and the chunk's offset.
  using FrameFn = std::function<void(int64_t i, const uint8_t* frame)>;
  Status ForEachFrame(int64_t first, int64_t count, const FrameFn& fn) const;
  // A batch size in frames: a multiple of frames_per_chunk near target_bytes (at least one).
  int64_t BatchFrames(uint64_t target_bytes) const;
  // (iy, ix) for raster scans, (i) for stacks, () for a single frame.
  std::vector<int64_t> ScanIndex(int64_t frame) const;

  // Describes a per-frame dataset of this file whose trailing `item_rank` dimensions are one
  // frame's item (1 for positions [N,2|3], 2 for targets [N,h,w]). InvalidArgument naming the
  // file, the path and both lengths when its rows disagree with the number of frames; NotFound
  // (listing the datasets) when the path does not exist.
  Result<Hdf5AuxInfo> OpenAux(const std::string& path, int item_rank) const;
  // Whether `path` names a dataset of this file.
  bool HasDataset(const std::string& path) const;
  // The pixel mask that goes with the frames: NXmx `pixel_mask` (in an NXdetector), else CXI's
  // detector `mask_shared` or `mask` (under /entry_N), whichever first has the frame shape
  // [H, W] or the frames' shape (one mask per frame); nullopt when the file has none.
  std::optional<std::string> DiscoverPixelMask() const;
  // Reads a pixel mask [H, W] (any integer or float type) as validity, u8 [H, W]: 1 where the
  // mask is 0, 0 where it is nonzero (NXmx and CXI: nonzero bits flag gaps, dead, hot pixels).
  // InvalidArgument naming the file, the path and both shapes when it is not [H, W].
  Result<Array> ReadPixelMask(const std::string& path) const;
  // A pixel mask, either one [H, W] for every frame (`shared`, as ReadPixelMask reads it), or one
  // per frame with the frames' shape ([N,H,W], [Ny,Nx,H,W]: `per_frame`, rows for
  // ReadFrameMasks). Errors as ReadPixelMask, for a mask of neither shape.
  struct PixelMask {
    Array shared;
    std::optional<Hdf5AuxInfo> per_frame;
  };
  Result<PixelMask> OpenPixelMask(const std::string& path) const;
  // The validity (u8 [count, H, W], as ReadPixelMask) of frames [first, first + count) from a
  // per-frame mask.
  Result<Array> ReadFrameMasks(const Hdf5AuxInfo& mask, int64_t first, int64_t count) const;
  // Rows [first, first + count) of an auxiliary dataset as [count, item_shape...], in `as`.
  Result<Array> ReadAux(const Hdf5AuxInfo& aux, int64_t first, int64_t count, DType as) const;

 private:
  struct Handles;
  Hdf5FrameReader();
  // Direct chunk read + parallel decode, frames handed to fn; false (nothing called) when a
  // chunk is not stored, so fill values come from H5Dread.
  Result<bool> ReadDirect(int64_t first, int64_t count, const FrameFn& fn) const;
  // H5Dread of frames [first, first + count) into out, under the HDF5 lock.
  Status ReadWithHdf5(int64_t first, int64_t count, uint8_t* out) const;
  size_t FrameBytes() const;

  Hdf5FrameInfo info_;
  std::unique_ptr<Handles> handles_;
};

// Every dataset in a file, "path dtype[shape]" one per entry, for error messages (at most
// `limit`). Takes the HDF5 lock.
std::vector<std::string> ListHdf5Datasets(const std::string& file, size_t limit = 50);

}  // namespace tilestage::ingest
