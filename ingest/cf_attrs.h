// CF conventions for variables and coordinates: packing (scale_factor/add_offset), missing data
// (_FillValue, missing_value, valid_min/valid_max/valid_range, the netCDF default fill) and axis
// detection (axis, standard_name, units, positive).
//
// CfPacking describes how one variable's stored values become physical values; UnpackToFloat
// applies it to a block of raw values, writing NaN for missing ones and counting valid ones.
// ClassifyAxis decides what a coordinate is from its attributes, never from its name alone.
// Everything here is a pure function over values: thread-safe, no netCDF-C calls except in
// ReadCfPacking/ReadAxisAttrs, which go through NcFile (serialized).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ingest/netcdf_file.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct CfPacking {
  int stored_type = 0;       // nc_type of the stored values
  bool is_unsigned = false;  // _Unsigned = "true" on a signed netCDF-3 integer type
  double scale_factor = 1.0;
  double add_offset = 0.0;
  bool packed = false;  // scale_factor or add_offset present
  // Stored values that mean "missing": _FillValue (or the netCDF default fill when there is no
  // _FillValue attribute), then every missing_value. Compared on the stored (packed) values.
  std::vector<double> missing;
  // Valid range on the stored values (CF: valid_* are in the packed type); NaN when open.
  std::optional<double> valid_min;
  std::optional<double> valid_max;

  // "scale 0.5 offset 10 fill -32767" for manifests and messages.
  std::string Describe() const;
};

// Reads the CF attributes of a variable. Attributes of the wrong type are InvalidArgument naming
// the file, the variable and the attribute.
Result<CfPacking> ReadCfPacking(const NcFile& file, const NcVarInfo& var);

// Converts n stored values (raw bytes in the stored type, native byte order as nc_get_vara gives
// them) to physical values: missing or out-of-range values become NaN, others
// value * scale_factor + add_offset (in double, then rounded to Out). The output element for
// raw[i] goes to out[i * out_stride]. Returns the number of valid values.
template <typename Out>
uint64_t UnpackToFloat(const CfPacking& packing, const void* raw, size_t n, Out* out,
                       ptrdiff_t out_stride = 1);

enum class AxisKind { kUnknown, kLongitude, kLatitude, kVertical, kTime };
const char* AxisKindName(AxisKind kind);

// The attributes of a coordinate variable that identify its axis (empty when absent).
struct AxisAttrs {
  std::string axis;           // "X", "Y", "Z", "T"
  std::string standard_name;  // "latitude", "air_pressure", "time", ...
  std::string units;          // "degrees_north", "hPa", "hours since 1900-01-01", ...
  std::string positive;       // "up" / "down"
  std::string calendar;
};

// CF 1.x §4: axis first, then standard_name, then units (degrees_north/east, pressure units,
// "<unit> since <date>"), then the presence of `positive` (only vertical axes carry it).
AxisKind ClassifyAxis(const AxisAttrs& attrs);
Result<AxisAttrs> ReadAxisAttrs(const NcFile& file, const NcVarInfo& var);

}  // namespace tilestage::ingest
