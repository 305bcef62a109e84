// The e2e run's input files: the real sample files of examples/data, or for bigger presets
// several copies of each. NetCDF copies are moved along the time axis so that together they form
// a time series (NetCDF ingest rightly refuses files that repeat a time step).
//
// Thread-safety: safe to call concurrently on different files (netCDF-C serializes itself).
#pragma once

#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::bench {

// Adds offset * (number of time values) to every value of the "time" variable of a NetCDF file,
// in place. IOError names the file and netCDF's reason (no "time" variable included).
Status ShiftNetcdfTime(const std::string& path, double offset);

// `files` themselves when copies <= 1; otherwise `copies` copies of each into dir (created),
// named <stem>_<k><ext>, copy k of a .nc file shifted k steps on; other files are hard links
// where the file system allows (else copies). IOError names the file.
Result<std::vector<std::string>> CopyInputs(const std::vector<std::string>& files, int copies,
                                            const std::string& dir);

}  // namespace tilestage::bench
