// The NetCDF Source for the shared ingest driver (ingest/source.h): CF-decoded variables and
// levels of many netCDF files as items, one item per stored time step.
//
// Item k is time step t = k * time_stride of the concatenated series; x is that step's [C, H, W]
// grid (channels `var` or `var_level`), and with lead N > 0, y is step t + N (a forecasting
// target, possibly in the next file). Items exist only where t + N is inside the series. A lead
// in steps is refused on an irregular series (the error names the files and time stamps where
// the spacing changes); a lead given as a duration pairs x with the step exactly that much later.
// Each item's metadata holds its time stamp(s) as ISO strings, the step index and the file; each
// tile adds its latitude/longitude bounds. The manifest attrs keep the coordinate vectors, units,
// calendar, levels, packing, files, lead and stride, and optionally latitude weights (cos lat,
// normalised to mean 1 as ClimaX weights its loss).
//
// Thread-safety: as Source requires. Direct reads (pread) and decoding (unpack, NaN fill) run on
// the readers' own threads; netCDF-C calls (the library path) serialize on NetcdfMutex().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ingest/netcdf_dataset.h"
#include "ingest/source.h"

namespace tilestage::ingest {

struct NetcdfSourceOptions {
  NetcdfRequest request;
  int64_t lead = 0;  // steps between x and y (a regular series only); 0: no y
  // Instead of steps: y is the step exactly this many milliseconds after x (on the dataset's
  // calendar), for irregular series too; x steps without one are skipped.
  std::optional<int64_t> lead_ms;
  int64_t time_stride = 1;  // keep every K-th step as an item
  bool latitude_weights = false;
};

// Opens and checks every file (NetcdfDataset::Open), then the lead/stride against the series:
// a lead as long as the series or longer is InvalidArgument naming the lead and the step count.
Result<std::unique_ptr<Source>> OpenNetcdfSource(const NetcdfSourceOptions& options);

}  // namespace tilestage::ingest
