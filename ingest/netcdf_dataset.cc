#include "ingest/netcdf_dataset.h"

#include <netcdf.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

namespace tilestage::ingest {

std::string FormatLevel(double level) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.10g", level);
  return buf;
}

namespace {

bool SameValue(double a, double b) {
  return a == b || std::fabs(a - b) <= 1e-6 * std::max(1.0, std::max(std::fabs(a), std::fabs(b)));
}

bool SameValues(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameValue(a[i], b[i])) return false;
  }
  return true;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string JoinLevels(const std::vector<double>& values) {
  std::string out;
  for (double v : values) out += (out.empty() ? "" : ", ") + FormatLevel(v);
  return out;
}

struct DimRole {
  AxisKind kind = AxisKind::kUnknown;
  std::optional<NcVarInfo> coordinate;  // the 1-D coordinate variable, when there is one
  AxisAttrs attrs;
};

// What one variable looks like in one file, axes resolved.
struct VarLayout {
  NcVarInfo info;
  CfPacking packing;
  std::string units;
  std::string long_name;
  std::string grid_mapping;  // the grid_mapping variable's name; empty when none
  std::optional<std::pair<NcVarInfo, NcVarInfo>> coords_2d;  // 2-D latitude, longitude
  int t_pos = -1, z_pos = -1, y_pos = -1, x_pos = -1;
  NetcdfAxis lat, lon;
  std::optional<NetcdfAxis> vertical;
  std::optional<AxisAttrs> time_attrs;
  std::optional<NcVarInfo> time_coordinate;  // dimension or scalar coordinate
};

// A 1-D variable named like the dimension and indexed by it: the CF coordinate variable.
std::optional<NcVarInfo> CoordinateVariable(const NcFile& file, const std::string& dim_name) {
  auto var = file.Find(dim_name);
  if (!var || var->dim_names.size() != 1 || var->dim_names[0] != dim_name) return std::nullopt;
  return var;
}

// The kind of a horizontal axis (NetcdfAxis::kind) from its attributes.
std::string HorizontalKind(const AxisAttrs& attrs, bool y) {
  std::string sn = attrs.standard_name;
  std::transform(sn.begin(), sn.end(), sn.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* known : {"latitude", "longitude", "grid_latitude", "grid_longitude",
                            "projection_y_coordinate", "projection_x_coordinate"}) {
    if (sn == known) return sn;
  }
  // No standard_name: geographic when the units are degrees north/east (ClassifyAxis's test).
  AxisAttrs by_units;
  by_units.units = attrs.units;
  const AxisKind kind = ClassifyAxis(by_units);
  if (y && kind == AxisKind::kLatitude) return "latitude";
  if (!y && kind == AxisKind::kLongitude) return "longitude";
  return y ? "y" : "x";
}

Result<NetcdfAxis> ReadAxis(const NcFile& file, const NcVarInfo& var, const AxisAttrs& attrs) {
  NetcdfAxis axis;
  axis.name = var.name;
  axis.units = attrs.units;
  TS_ASSIGN_OR_RETURN(axis.values, file.ReadAllDouble(var));
  return axis;
}

// The 2-D latitude and longitude a variable's `coordinates` attribute names (CF §5.2), on the
// same two dimensions; nullopt when it names none.
Result<std::optional<std::pair<NcVarInfo, NcVarInfo>>> FindCoords2d(const NcFile& file,
                                                                    const NcVarInfo& var) {
  std::optional<std::pair<NcVarInfo, NcVarInfo>> none;
  TS_ASSIGN_OR_RETURN(auto coordinates, file.TextAttr(var.varid, "coordinates"));
  if (!coordinates) return none;
  std::optional<NcVarInfo> lat, lon;
  std::string token;
  std::istringstream words(*coordinates);
  while (words >> token) {
    auto c = file.Find(token);
    if (!c || c->dim_names.size() != 2) continue;
    TS_ASSIGN_OR_RETURN(auto attrs, ReadAxisAttrs(file, *c));
    const AxisKind kind = ClassifyAxis(attrs);
    if (kind == AxisKind::kLatitude) lat = c;
    if (kind == AxisKind::kLongitude) lon = c;
  }
  if (!lat || !lon || lat->dim_names != lon->dim_names) return none;
  return std::make_optional(std::make_pair(*lat, *lon));
}

// Row/column positions 0..n-1: the axis of a grid dimension without a coordinate variable.
NetcdfAxis IndexAxis(const std::string& dim, size_t n, bool y) {
  NetcdfAxis axis;
  axis.name = dim;
  axis.kind = y ? "y" : "x";
  axis.values.resize(n);
  std::iota(axis.values.begin(), axis.values.end(), 0.0);
  return axis;
}

Result<VarLayout> ResolveVariable(const NcFile& file, const std::string& name,
                                  const NetcdfRequest& request) {
  VarLayout v;
  TS_ASSIGN_OR_RETURN(v.info, file.Inquire(name));
  TS_ASSIGN_OR_RETURN(v.packing, ReadCfPacking(file, v.info));
  TS_ASSIGN_OR_RETURN(auto units, file.TextAttr(v.info.varid, "units"));
  if (units) v.units = *units;
  TS_ASSIGN_OR_RETURN(auto long_name, file.TextAttr(v.info.varid, "long_name"));
  if (long_name) v.long_name = *long_name;
  TS_ASSIGN_OR_RETURN(auto grid_mapping, file.TextAttr(v.info.varid, "grid_mapping"));
  if (grid_mapping) {
    // "crs" or CF 1.7's extended "crs: x y": the first word names the variable.
    std::istringstream words(*grid_mapping);
    words >> v.grid_mapping;
    if (!v.grid_mapping.empty() && v.grid_mapping.back() == ':') v.grid_mapping.pop_back();
  }
  const std::string where = StrCat(file.path(), ": variable ", name);
  // The grid dimensions: named by the request, else those of 2-D latitude/longitude.
  std::string y_dim = request.y_dim, x_dim = request.x_dim;
  TS_ASSIGN_OR_RETURN(v.coords_2d, FindCoords2d(file, v.info));
  if (y_dim.empty() && v.coords_2d) {
    y_dim = v.coords_2d->first.dim_names[0];
    x_dim = v.coords_2d->first.dim_names[1];
  }
  for (const std::string* dim : {&y_dim, &x_dim}) {
    if (!dim->empty() &&
        std::find(v.info.dim_names.begin(), v.info.dim_names.end(), *dim) == v.info.dim_names.end())
      return InvalidArgument(where, ": has no dimension ", *dim, " (--grid-dims ", y_dim, ",",
                             x_dim, "; its dimensions: ", JoinNames(v.info.dim_names), ")");
  }
  for (size_t i = 0; i < v.info.dim_names.size(); ++i) {
    const std::string& dim = v.info.dim_names[i];
    DimRole role;
    role.coordinate = CoordinateVariable(file, dim);
    if (role.coordinate) {
      TS_ASSIGN_OR_RETURN(role.attrs, ReadAxisAttrs(file, *role.coordinate));
      role.kind = ClassifyAxis(role.attrs);
    }
    if (dim == y_dim || dim == x_dim) {
      const bool y = dim == y_dim;
      if (*(y ? &v.y_pos : &v.x_pos) >= 0)
        return InvalidArgument(where, ": two ", y ? "Y" : "X", " dimensions (",
                               v.info.dim_names[*(y ? &v.y_pos : &v.x_pos)], " and ", dim, ")");
      *(y ? &v.y_pos : &v.x_pos) = static_cast<int>(i);
      NetcdfAxis& axis = y ? v.lat : v.lon;
      const AxisKind expected = y ? AxisKind::kLatitude : AxisKind::kLongitude;
      if (role.coordinate && role.kind == expected) {
        TS_ASSIGN_OR_RETURN(axis, ReadAxis(file, *role.coordinate, role.attrs));
        axis.kind = HorizontalKind(role.attrs, y);
      } else {
        axis = IndexAxis(dim, v.info.dim_lens[i], y);
      }
      continue;
    }
    if (role.kind == AxisKind::kUnknown) {
      if (v.info.dim_lens[i] == 1) continue;  // squeezed: read index 0
      return InvalidArgument(
          where, ": dimension ", dim, " (length ", v.info.dim_lens[i],
          ") is not recognised as a CF latitude, longitude, vertical or time axis (its "
          "coordinate variable needs axis, standard_name, units or positive; a curvilinear "
          "grid's dimensions are found from 2-D latitude/longitude in the variable's "
          "coordinates attribute, or named with --grid-dims Y,X)");
    }
    int* pos = role.kind == AxisKind::kLongitude  ? &v.x_pos
               : role.kind == AxisKind::kLatitude ? &v.y_pos
               : role.kind == AxisKind::kVertical ? &v.z_pos
                                                  : &v.t_pos;
    if (*pos >= 0) {
      return InvalidArgument(where, ": two ", AxisKindName(role.kind), " dimensions (",
                             v.info.dim_names[*pos], " and ", dim, ")");
    }
    *pos = static_cast<int>(i);
    switch (role.kind) {
      case AxisKind::kLongitude: {
        TS_ASSIGN_OR_RETURN(v.lon, ReadAxis(file, *role.coordinate, role.attrs));
        v.lon.kind = HorizontalKind(role.attrs, false);
        break;
      }
      case AxisKind::kLatitude: {
        TS_ASSIGN_OR_RETURN(v.lat, ReadAxis(file, *role.coordinate, role.attrs));
        v.lat.kind = HorizontalKind(role.attrs, true);
        break;
      }
      case AxisKind::kVertical: {
        TS_ASSIGN_OR_RETURN(auto axis, ReadAxis(file, *role.coordinate, role.attrs));
        v.vertical = std::move(axis);
        break;
      }
      case AxisKind::kTime:
        v.time_attrs = role.attrs;
        v.time_coordinate = role.coordinate;
        break;
      case AxisKind::kUnknown:
        break;
    }
  }
  if (v.y_pos < 0 || v.x_pos < 0) {
    std::string dims;
    for (size_t i = 0; i < v.info.dim_names.size(); ++i) {
      dims += StrCat(i ? ", " : "", v.info.dim_names[i], "=", v.info.dim_lens[i]);
    }
    return InvalidArgument(where, " (", dims, ") has no ",
                           v.y_pos < 0 ? "latitude (Y)" : "longitude (X)",
                           " dimension recognised by CF attributes");
  }
  if (v.t_pos < 0) {
    // A scalar time coordinate (CF §5.7), as ERA5 extracts for one time carry:
    // u10(latitude, longitude) with coordinates = "time" and a 0-d time variable.
    TS_ASSIGN_OR_RETURN(auto coordinates, file.TextAttr(v.info.varid, "coordinates"));
    if (coordinates) {
      std::string token;
      std::istringstream words(*coordinates);
      while (words >> token) {
        auto scalar = file.Find(token);
        if (!scalar || !scalar->dim_names.empty()) continue;
        TS_ASSIGN_OR_RETURN(auto attrs, ReadAxisAttrs(file, *scalar));
        if (ClassifyAxis(attrs) == AxisKind::kTime) {
          v.time_attrs = attrs;
          v.time_coordinate = scalar;
          break;
        }
      }
    }
  }
  return v;
}

NcDirectLayout NotDirectByRequest() {
  NcDirectLayout layout;
  layout.reason = "direct reads off";
  return layout;
}

}  // namespace

struct NetcdfDataset::ChannelRead {
  NcVarInfo var;
  CfPacking packing;
  std::vector<size_t> start, count;
  int t_pos = -1, y_pos = -1, x_pos = -1;
  bool x_major = false;  // the slab is [X][Y] (latitude varies fastest)
  size_t type_size = 0;
  NcDirectLayout direct;  // direct.direct: read with pread instead of nc_get_vara
};

struct NetcdfDataset::FilePlan {
  std::unique_ptr<NcFile> file;
  std::vector<ChannelRead> reads;  // parallel to channels_
  size_t num_steps = 1;
  bool has_time = false;
  Calendar calendar = Calendar::kStandard;
  std::string time_units;
  std::vector<int64_t> instants;
  uint64_t raw_step_bytes = 0;
  std::vector<std::pair<std::string, std::string>> packing;     // variable -> description
  std::vector<std::pair<std::string, std::string>> read_paths;  // variable -> "direct", ...
};

struct NetcdfDataset::FileScan {
  std::unique_ptr<FilePlan> plan;
  std::vector<NetcdfChannel> channels;
  std::vector<NetcdfAxis> verticals;
  VarLayout first;  // the first requested variable: its grid is the file's
};

NetcdfDataset::~NetcdfDataset() = default;

namespace {

Status ValidateRequest(const NetcdfRequest& request) {
  if (request.files.empty()) return InvalidArgument("no netCDF files given");
  if (request.variables.empty()) return InvalidArgument("no variables requested (--vars)");
  std::set<std::string> seen;
  for (const auto& v : request.variables) {
    if (v.empty()) return InvalidArgument("empty variable name in the request");
    if (!seen.insert(v).second) return InvalidArgument("variable ", v, " requested twice");
  }
  return Status::Ok();
}

// Every variable of a file is on the grid of the first one.
Status CheckSameGrid(const std::string& path, const VarLayout& first, const VarLayout& v) {
  if (SameValues(first.lat.values, v.lat.values) && SameValues(first.lon.values, v.lon.values))
    return Status::Ok();
  return InvalidArgument(path, ": variables ", first.info.name, " (", first.lat.name, "=",
                         first.lat.values.size(), ", ", first.lon.name, "=",
                         first.lon.values.size(), ") and ", v.info.name, " (", v.lat.name, "=",
                         v.lat.values.size(), ", ", v.lon.name, "=", v.lon.values.size(),
                         ") are on different grids; one store holds one grid (ingest them "
                         "separately)");
}

// Every variable must agree on time: all on the same time axis, or all without one.
Status CheckSameTimeAxis(const std::string& path, const VarLayout& time_source,
                         const VarLayout& v) {
  const bool has_time_dim = v.t_pos >= 0;
  const bool first_dim = time_source.t_pos >= 0;
  if (first_dim != has_time_dim ||
      (has_time_dim &&
       time_source.info.dim_lens[time_source.t_pos] != v.info.dim_lens[v.t_pos]))
    return InvalidArgument(path, ": variables ", time_source.info.name, " and ", v.info.name,
                           " do not share one time axis");
  return Status::Ok();
}

// Indices on v's vertical axis of the requested levels (all levels when none are requested).
Result<std::vector<size_t>> SelectLevels(const std::string& path, const std::string& name,
                                         const VarLayout& v, const NetcdfRequest& request) {
  const auto& values = v.vertical->values;
  std::vector<size_t> indices;
  if (request.levels.empty()) {
    indices.resize(values.size());
    std::iota(indices.begin(), indices.end(), size_t{0});
    return indices;
  }
  for (double level : request.levels) {
    size_t k = 0;
    while (k < values.size() && !SameValue(values[k], level)) ++k;
    if (k == values.size())
      return NotFound(path, ": variable ", name, " has no level ", FormatLevel(level),
                      " on its vertical axis ", v.vertical->name, " (levels: ", JoinLevels(values),
                      ")");
    indices.push_back(k);
  }
  return indices;
}

// A file's time axis: none (one step), or the decoded instants of its CF time coordinate.
struct FileTime {
  bool has_time = false;
  Calendar calendar = Calendar::kStandard;
  std::string units;
  std::vector<int64_t> instants;
  size_t num_steps = 1;
};

Result<FileTime> ReadTimeAxis(const NcFile& file, const std::string& path,
                              const VarLayout& time_source) {
  FileTime time;
  if (!time_source.time_coordinate) {
    if (time_source.t_pos >= 0) return Internal(path, ": time dimension without coordinate");
    return time;
  }
  const AxisAttrs& attrs = *time_source.time_attrs;
  const std::string coord = time_source.time_coordinate->name;
  auto calendar = ParseCalendar(attrs.calendar);
  if (!calendar.ok())
    return calendar.status().WithContext(StrCat(path, ": time coordinate ", coord));
  auto units = ParseTimeUnits(attrs.units, *calendar);
  if (!units.ok()) return units.status().WithContext(StrCat(path, ": time coordinate ", coord));
  TS_ASSIGN_OR_RETURN(auto values, file.ReadAllDouble(*time_source.time_coordinate));
  if (time_source.t_pos >= 0 && values.size() != time_source.info.dim_lens[time_source.t_pos])
    return Internal(path, ": time coordinate length mismatch");
  for (size_t i = 0; i < values.size(); ++i) {
    auto instant = DecodeTime(*units, values[i]);
    if (!instant.ok())
      return instant.status().WithContext(StrCat(path, ": time coordinate ", coord, " [", i, "]"));
    if (!time.instants.empty() && *instant <= time.instants.back())
      return InvalidArgument(path, ": time coordinate ", coord, " is not strictly increasing: [",
                             i - 1, "] ", InstantToIso(*calendar, time.instants.back()), ", [",
                             i, "] ", InstantToIso(*calendar, *instant),
                             *instant == time.instants.back() ? " (duplicate time)" : "");
    time.instants.push_back(*instant);
  }
  time.has_time = true;
  time.calendar = *calendar;
  time.units = attrs.units;
  time.num_steps = time.instants.size();
  return time;
}

}  // namespace

// Resolves the requested variables in one file: its channels (one per variable and level), how
// each is read, and its time axis.
Result<NetcdfDataset::FileScan> NetcdfDataset::ScanFile(const NetcdfRequest& request,
                                                         const std::string& path) {
  FileScan scan;
  scan.plan = std::make_unique<FilePlan>();
  FilePlan* plan = scan.plan.get();
  TS_ASSIGN_OR_RETURN(plan->file, NcFile::Open(path));
  const NcFile& file = *plan->file;
  std::optional<VarLayout> time_source;
  for (const std::string& name : request.variables) {
    TS_ASSIGN_OR_RETURN(VarLayout v, ResolveVariable(file, name, request));
    if (!time_source) {
      scan.first = v;
      time_source = v;
    } else {
      TS_RETURN_IF_ERROR(CheckSameGrid(path, scan.first, v));
      TS_RETURN_IF_ERROR(CheckSameTimeAxis(path, *time_source, v));
    }
    std::vector<size_t> level_indices;
    if (v.vertical) {
      TS_ASSIGN_OR_RETURN(level_indices, SelectLevels(path, name, v, request));
      scan.verticals.push_back(*v.vertical);
    }
    NcDirectLayout direct = NotDirectByRequest();
    if (request.direct_reads) {
      TS_ASSIGN_OR_RETURN(direct, file.DirectLayout(v.info));
    }
    const size_t type_size = NcTypeSize(v.packing.stored_type);
    const size_t plane = scan.first.lat.values.size() * scan.first.lon.values.size();
    const size_t num_levels = v.vertical ? level_indices.size() : 1;
    for (size_t l = 0; l < num_levels; ++l) {
      NetcdfChannel ch;
      ch.variable = name;
      ch.units = v.units;
      ChannelRead read;
      read.var = v.info;
      read.packing = v.packing;
      read.t_pos = v.t_pos;
      read.y_pos = v.y_pos;
      read.x_pos = v.x_pos;
      read.type_size = type_size;
      read.x_major = v.x_pos < v.y_pos;
      read.direct = direct;
      read.start.assign(v.info.dim_lens.size(), 0);
      read.count.assign(v.info.dim_lens.size(), 1);
      read.count[v.y_pos] = v.info.dim_lens[v.y_pos];
      read.count[v.x_pos] = v.info.dim_lens[v.x_pos];
      if (v.vertical) {
        ch.level = v.vertical->values[level_indices[l]];
        ch.name = name + "_" + FormatLevel(*ch.level);
        read.start[v.z_pos] = level_indices[l];
      } else {
        ch.name = name;
      }
      plan->raw_step_bytes += plane * type_size;
      plan->reads.push_back(std::move(read));
      scan.channels.push_back(std::move(ch));
    }
    plan->packing.emplace_back(name, v.packing.Describe());
    plan->read_paths.emplace_back(name, direct.Describe());
  }
  TS_ASSIGN_OR_RETURN(FileTime time, ReadTimeAxis(file, path, *time_source));
  plan->has_time = time.has_time;
  plan->calendar = time.calendar;
  plan->time_units = std::move(time.units);
  plan->instants = std::move(time.instants);
  plan->num_steps = time.num_steps;
  return scan;
}

namespace {

// The 2-D latitude/longitude of the grid of `first` in `file`, when it has them on its Y/X
// dimensions.
Result<std::optional<NetcdfCoords2d>> ReadCoords2d(const NcFile& file, const VarLayout& first) {
  if (!(first.coords_2d && first.y_pos >= 0 &&
        first.coords_2d->first.dim_names ==
            std::vector<std::string>{first.info.dim_names[first.y_pos],
                                     first.info.dim_names[first.x_pos]}))
    return std::optional<NetcdfCoords2d>();
  NetcdfCoords2d c;
  const auto& [lat, lon] = *first.coords_2d;
  c.lat_name = lat.name;
  c.lon_name = lon.name;
  TS_ASSIGN_OR_RETURN(auto lat_attrs, ReadAxisAttrs(file, lat));
  TS_ASSIGN_OR_RETURN(auto lon_attrs, ReadAxisAttrs(file, lon));
  c.lat_units = lat_attrs.units;
  c.lon_units = lon_attrs.units;
  TS_ASSIGN_OR_RETURN(c.lat, file.ReadAllDouble(lat));
  TS_ASSIGN_OR_RETURN(c.lon, file.ReadAllDouble(lon));
  return std::optional<NetcdfCoords2d>(std::move(c));
}

// Where two 2-D coordinate arrays first differ ("lat[3,7] 41.2 vs 41.25"), empty when equal.
std::string FirstDifference(const std::string& name, const std::vector<double>& a,
                            const std::vector<double>& b, int64_t width) {
  if (a.size() != b.size()) return StrCat(name, " has ", b.size(), " values, not ", a.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (!SameValue(a[i], b[i]))
      return StrCat(name, "[", int64_t(i) / width, ",", int64_t(i) % width, "] ", b[i], " vs ",
                    a[i]);
  return "";
}

}  // namespace

// The first file sets the channels, the grid (with 2-D coordinates and grid mapping) and the
// vertical axes that the others must match.
Status NetcdfDataset::AdoptFirstFile(FileScan& scan) {
  const VarLayout& first = scan.first;
  const NcFile& file = *scan.plan->file;
  const std::string& path = file.path();
  channels_ = std::move(scan.channels);
  lat_ = first.lat;
  lon_ = first.lon;
  TS_ASSIGN_OR_RETURN(coords_2d_, ReadCoords2d(file, first));
  if (!first.grid_mapping.empty()) {
    auto gm = file.Find(first.grid_mapping);
    if (!gm)
      return InvalidArgument(path, ": variable ", first.info.name, ": grid_mapping \"",
                             first.grid_mapping, "\" names no variable of the file");
    TS_ASSIGN_OR_RETURN(auto attrs, file.AllAttrs(gm->varid));
    grid_mapping_ = {{"name", gm->name}, {"attributes", attrs}};
    for (const char* key : {"crs_wkt", "spatial_ref"}) {
      if (attrs.contains(key) && attrs[key].is_string()) {
        crs_wkt_ = attrs[key].get<std::string>();
        break;
      }
    }
  }
  vertical_ = std::move(scan.verticals);
  raw_step_bytes_ = scan.plan->raw_step_bytes;
  return Status::Ok();
}

// Every later file has the first one's grid and channels (levels).
Status NetcdfDataset::CheckLikeFirstFile(const NetcdfRequest& request, const FileScan& scan) {
  const std::string& path = scan.plan->file->path();
  const std::string& first_path = request.files[0];
  const VarLayout& first = scan.first;
  if (!SameValues(lat_.values, first.lat.values) || !SameValues(lon_.values, first.lon.values)) {
    return InvalidArgument(
        path, ": grid (", first.lat.name, "=", first.lat.values.size(), ", ", first.lon.name,
        "=", first.lon.values.size(), ") differs from ", first_path, " (", lat_.name, "=",
        lat_.values.size(), ", ", lon_.name, "=", lon_.values.size(), ")");
  }
  // A curvilinear grid is its 2-D latitude/longitude: the same Y/X sizes may place the pixels
  // elsewhere, and tiles keep the first file's coordinates.
  TS_ASSIGN_OR_RETURN(const std::optional<NetcdfCoords2d> coords,
                      ReadCoords2d(*scan.plan->file, first));
  if (coords.has_value() != coords_2d_.has_value())
    return InvalidArgument(path, ": ", coords ? "has" : "lacks", " the 2-D latitude/longitude ",
                           coords ? coords->lat_name : coords_2d_->lat_name, "/",
                           coords ? coords->lon_name : coords_2d_->lon_name, " that ", first_path,
                           coords ? " lacks" : " has", "; one store holds one grid");
  if (coords) {
    const int64_t width = std::max<int64_t>(1, static_cast<int64_t>(lon_.values.size()));
    std::string diff = FirstDifference(coords->lat_name, coords_2d_->lat, coords->lat, width);
    if (diff.empty()) diff = FirstDifference(coords->lon_name, coords_2d_->lon, coords->lon, width);
    if (!diff.empty())
      return InvalidArgument(path, ": curvilinear grid differs from ", first_path, " (", diff,
                             " there); one store holds one grid: ingest each grid into its own "
                             "store");
  }
  const std::vector<NetcdfChannel>& channels = scan.channels;
  if (channels.size() != channels_.size()) {
    return InvalidArgument(path, ": has ", channels.size(), " channels for the request, ",
                           first_path, " has ", channels_.size(),
                           " (different vertical levels?)");
  }
  for (size_t c = 0; c < channels.size(); ++c) {
    if (channels[c].name != channels_[c].name) {
      return InvalidArgument(path, ": channel ", c, " is ", channels[c].name, " but ",
                             first_path, " has ", channels_[c].name);
    }
  }
  raw_step_bytes_ = std::max(raw_step_bytes_, scan.plan->raw_step_bytes);
  return Status::Ok();
}

// Orders the files along time, checks that they do not overlap, and lists the steps.
Status NetcdfDataset::OrderAlongTime(const NetcdfRequest& request,
                                     std::vector<std::unique_ptr<FilePlan>> plans) {
  const size_t timed = static_cast<size_t>(
      std::count_if(plans.begin(), plans.end(), [](const auto& p) { return p->has_time; }));
  if (timed != 0 && timed != plans.size()) {
    for (size_t f = 0; f < plans.size(); ++f) {
      if (!plans[f]->has_time) {
        return InvalidArgument(request.files[f],
                               ": has no time coordinate, but other files in the request do");
      }
    }
  }
  std::vector<size_t> order(plans.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (timed == 0) {
    if (plans.size() > 1) {
      return InvalidArgument("none of the ", plans.size(), " files (", request.files[0],
                             ", ...) has a CF time coordinate, so they cannot be ordered along "
                             "time; ingest one at a time");
    }
  } else {
    for (size_t f = 1; f < plans.size(); ++f) {
      if (plans[f]->calendar != plans[0]->calendar) {
        return InvalidArgument(request.files[f], ": calendar ", CalendarName(plans[f]->calendar),
                               " differs from ", request.files[0], " (",
                               CalendarName(plans[0]->calendar), ")");
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return plans[a]->instants.front() < plans[b]->instants.front();
    });
    has_time_ = true;
    calendar_ = plans[0]->calendar;
    time_units_ = plans[order[0]]->time_units;
    for (size_t k = 1; k < order.size(); ++k) {
      const FilePlan& prev = *plans[order[k - 1]];
      const FilePlan& next = *plans[order[k]];
      if (next.instants.front() <= prev.instants.back()) {
        return InvalidArgument(
            "files overlap in time: ", request.files[order[k - 1]], " covers ",
            InstantToIso(calendar_, prev.instants.front()), " .. ",
            InstantToIso(calendar_, prev.instants.back()), " and ", request.files[order[k]],
            " starts at ", InstantToIso(calendar_, next.instants.front()),
            next.instants.front() == prev.instants.back() ? " (duplicate time)" : "");
      }
    }
  }
  for (size_t k = 0; k < order.size(); ++k) {
    files_.push_back(request.files[order[k]]);
    plans_.push_back(std::move(plans[order[k]]));
    const FilePlan& plan = *plans_.back();
    for (size_t i = 0; i < plan.num_steps; ++i) {
      NetcdfStep step;
      step.file = k;
      step.index = i;
      if (plan.has_time) {
        step.instant_ms = plan.instants[i];
        step.iso = InstantToIso(calendar_, plan.instants[i]);
      }
      steps_.push_back(std::move(step));
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<NetcdfDataset>> NetcdfDataset::Open(const NetcdfRequest& request) {
  TS_RETURN_IF_ERROR(ValidateRequest(request));
  std::unique_ptr<NetcdfDataset> ds(new NetcdfDataset());
  ds->float64_ = request.float64;
  std::vector<std::unique_ptr<FilePlan>> plans;
  for (size_t f = 0; f < request.files.size(); ++f) {
    TS_ASSIGN_OR_RETURN(FileScan scan, ScanFile(request, request.files[f]));
    if (f == 0) {
      TS_RETURN_IF_ERROR(ds->AdoptFirstFile(scan));
    } else {
      TS_RETURN_IF_ERROR(ds->CheckLikeFirstFile(request, scan));
    }
    plans.push_back(std::move(scan.plan));
  }
  TS_RETURN_IF_ERROR(ds->OrderAlongTime(request, std::move(plans)));
  return ds;
}

uint64_t NetcdfDataset::decoded_step_bytes() const {
  return static_cast<uint64_t>(channels_.size()) * height() * width() * DTypeSize(dtype());
}

const std::string& NetcdfDataset::file_format(size_t f) const {
  return plans_.at(f)->file->format();
}

bool NetcdfDataset::reads_directly(size_t f, size_t c) const {
  return plans_.at(f)->reads.at(c).direct.direct;
}

Status NetcdfDataset::ReadRaw(size_t step, Window window, RawStep* raw) const {
  if (step >= steps_.size()) {
    return InvalidArgument("step ", step, " out of range (", steps_.size(), " steps)");
  }
  if (window.height == 0 && window.width == 0) window = {0, 0, height(), width()};
  if (window.row < 0 || window.col < 0 || window.height <= 0 || window.width <= 0 ||
      window.row + window.height > height() || window.col + window.width > width()) {
    return InvalidArgument("window rows ", window.row, "+", window.height, " cols ", window.col,
                           "+", window.width, " is outside the ", height(), "x", width(), " grid");
  }
  const NetcdfStep& s = steps_[step];
  const FilePlan& plan = *plans_[s.file];
  raw->step = step;
  raw->window = window;
  const size_t plane = static_cast<size_t>(window.height * window.width);
  size_t total = 0;
  for (const ChannelRead& read : plan.reads) total += plane * read.type_size;
  raw->bytes.resize(total);
  std::vector<size_t> start, count;
  size_t offset = 0;
  for (const ChannelRead& read : plan.reads) {
    start = read.start;
    count = read.count;
    if (read.t_pos >= 0) start[read.t_pos] = s.index;
    start[read.y_pos] = static_cast<size_t>(window.row);
    count[read.y_pos] = static_cast<size_t>(window.height);
    start[read.x_pos] = static_cast<size_t>(window.col);
    count[read.x_pos] = static_cast<size_t>(window.width);
    uint8_t* out = raw->bytes.data() + offset;
    const Status read_status = read.direct.direct
                                   ? plan.file->ReadDirect(read.direct, read.var, start, count, out)
                                   : plan.file->ReadRaw(read.var, start, count, out);
    if (!read_status.ok()) {
      return read_status.WithContext(
          StrCat("step ", step, s.iso.empty() ? std::string() : " (" + s.iso + ")"));
    }
    offset += plane * read.type_size;
  }
  return Status::Ok();
}

Status NetcdfDataset::Decode(const RawStep& raw, Array* out, std::vector<uint64_t>* valid) const {
  const FilePlan& plan = *plans_[steps_.at(raw.step).file];
  const int64_t h = raw.window.height, w = raw.window.width;
  const size_t plane = static_cast<size_t>(h * w);
  size_t total = 0;
  for (const ChannelRead& read : plan.reads) total += plane * read.type_size;
  if (raw.bytes.size() != total) {
    return Internal("raw step ", raw.step, " has ", raw.bytes.size(), " bytes, expected ", total);
  }
  const std::vector<int64_t> shape = {static_cast<int64_t>(channels_.size()), h, w};
  out->dtype = dtype();
  out->shape = shape;
  out->data.resize(plane * channels_.size() * DTypeSize(out->dtype));
  valid->assign(channels_.size(), 0);
  const auto decode = [&](auto* base) {
    size_t offset = 0;
    for (size_t c = 0; c < plan.reads.size(); ++c) {
      const ChannelRead& read = plan.reads[c];
      const uint8_t* src = raw.bytes.data() + offset;
      offset += plane * read.type_size;
      auto* dst = base + c * plane;
      if (!read.x_major) {
        (*valid)[c] = UnpackToFloat(read.packing, src, plane, dst, 1);
      } else {
        uint64_t n = 0;
        for (int64_t x = 0; x < w; ++x) {
          n += UnpackToFloat(read.packing, src + x * h * read.type_size, static_cast<size_t>(h),
                             dst + x, w);
        }
        (*valid)[c] = n;
      }
    }
  };
  if (float64_) {
    decode(reinterpret_cast<double*>(out->data.data()));
  } else {
    decode(reinterpret_cast<float*>(out->data.data()));
  }
  return Status::Ok();
}

Status NetcdfDataset::ReadStep(size_t step, Array* out, std::vector<uint64_t>* valid) const {
  RawStep raw;
  TS_RETURN_IF_ERROR(ReadRaw(step, Window{}, &raw));
  return Decode(raw, out, valid);
}

nlohmann::json NetcdfDataset::Describe() const {
  using nlohmann::json;
  json j;
  for (const NetcdfAxis* axis : {&lat_, &lon_}) {
    json aj = {{"name", axis->name},
               {"units", axis->units},
               {"kind", axis->kind},
               {"values", axis->values}};
    j[axis == &lat_ ? "y" : "x"] = aj;
    if (axis->geographic()) j[axis->kind] = aj;
  }
  if (!grid_mapping_.is_null()) j["grid_mapping"] = grid_mapping_;
  if (coords_2d_) {
    // The values stay out of the manifest (H x W each); every tile carries its own bounds.
    j["coordinates_2d"] = {
        {"latitude", {{"name", coords_2d_->lat_name}, {"units", coords_2d_->lat_units}}},
        {"longitude", {{"name", coords_2d_->lon_name}, {"units", coords_2d_->lon_units}}},
        {"dims", {lat_.name, lon_.name}}};
  }
  if (!crs_wkt_.empty()) j["crs_wkt"] = crs_wkt_;
  json channels = json::array();
  for (const auto& c : channels_) {
    json cj = {{"name", c.name}, {"variable", c.variable}, {"units", c.units}};
    if (c.level) cj["level"] = *c.level;
    channels.push_back(cj);
  }
  j["channels"] = channels;
  json vertical = json::array();
  for (const auto& v : vertical_) {
    vertical.push_back({{"name", v.name}, {"units", v.units}, {"values", v.values}});
  }
  j["vertical"] = vertical;
  if (has_time_) {
    j["time"] = {{"calendar", CalendarName(calendar_)},
                 {"units", time_units_},
                 {"steps", steps_.size()},
                 {"first", steps_.front().iso},
                 {"last", steps_.back().iso}};
  }
  json files = json::array();
  for (size_t f = 0; f < files_.size(); ++f) {
    const FilePlan& plan = *plans_[f];
    json fj = {{"path", files_[f]}, {"format", plan.file->format()}, {"steps", plan.num_steps}};
    json packing = json::object();
    for (const auto& [var, text] : plan.packing) packing[var] = text;
    fj["packing"] = packing;
    json reads = json::object();
    for (const auto& [var, text] : plan.read_paths) reads[var] = text;
    fj["reads"] = reads;
    if (plan.has_time) {
      fj["first"] = InstantToIso(calendar_, plan.instants.front());
      fj["last"] = InstantToIso(calendar_, plan.instants.back());
      fj["time_units"] = plan.time_units;
    }
    files.push_back(fj);
  }
  j["files"] = files;
  return j;
}

}  // namespace tilestage::ingest
