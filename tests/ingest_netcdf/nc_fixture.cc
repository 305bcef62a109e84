#include "tests/ingest_netcdf/nc_fixture.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace tilestage::testing {

double FixtureValue(int v, int64_t t, int64_t z, int64_t y, int64_t x) {
  return 250.0 + 10.0 * v + 0.5 * t + 3.0 * z + 0.25 * y - 0.125 * x +
         0.01 * std::sin(static_cast<double>(t * 7 + y * 3 + x));
}

int FixtureMissing(const FixtureSpec& spec, int64_t t, int64_t flat_yx) {
  const int64_t k = flat_yx + 3 * t;
  if (spec.fill_every > 0 && k % spec.fill_every == 0) return 1;
  if (spec.missing_every > 0 && k % spec.missing_every == 0) return 2;
  return 0;
}

namespace {

constexpr short kPackedFill = -32767;
constexpr short kPackedMissing = -32766;
constexpr float kFloatFill = 1e20f;
constexpr float kFloatMissing = -999.f;

#define NC_CHECK(call)                                              \
  do {                                                              \
    const int rc_ = (call);                                         \
    if (rc_ != NC_NOERR) {                                          \
      ADD_FAILURE() << path << ": " #call ": " << nc_strerror(rc_); \
      return false;                                                 \
    }                                                               \
  } while (0)

bool PutText(int ncid, int varid, const char* name, const std::string& value,
             const std::string& path) {
  NC_CHECK(nc_put_att_text(ncid, varid, name, value.size(), value.c_str()));
  return true;
}

}  // namespace

bool WriteFixture(const std::string& path, const FixtureSpec& spec) {
  int ncid = -1;
  NC_CHECK(nc_create(path.c_str(), NC_CLOBBER | spec.format, &ncid));
  bool any_levels = false;
  for (const auto& v : spec.vars) any_levels = any_levels || v.has_levels;
  std::map<char, int> dim;
  std::map<char, int64_t> len = {{'t', spec.nt}, {'z', spec.nz}, {'y', spec.ny}, {'x', spec.nx}};
  std::map<char, std::string> names = {
      {'t', spec.t_name}, {'z', spec.z_name}, {'y', spec.y_name}, {'x', spec.x_name}};
  for (char c : spec.order) {
    if (c == 't' && !spec.with_time) continue;
    if (c == 'z' && !any_levels) continue;
    const size_t dim_len =
        c == 't' && spec.unlimited_time ? NC_UNLIMITED : static_cast<size_t>(len[c]);
    NC_CHECK(nc_def_dim(ncid, names[c].c_str(), dim_len, &dim[c]));
  }
  std::map<char, int> coord;
  for (const auto& [c, d] : dim) {
    NC_CHECK(nc_def_var(ncid, names[c].c_str(), NC_DOUBLE, 1, &d, &coord[c]));
  }
  const bool cf = !spec.cf_attrs_by_units_only;
  if (dim.count('t')) {
    if (!PutText(ncid, coord['t'], "units", spec.time_units, path)) return false;
    if (!spec.calendar.empty() && !PutText(ncid, coord['t'], "calendar", spec.calendar, path)) {
      return false;
    }
    if (cf && !PutText(ncid, coord['t'], "standard_name", "time", path)) return false;
  }
  if (dim.count('z')) {
    if (!PutText(ncid, coord['z'], "units", spec.level_units, path)) return false;
    if (cf && !PutText(ncid, coord['z'], "positive", "down", path)) return false;
  }
  if (!PutText(ncid, coord['y'], "units", "degrees_north", path)) return false;
  if (!PutText(ncid, coord['x'], "units", "degrees_east", path)) return false;
  if (cf) {
    if (!PutText(ncid, coord['y'], "axis", "Y", path)) return false;
    if (!PutText(ncid, coord['x'], "standard_name", "longitude", path)) return false;
  }
  std::vector<int> varids;
  for (const auto& v : spec.vars) {
    std::vector<int> dims;
    for (char c : spec.order) {
      if (c == 't' && !spec.with_time) continue;
      if (c == 'z' && !v.has_levels) continue;
      dims.push_back(dim[c]);
    }
    int varid = -1;
    NC_CHECK(nc_def_var(ncid, v.name.c_str(), v.packed ? NC_SHORT : NC_FLOAT,
                        static_cast<int>(dims.size()), dims.data(), &varid));
    if (!PutText(ncid, varid, "units", v.units, path)) return false;
    if (spec.big_endian) NC_CHECK(nc_def_var_endian(ncid, varid, NC_ENDIAN_BIG));
    if (spec.deflate) NC_CHECK(nc_def_var_deflate(ncid, varid, 1, 1, 4));
    if (v.packed) {
      NC_CHECK(nc_put_att_double(ncid, varid, "scale_factor", NC_DOUBLE, 1, &v.scale));
      NC_CHECK(nc_put_att_double(ncid, varid, "add_offset", NC_DOUBLE, 1, &v.offset));
      NC_CHECK(nc_put_att_short(ncid, varid, "_FillValue", NC_SHORT, 1, &kPackedFill));
      NC_CHECK(nc_put_att_short(ncid, varid, "missing_value", NC_SHORT, 1, &kPackedMissing));
    } else {
      NC_CHECK(nc_put_att_float(ncid, varid, "_FillValue", NC_FLOAT, 1, &kFloatFill));
      NC_CHECK(nc_put_att_float(ncid, varid, "missing_value", NC_FLOAT, 1, &kFloatMissing));
    }
    varids.push_back(varid);
  }
  NC_CHECK(nc_enddef(ncid));

  std::vector<double> values;
  if (dim.count('t')) {
    values.clear();
    for (int64_t t = 0; t < spec.nt; ++t) {
      values.push_back(spec.time_origin + spec.time_step * static_cast<double>(spec.t_first + t));
    }
    const size_t start = 0, count = static_cast<size_t>(spec.nt);
    NC_CHECK(nc_put_vara_double(ncid, coord['t'], &start, &count, values.data()));
  }
  if (dim.count('z')) NC_CHECK(nc_put_var_double(ncid, coord['z'], spec.levels.data()));
  values.clear();
  for (int64_t y = 0; y < spec.ny; ++y) values.push_back(spec.lat0 + spec.dlat * y);
  NC_CHECK(nc_put_var_double(ncid, coord['y'], values.data()));
  values.clear();
  for (int64_t x = 0; x < spec.nx; ++x) values.push_back(spec.lon0 + spec.dlon * x);
  NC_CHECK(nc_put_var_double(ncid, coord['x'], values.data()));

  for (size_t vi = 0; vi < spec.vars.size(); ++vi) {
    const FixtureVar& v = spec.vars[vi];
    std::vector<char> order;
    for (char c : spec.order) {
      if (c == 't' && !spec.with_time) continue;
      if (c == 'z' && !v.has_levels) continue;
      order.push_back(c);
    }
    int64_t total = 1;
    for (char c : order) total *= len[c];
    std::vector<short> packed(v.packed ? total : 0);
    std::vector<float> floats(v.packed ? 0 : total);
    std::vector<int64_t> idx(order.size(), 0);
    for (int64_t flat = 0; flat < total; ++flat) {
      int64_t rem = flat;
      for (int k = static_cast<int>(order.size()) - 1; k >= 0; --k) {
        idx[k] = rem % len[order[k]];
        rem /= len[order[k]];
      }
      int64_t t = 0, z = 0, y = 0, x = 0;
      for (size_t k = 0; k < order.size(); ++k) {
        switch (order[k]) {
          case 't':
            t = idx[k];
            break;
          case 'z':
            z = idx[k];
            break;
          case 'y':
            y = idx[k];
            break;
          default:
            x = idx[k];
            break;
        }
      }
      const int64_t tg = spec.t_first + t;
      const int missing = FixtureMissing(spec, tg, y * spec.nx + x);
      const double value = FixtureValue(static_cast<int>(vi), tg, z, y, x);
      if (v.packed) {
        packed[flat] = missing == 1 ? kPackedFill
                       : missing == 2
                           ? kPackedMissing
                           : static_cast<short>(std::lround((value - v.offset) / v.scale));
      } else {
        floats[flat] = missing == 1   ? kFloatFill
                       : missing == 2 ? kFloatMissing
                                      : static_cast<float>(value);
      }
    }
    // nc_put_vara: nc_put_var writes only the records that exist already.
    const std::vector<size_t> start(order.size(), 0);
    std::vector<size_t> count;
    for (char c : order) count.push_back(static_cast<size_t>(len[c]));
    if (v.packed) {
      NC_CHECK(nc_put_vara_short(ncid, varids[vi], start.data(), count.data(), packed.data()));
    } else {
      NC_CHECK(nc_put_vara_float(ncid, varids[vi], start.data(), count.data(), floats.data()));
    }
  }
  NC_CHECK(nc_close(ncid));
  return true;
}

}  // namespace tilestage::testing
