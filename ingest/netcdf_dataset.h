// NetcdfDataset: a CF-decoded view of many netCDF files as one time series of [C, H, W] grids.
//
// Open() checks a request (files, variables, levels) against the files: every variable exists in
// every file, dimensions are recognised by their CF attributes (any order; size-1 dimensions that
// are not recognised are squeezed), all variables share one horizontal grid, the requested levels
// exist, and the files' time coordinates (decoded with their calendar) concatenate into one
// strictly increasing series. Channels are `var` for 2-D variables and `var_<level>` (t_850) for
// variables with a vertical axis, in request order.
//
// Reading a step is split in two so callers can parallelize: ReadRaw() reads the stored values
// into a raw buffer, Decode() unpacks it (scale/offset, missing -> NaN) into a channel-first
// float32/float64 Array without any lock. With direct_reads (the default), ReadRaw reads every
// variable whose bytes lie plainly in the file (netCDF-3 formats; contiguous, unfiltered
// netCDF-4) with pread, lock-free (NcFile::ReadDirect); the others go through netCDF-C's
// nc_get_vara, serialized on NetcdfMutex. Both give the same bytes.
//
// Thread-safety: after Open() the dataset is immutable; ReadRaw/Decode/ReadStep may be called from
// many threads at once (netCDF-C calls serialize inside NcFile).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ingest/cf_attrs.h"
#include "ingest/cf_time.h"
#include "ingest/netcdf_file.h"
#include "tiling/sample.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct NetcdfRequest {
  std::vector<std::string> files;      // any order; sorted by their first time stamp
  std::vector<std::string> variables;  // at least one
  std::vector<double> levels;          // empty: every level of each vertical variable
  bool float64 = false;                // unpack to f64 instead of f32
  // Read with pread where the layout allows (see above); false: every read through netCDF-C
  // (the reference path, for comparison and as a fallback).
  bool direct_reads = true;
  // The grid's row (Y) and column (X) dimensions, for grids whose dimensions have no CF
  // coordinate variable (curvilinear grids); empty: from the coordinates, or, for a curvilinear
  // grid, from the 2-D latitude/longitude the variable's `coordinates` attribute names.
  std::string y_dim = "";
  std::string x_dim = "";
};

// The 2-D latitude/longitude of a curvilinear grid ([H, W] each, row-major), when it has them.
struct NetcdfCoords2d {
  std::string lat_name, lon_name;
  std::string lat_units, lon_units;
  std::vector<double> lat, lon;
};

struct NetcdfChannel {
  std::string name;      // "t2m" or "t_850"
  std::string variable;  // "t"
  std::optional<double> level;
  std::string units;  // the variable's units attribute
};

struct NetcdfStep {
  size_t file = 0;   // index into NetcdfDataset::files()
  size_t index = 0;  // time index within that file (0 when the file has no time axis)
  std::optional<int64_t> instant_ms;  // on the dataset's calendar; absent without time axis
  std::string iso;                    // "1995-07-14T12:00:00"; empty without time axis
};

struct NetcdfAxis {
  std::string name;  // the coordinate variable
  std::string units;
  // What a horizontal axis measures, from its CF attributes: "latitude"/"longitude" (geographic
  // degrees), "grid_latitude"/"grid_longitude" (rotated pole), "projection_y_coordinate"/
  // "projection_x_coordinate" (a projected grid, see grid_mapping) or "y"/"x" when unsaid.
  std::string kind;
  std::vector<double> values;

  bool geographic() const { return kind == "latitude" || kind == "longitude"; }
};

class NetcdfDataset {
 public:
  static Result<std::unique_ptr<NetcdfDataset>> Open(const NetcdfRequest& request);
  ~NetcdfDataset();

  const std::vector<std::string>& files() const { return files_; }  // in time order
  const std::vector<NetcdfChannel>& channels() const { return channels_; }
  const std::vector<NetcdfStep>& steps() const { return steps_; }
  int64_t height() const { return static_cast<int64_t>(lat_.values.size()); }
  int64_t width() const { return static_cast<int64_t>(lon_.values.size()); }
  // The grid's Y (rows) and X (columns) axes; geographic latitude/longitude only when their
  // kind says so.
  const NetcdfAxis& latitude() const { return lat_; }
  const NetcdfAxis& longitude() const { return lon_; }
  // The CF grid_mapping of the variables ({"name": variable, "attributes": {...}}), null when
  // they have none; and its CRS as WKT (crs_wkt or spatial_ref), empty when it gives none.
  const nlohmann::json& grid_mapping() const { return grid_mapping_; }
  const std::string& crs_wkt() const { return crs_wkt_; }
  // 2-D latitude/longitude of a curvilinear grid; nullopt for grids with 1-D coordinates only.
  const std::optional<NetcdfCoords2d>& coords_2d() const { return coords_2d_; }
  bool has_time() const { return has_time_; }
  Calendar calendar() const { return calendar_; }
  const std::string& time_units() const { return time_units_; }
  DType dtype() const { return float64_ ? DType::kF64 : DType::kF32; }
  // Bytes of raw (stored-type) data one step reads; and of its decoded [C,H,W] array.
  uint64_t raw_step_bytes() const { return raw_step_bytes_; }
  // The format of file f ("classic", "netcdf4", ...).
  const std::string& file_format(size_t f) const;
  // Whether channel c of file f is read directly (pread) rather than through netCDF-C.
  bool reads_directly(size_t f, size_t c) const;
  uint64_t decoded_step_bytes() const;

  // A rectangle of grid rows [row, row + height) and columns [col, col + width).
  struct Window {
    int64_t row = 0, col = 0, height = 0, width = 0;
  };
  // Raw stored values of one window of one step, channel after channel, each in its variable's
  // dimension order.
  struct RawStep {
    size_t step = 0;
    Window window;
    std::vector<uint8_t> bytes;
  };
  // Reads the window (the whole grid when window.height == 0) of `step`. InvalidArgument for a
  // step or window outside the dataset; netCDF errors name the file, variable and hyperslab.
  Status ReadRaw(size_t step, Window window, RawStep* raw) const;
  // Unpacks into *out ([C, h, w], dtype()) and sets valid[c] to the number of valid values of
  // channel c. out is reshaped as needed (its buffer reused when large enough).
  Status Decode(const RawStep& raw, Array* out, std::vector<uint64_t>* valid) const;
  // ReadRaw + Decode of the whole grid.
  Status ReadStep(size_t step, Array* out, std::vector<uint64_t>* valid) const;

  // Coordinates ("y"/"x" with their kind; also "latitude"/"longitude" when geographic), the
  // grid mapping and CRS, units, calendar, levels, channels, files and per-variable packing and
  // read path ("direct" or "netCDF library (chunked)") for the manifest's attrs.
  nlohmann::json Describe() const;

 private:
  struct ChannelRead;  // how one channel is read from one file
  struct FilePlan;
  struct FileScan;  // one file's plan and what Open compares across files
  NetcdfDataset() = default;

  // The steps of Open: each file on its own, then the files against the first one, then the
  // files in time order.
  static Result<FileScan> ScanFile(const NetcdfRequest& request, const std::string& path);
  Status AdoptFirstFile(FileScan& scan);
  Status CheckLikeFirstFile(const NetcdfRequest& request, const FileScan& scan);
  Status OrderAlongTime(const NetcdfRequest& request,
                        std::vector<std::unique_ptr<FilePlan>> plans);

  std::vector<std::string> files_;
  std::vector<std::unique_ptr<FilePlan>> plans_;  // parallel to files_
  std::vector<NetcdfChannel> channels_;
  std::vector<NetcdfStep> steps_;
  NetcdfAxis lat_, lon_;
  nlohmann::json grid_mapping_;
  std::optional<NetcdfCoords2d> coords_2d_;
  std::string crs_wkt_;
  std::vector<NetcdfAxis> vertical_;  // per requested variable that has one
  bool has_time_ = false;
  Calendar calendar_ = Calendar::kStandard;
  std::string time_units_;
  bool float64_ = false;
  uint64_t raw_step_bytes_ = 0;
};

// "850", "0.5", "1000" — how a level value appears in a channel name.
std::string FormatLevel(double level);

}  // namespace tilestage::ingest
