#include "ingest/cf_attrs.h"

#include <netcdf.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

#include "ingest/cf_time.h"
#include "tiling/vector4.h"

namespace tilestage::ingest {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::optional<double> DefaultFill(int type) {
  switch (type) {
    // netCDF-C and netCDF4-python do not treat the byte default fill as missing: every byte
    // value is commonly meaningful.
    case NC_SHORT:
      return NC_FILL_SHORT;
    case NC_USHORT:
      return NC_FILL_USHORT;
    case NC_INT:
      return NC_FILL_INT;
    case NC_UINT:
      return NC_FILL_UINT;
    case NC_INT64:
      return static_cast<double>(NC_FILL_INT64);
    case NC_UINT64:
      return static_cast<double>(NC_FILL_UINT64);
    case NC_FLOAT:
      return static_cast<double>(NC_FILL_FLOAT);
    case NC_DOUBLE:
      return NC_FILL_DOUBLE;
    default:
      return std::nullopt;
  }
}

// in[i] through memcpy: a step's channels of different widths lie back to back in one buffer
// (NetcdfDataset::Decode), so `in` need not be aligned for T.
template <typename T>
[[gnu::always_inline]] inline T LoadAt(const T* in, size_t i) {
  T v;
  std::memcpy(&v, reinterpret_cast<const unsigned char*>(in) + i * sizeof(T), sizeof v);
  return v;
}

// The unit-stride inner loop, most of the per-value work of a NetCDF ingest. Values compare as
// doubles, as netCDF-C gives attributes; four at a time in double vectors (tiling/vector4.h),
// since the compiler does not vectorize the conversions and selects by itself.
template <typename Stored, typename Out>
TS_AVX2_CLONES __attribute__((noinline)) uint64_t UnpackRun(const Stored* __restrict in, size_t n,
                                                            Out* __restrict out, double m0,
                                                            double m1, double lo, double hi,
                                                            double scale, double offset) {
  if constexpr (std::is_same_v<Stored, float> && std::is_same_v<Out, float>) {
    // Unscaled float data: the same comparisons in float (exact: the attributes were rounded
    // to float), twice the values per register; the compiler vectorizes this loop.
    if (scale == 1.0 && offset == 0.0) {
      const float fm0 = static_cast<float>(m0), fm1 = static_cast<float>(m1);
      const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
      uint32_t count = 0;
      for (size_t i = 0; i < n; ++i) {
        const float v = LoadAt(in, i);
        const bool ok = (v == v) & (v != fm0) & (v != fm1) & (v >= flo) & (v <= fhi);
        count += ok;
        out[i] = ok ? v : std::numeric_limits<float>::quiet_NaN();
      }
      return count;
    }
  }
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  Int4 valid4 = {};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    Double4 v;
    LoadDouble4(in + i, &v);
    const Int4 ok = (v == v) & (v != m0) & (v != m1) & (v >= lo) & (v <= hi);
    valid4 -= ok;  // all ones is -1
    const Double4 physical = v * scale + offset;
    StoreDouble4(ok ? physical : kNaN, out + i);
  }
  uint64_t valid = static_cast<uint64_t>(valid4[0] + valid4[1] + valid4[2] + valid4[3]);
  for (; i < n; ++i) {
    const double v = static_cast<double>(LoadAt(in, i));
    const bool ok = (v == v) & (v != m0) & (v != m1) & (v >= lo) & (v <= hi);
    valid += ok;
    out[i] = ok ? static_cast<Out>(v * scale + offset) : std::numeric_limits<Out>::quiet_NaN();
  }
  return valid;
}

template <typename Stored, typename Out>
uint64_t UnpackTyped(const CfPacking& p, const Stored* in, size_t n, Out* out, ptrdiff_t stride) {
  const double scale = p.scale_factor;
  const double offset = p.add_offset;
  const double lo = p.valid_min.value_or(-std::numeric_limits<double>::infinity());
  const double hi = p.valid_max.value_or(std::numeric_limits<double>::infinity());
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  // A double fill attribute on a float variable (a common CF violation) must still match the
  // float values, so floating missing values are rounded to the stored type first.
  const auto as_stored = [](double m) {
    if constexpr (std::is_floating_point_v<Stored>) {
      return static_cast<double>(static_cast<Stored>(m));
    }
    return m;
  };
  // Two missing values cover nearly all real files (_FillValue and missing_value); further ones
  // are applied in a second pass.
  const double m0 = p.missing.size() > 0 ? as_stored(p.missing[0]) : kNaN;
  const double m1 = p.missing.size() > 1 ? as_stored(p.missing[1]) : m0;
  uint64_t valid = 0;
  if (stride == 1) {
    valid = UnpackRun(in, n, out, m0, m1, lo, hi, scale, offset);
  } else {
    for (size_t i = 0; i < n; ++i) {
      const double v = static_cast<double>(LoadAt(in, i));
      const bool ok = (v == v) & (v != m0) & (v != m1) & (v >= lo) & (v <= hi);
      valid += ok;
      out[i * stride] = ok ? static_cast<Out>(v * scale + offset) : static_cast<Out>(kNaN);
    }
  }
  for (size_t k = 2; k < p.missing.size(); ++k) {
    const double m = as_stored(p.missing[k]);
    for (size_t i = 0; i < n; ++i) {
      Out& o = out[i * stride];
      if (static_cast<double>(LoadAt(in, i)) == m && !std::isnan(o)) {
        o = static_cast<Out>(kNaN);
        --valid;
      }
    }
  }
  return valid;
}

}  // namespace

std::string CfPacking::Describe() const {
  std::ostringstream os;
  os.precision(17);
  os << NcTypeName(stored_type) << (is_unsigned ? " (unsigned)" : "");
  if (packed) os << " scale " << scale_factor << " offset " << add_offset;
  for (double m : missing) os << " missing " << m;
  if (valid_min) os << " valid_min " << *valid_min;
  if (valid_max) os << " valid_max " << *valid_max;
  return os.str();
}

Result<CfPacking> ReadCfPacking(const NcFile& file, const NcVarInfo& var) {
  CfPacking p;
  p.stored_type = var.type;
  if (NcTypeSize(var.type) == 0 || var.type == NC_CHAR) {
    return InvalidArgument(file.path(), ": variable ", var.name, " has type ", NcTypeName(var.type),
                           ", not a numeric type");
  }
  const auto where = [&](const char* attr) {
    return StrCat("variable ", var.name, " attribute ", attr);
  };
  auto num = [&](const char* attr) -> Result<std::optional<std::vector<double>>> {
    auto r = file.NumAttr(var.varid, attr);
    if (!r.ok()) return r.status().WithContext(where(attr));
    if (r->has_value() && (*r)->empty()) {
      return InvalidArgument(file.path(), ": ", where(attr), " is empty");
    }
    return r;
  };
  TS_ASSIGN_OR_RETURN(auto is_unsigned, file.TextAttr(var.varid, "_Unsigned"));
  if (is_unsigned && Lower(*is_unsigned) == "true" &&
      (var.type == NC_BYTE || var.type == NC_SHORT || var.type == NC_INT || var.type == NC_INT64)) {
    p.is_unsigned = true;
    p.stored_type = var.type == NC_BYTE    ? NC_UBYTE
                    : var.type == NC_SHORT ? NC_USHORT
                    : var.type == NC_INT   ? NC_UINT
                                           : NC_UINT64;
  }
  TS_ASSIGN_OR_RETURN(auto scale, num("scale_factor"));
  TS_ASSIGN_OR_RETURN(auto offset, num("add_offset"));
  if (scale) p.scale_factor = (*scale)[0];
  if (offset) p.add_offset = (*offset)[0];
  p.packed = scale.has_value() || offset.has_value();
  if (!std::isfinite(p.scale_factor) || !std::isfinite(p.add_offset)) {
    return InvalidArgument(file.path(), ": variable ", var.name, " has scale_factor ",
                           p.scale_factor, " add_offset ", p.add_offset, " (not finite)");
  }
  TS_ASSIGN_OR_RETURN(auto fill, num("_FillValue"));
  if (fill) {
    p.missing.push_back((*fill)[0]);
  } else if (auto d = DefaultFill(p.stored_type)) {
    p.missing.push_back(*d);
  }
  TS_ASSIGN_OR_RETURN(auto missing, num("missing_value"));
  if (missing) {
    for (double m : *missing) {
      if (std::find(p.missing.begin(), p.missing.end(), m) == p.missing.end()) {
        p.missing.push_back(m);
      }
    }
  }
  TS_ASSIGN_OR_RETURN(auto valid_range, num("valid_range"));
  TS_ASSIGN_OR_RETURN(auto valid_min, num("valid_min"));
  TS_ASSIGN_OR_RETURN(auto valid_max, num("valid_max"));
  if (valid_range) {
    if (valid_range->size() != 2 || (*valid_range)[0] > (*valid_range)[1]) {
      return InvalidArgument(file.path(), ": ", where("valid_range"),
                             " must hold two values, min <= max");
    }
    p.valid_min = (*valid_range)[0];
    p.valid_max = (*valid_range)[1];
  }
  if (valid_min) p.valid_min = (*valid_min)[0];
  if (valid_max) p.valid_max = (*valid_max)[0];
  return p;
}

template <typename Out>
uint64_t UnpackToFloat(const CfPacking& p, const void* raw, size_t n, Out* out,
                       ptrdiff_t out_stride) {
  switch (p.stored_type) {
    case NC_BYTE:
      return UnpackTyped(p, static_cast<const int8_t*>(raw), n, out, out_stride);
    case NC_UBYTE:
      return UnpackTyped(p, static_cast<const uint8_t*>(raw), n, out, out_stride);
    case NC_SHORT:
      return UnpackTyped(p, static_cast<const int16_t*>(raw), n, out, out_stride);
    case NC_USHORT:
      return UnpackTyped(p, static_cast<const uint16_t*>(raw), n, out, out_stride);
    case NC_INT:
      return UnpackTyped(p, static_cast<const int32_t*>(raw), n, out, out_stride);
    case NC_UINT:
      return UnpackTyped(p, static_cast<const uint32_t*>(raw), n, out, out_stride);
    case NC_INT64:
      return UnpackTyped(p, static_cast<const int64_t*>(raw), n, out, out_stride);
    case NC_UINT64:
      return UnpackTyped(p, static_cast<const uint64_t*>(raw), n, out, out_stride);
    case NC_FLOAT:
      return UnpackTyped(p, static_cast<const float*>(raw), n, out, out_stride);
    case NC_DOUBLE:
      return UnpackTyped(p, static_cast<const double*>(raw), n, out, out_stride);
    default:
      break;
  }
  for (size_t i = 0; i < n; ++i) out[i * out_stride] = std::numeric_limits<Out>::quiet_NaN();
  return 0;
}

template uint64_t UnpackToFloat<float>(const CfPacking&, const void*, size_t, float*, ptrdiff_t);
template uint64_t UnpackToFloat<double>(const CfPacking&, const void*, size_t, double*, ptrdiff_t);

const char* AxisKindName(AxisKind kind) {
  switch (kind) {
    case AxisKind::kLongitude:
      return "longitude";
    case AxisKind::kLatitude:
      return "latitude";
    case AxisKind::kVertical:
      return "vertical";
    case AxisKind::kTime:
      return "time";
    case AxisKind::kUnknown:
      break;
  }
  return "unknown";
}

AxisKind ClassifyAxis(const AxisAttrs& attrs) {
  const std::string axis = Lower(attrs.axis);
  if (axis == "x") return AxisKind::kLongitude;
  if (axis == "y") return AxisKind::kLatitude;
  if (axis == "z") return AxisKind::kVertical;
  if (axis == "t") return AxisKind::kTime;
  const std::string sn = Lower(attrs.standard_name);
  if (sn == "longitude" || sn == "grid_longitude" || sn == "projection_x_coordinate") {
    return AxisKind::kLongitude;
  }
  if (sn == "latitude" || sn == "grid_latitude" || sn == "projection_y_coordinate") {
    return AxisKind::kLatitude;
  }
  if (sn == "time") return AxisKind::kTime;
  if (sn == "air_pressure" || sn == "height" || sn == "altitude" || sn == "depth" ||
      sn == "model_level_number" || sn.rfind("atmosphere_", 0) == 0 || sn.rfind("ocean_", 0) == 0) {
    return AxisKind::kVertical;
  }
  std::string units = Lower(attrs.units);
  units.erase(std::remove(units.begin(), units.end(), ' '), units.end());
  static const char* kEast[] = {"degrees_east", "degree_east", "degree_e",
                                "degrees_e",    "degreee",     "degreese"};
  static const char* kNorth[] = {"degrees_north", "degree_north", "degree_n",
                                 "degrees_n",     "degreen",      "degreesn"};
  for (const char* u : kEast) {
    if (units == u) return AxisKind::kLongitude;
  }
  for (const char* u : kNorth) {
    if (units == u) return AxisKind::kLatitude;
  }
  if (LooksLikeTimeUnits(attrs.units)) return AxisKind::kTime;
  static const char* kPressure[] = {"pa",        "hpa", "kpa",     "mbar", "millibar",
                                    "millibars", "bar", "decibar", "dbar", "atm"};
  for (const char* u : kPressure) {
    if (units == u) return AxisKind::kVertical;
  }
  const std::string positive = Lower(attrs.positive);
  if (positive == "up" || positive == "down") return AxisKind::kVertical;
  return AxisKind::kUnknown;
}

Result<AxisAttrs> ReadAxisAttrs(const NcFile& file, const NcVarInfo& var) {
  AxisAttrs a;
  const auto text = [&](const char* name, std::string* out) -> Status {
    auto r = file.TextAttr(var.varid, name);
    if (!r.ok()) return r.status().WithContext(StrCat("coordinate ", var.name));
    if (r->has_value()) *out = **r;
    return Status::Ok();
  };
  TS_RETURN_IF_ERROR(text("axis", &a.axis));
  TS_RETURN_IF_ERROR(text("standard_name", &a.standard_name));
  TS_RETURN_IF_ERROR(text("units", &a.units));
  TS_RETURN_IF_ERROR(text("positive", &a.positive));
  TS_RETURN_IF_ERROR(text("calendar", &a.calendar));
  return a;
}

}  // namespace tilestage::ingest
