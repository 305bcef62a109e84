// In-place edits of NetCDF files, for the end-to-end benchmark's inputs (bench/e2e/inputs.h):
// copies of one file are moved along the time axis so that together they form a time series.
//
// Thread-safety: safe to call concurrently on different files (netCDF-C calls serialize on
// NetcdfMutex()).
#pragma once

#include <string>

#include "tiling/status.h"

namespace tilestage::ingest {

// Adds offset * (number of time values) to every value of the "time" variable of a NetCDF file,
// in place. IOError names the file and netCDF's reason (no "time" variable included).
Status ShiftNetcdfTime(const std::string& path, double offset);

}  // namespace tilestage::ingest
