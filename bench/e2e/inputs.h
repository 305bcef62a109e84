// The e2e run's input files: the real sample files of examples/data, or for bigger presets
// several copies of each. NetCDF copies are moved along the time axis so that together they form
// a time series (NetCDF ingest rightly refuses files that repeat a time step).
//
// Thread-safety: safe to call concurrently on different files.
#pragma once

#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::bench {

// `files` themselves when copies <= 1; otherwise `copies` copies of each into dir (created),
// named <stem>_<k><ext>, copy k of a .nc file shifted k steps on (ingest::ShiftNetcdfTime, from
// the formats module in module_dir: the tilestage executable's directory); other files are hard
// links where the file system allows (else copies). IOError names the file.
Result<std::vector<std::string>> CopyInputs(const std::vector<std::string>& files, int copies,
                                            const std::string& dir, const std::string& module_dir);

}  // namespace tilestage::bench
