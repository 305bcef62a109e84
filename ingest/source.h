// Source: what an ingest input (GeoTIFF scenes, NetCDF time steps, HDF5 frames, TIFF pages)
// yields to the shared ingest driver (ingest/driver.h).
//
// A Source is a list of items (scenes, time steps, frames...). Every item is a channel-first raster
// x [C, H, W] of one dtype, optionally with an aligned second field y [Cy, H, W] (labels,
// forecasting targets) on the same H x W grid. C, Cy and the dtypes are the same for all items;
// H and W may differ per item. The driver cuts windows out of each item and asks an ItemReader for
// the pixels of a region (the bounding box of one row of windows, or the whole item), so a Source
// never has to hold a whole scene in memory.
//
// Validity: a value is invalid when it is NaN, equals the channel's nodata value (FieldInfo), or
// its mask in RegionData is 0. Only valid values enter the statistics; --min-valid counts pixels
// valid in every channel of x.
//
// Items are numbered 0..num_items()-1 and the numbering is the same in every process, so MPI ranks
// split the work by item number and the store's record order is item order for any rank count.
//
// Thread-safety: a Source's const methods may be called from many threads at once. OpenReader()
// may be called from any thread; each ItemReader is used by one thread at a time. Readers of
// libraries that are not thread-safe (netCDF-C, HDF5) must serialize their library calls
// themselves (e.g. a process-wide mutex), everything else in the driver still runs in parallel.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tiling/dtype.h"
#include "tiling/sample.h"
#include "tiling/status.h"

namespace tilestage::ingest {

// One field of the items (x or y): its dtype and per-channel description.
struct FieldInfo {
  DType dtype = DType::kF32;
  std::vector<std::string> channel_names;  // size C
  std::vector<std::string> units;          // size C, or empty when unknown
  // Per channel: the value that marks a missing pixel (GDAL nodata, CF _FillValue), if any.
  std::vector<std::optional<double>> nodata;  // size C, or empty: no nodata values

  int64_t channels() const { return static_cast<int64_t>(channel_names.size()); }
};

struct SourceSchema {
  FieldInfo x;
  std::optional<FieldInfo> y;  // present when items carry a second, aligned field
};

// A pixel rectangle inside an item: rows [row, row + height), columns [col, col + width).
struct Region {
  int64_t row = 0;
  int64_t col = 0;
  int64_t height = 0;
  int64_t width = 0;

  bool operator==(const Region&) const = default;
};

// What is known about an item without reading its pixels.
struct ItemInfo {
  std::string name;  // shown in messages and stored in each tile's metadata ("scene", "time"...)
  int64_t height = 0;
  int64_t width = 0;
  // Copied into the metadata of every tile cut from this item (e.g. {"time": "1995-07-14T12"}).
  nlohmann::json meta = nlohmann::json::object();
  // Input files this item is read from (for provenance hashes); may repeat across items.
  std::vector<std::string> files;
};

// The pixels of one region of one item, as an ItemReader fills them in.
struct RegionData {
  Array x;  // [C, height, width], dtype schema().x.dtype
  Array y;  // [Cy, height, width] when the schema has y; otherwise left empty
  // Optional per-pixel validity (u8, 0 = invalid): [C or 1, height, width]; empty when the only
  // invalid values are NaN and nodata. A mask with 1 channel applies to all channels.
  Array x_mask;
  Array y_mask;
};

class ItemReader {
 public:
  virtual ~ItemReader() = default;
  // Reads `region` (inside the item, already clipped to it) of item `item` into *out, reusing its
  // buffers. Errors name the file, the band/variable and the block/row that failed.
  virtual Status Read(int64_t item, const Region& region, RegionData* out) = 0;
};

class Source {
 public:
  virtual ~Source() = default;

  // Manifest kind: "geotiff", "netcdf", "hdf5", "tiff-stack", ...
  virtual std::string kind() const = 0;
  virtual const SourceSchema& schema() const = 0;
  virtual int64_t num_items() const = 0;
  virtual const ItemInfo& item(int64_t index) const = 0;
  // A new reader; each thread of the driver opens its own (GDAL: one dataset handle per thread).
  virtual Result<std::unique_ptr<ItemReader>> OpenReader() const = 0;

  // Adds source-specific metadata for a tile cut at `window` of `item` (e.g. the tile's
  // geotransform). Called from many threads; must not do I/O. The driver already stores the item
  // index, item name, item meta and the window.
  virtual void AddTileMeta(int64_t item, const Region& window, nlohmann::json* meta) const {}
  // True when reading each tile's window on its own is as cheap as reading a row of windows at
  // once (GDAL, with its block cache per dataset handle): the driver then reads every window
  // straight into the tile buffer. False (the default): one read per row of windows, cut in
  // memory, which suits libraries where every call decompresses whole chunks again.
  virtual bool PrefersWindowReads() const { return false; }
  // Called once before any reader is opened, with the rows each tile spans (the item height for
  // whole items) and the number of reader threads: lets a source size its caches to what the
  // driver will read.
  virtual void PrepareReads(int64_t tile_rows, int threads) const {}
  // Modality attributes for the manifest (CRS per scene, coordinates, NeXus paths...). Called on
  // rank 0 only, after all tiles are written.
  virtual nlohmann::json ManifestAttrs() const { return nlohmann::json::object(); }
};

}  // namespace tilestage::ingest
