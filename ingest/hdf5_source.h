// Hdf5Source: diffraction frames from HDF5 files as a Source (ingest/source.h) for the shared
// ingest driver: every frame of every file is one item x [1, h, w] after the per-frame
// transforms, with its scan index and probe position in the item metadata and optional target
// datasets (amplitude, phase...) stacked as the channels of y.
//
// Reading: frames are read in chunk-aligned batches of many frames (Hdf5FrameReader), transformed
// in parallel (TBB) right after the read and kept in a small shared cache, so the driver's worker
// threads, which ask for one frame at a time, share each batch read: HDF5 runs once per batch under
// the process-wide HDF5 lock while the other threads transform, tile and compress.
//
// Thread-safety: as Source requires (const methods from many threads; one ItemReader per thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ingest/frame_transforms.h"
#include "ingest/source.h"

namespace tilestage::ingest {

struct Hdf5SourceOptions {
  std::vector<std::string> files;
  std::string dataset;  // empty: discover it in each file (NeXus, CXI)
  // Probe positions [N,2|3] in each file; empty: CXI's sample translation
  // (/entry_1/sample_1/geometry_1/translation, /entry_1/data_1/translation) when present;
  // "none": no positions.
  std::string positions;
  // Pixel mask in each file (nonzero = invalid): [H, W] for every frame, or one per frame with
  // the frames' shape ([N,H,W], [Ny,Nx,H,W]); empty: discover it (NXmx pixel_mask, CXI
  // mask_shared/mask); "none": use none. Masked pixels are invalid: NaN in float output, and in
  // integer output the dtype's maximum (minimum for signed types, as every ingest picks nodata),
  // recorded as the channel's nodata (detectors already write the maximum for gap and overflow
  // pixels: Eiger's 0xFFFFFFFF).
  std::string mask;
  // Per-frame targets [N,h,w] in each file, stacked as the channels of y (named by the last path
  // component); their h x w must equal the transformed frame size.
  std::vector<std::string> targets;
  FrameTransform transform;
  uint64_t batch_bytes = 8ull << 20;  // decoded bytes per HDF5 read (rounded to whole chunks)
};

// Opens every file and checks everything that can be checked before reading frames: datasets,
// filters (plugins), virtual sources, frame sizes equal across files, crop/bin fit, positions and
// targets of the right length and size. Errors name the file and dataset.
Result<std::unique_ptr<Source>> OpenHdf5Source(const Hdf5SourceOptions& options);

}  // namespace tilestage::ingest
