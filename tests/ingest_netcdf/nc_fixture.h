// Test fixtures written with netCDF-C itself: small CF grids in any on-disk format, with packed
// int16 or float variables, fill values, levels, time axes under any calendar, and any dimension
// order. Values follow FixtureValue() so tests can compute the truth independently.
// Not thread-safe (test helpers).
#pragma once

#include <netcdf.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tilestage::testing {

struct FixtureVar {
  std::string name;
  bool packed = false;      // int16 with scale_factor/add_offset/_FillValue/missing_value
  bool has_levels = false;  // uses the level dimension
  double scale = 0.01;
  double offset = 273.15;
  std::string units = "K";
};

struct FixtureSpec {
  int format = 0;  // 0 (classic), NC_64BIT_OFFSET, NC_64BIT_DATA, NC_NETCDF4 (| NC_CLASSIC_MODEL)
  bool unlimited_time = false;  // time is the unlimited (record) dimension
  // netCDF-4 only, on the data variables: stored big-endian; chunked and deflated.
  bool big_endian = false;
  bool deflate = false;
  int64_t nt = 3, nz = 2, ny = 4, nx = 5;
  // Global index of this file's first step (values depend on it, so series line up).
  int64_t t_first = 0;
  double time_step = 6.0;    // in time units
  double time_origin = 0.0;  // value of global step 0
  std::string time_units = "hours since 2000-01-01 00:00:00";
  std::string calendar = "standard";  // "" writes no calendar attribute
  bool with_time = true;
  std::vector<double> levels = {850, 500};
  std::string level_units = "hPa";
  // Dimension order of the data variables as letters of "tzyx", e.g. "tzyx" or "xyzt".
  std::string order = "tzyx";
  // Names of the dimensions/coordinates, so tests can show they are not what identifies them.
  std::string t_name = "time", z_name = "level", y_name = "lat", x_name = "lon";
  bool cf_attrs_by_units_only = false;  // no axis/standard_name on coordinates
  double lat0 = 50.0, dlat = -1.0, lon0 = 10.0, dlon = 1.5;
  // Every (fill_every)-th grid point (by flat index) of packed variables is the fill value, every
  // (missing_every)-th the missing_value; 0 disables.
  int fill_every = 7;
  int missing_every = 11;
  std::vector<FixtureVar> vars = {{"t2m", true, false}, {"t", false, true}};
};

// The physical value of var v at (global step t, level index z, y, x) before packing.
double FixtureValue(int v, int64_t t, int64_t z, int64_t y, int64_t x);
// 0: valid; 1: written as _FillValue; 2: written as missing_value (every variable; the
// pattern depends on the global step and the point's flat index y * nx + x).
int FixtureMissing(const FixtureSpec& spec, int64_t t, int64_t flat_yx);

// Writes the file; aborts the test (ADD_FAILURE + returns false) on netCDF errors.
bool WriteFixture(const std::string& path, const FixtureSpec& spec);

}  // namespace tilestage::testing
