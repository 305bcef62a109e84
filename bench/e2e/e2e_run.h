// One whole `tilestage bench e2e` run: the phases in order (phases.h), the run's mllog
// (<out>/mllog.txt: init_start … init_stop, run_start … run_stop around staging and training),
// the limits, the results document (<out>/results.json) and the report (<out>/report/).
// Time to train is read back from the run's own mllog, as `tilestage bench analyze` reads it.
//
// Thread-safety: one run at a time per output directory; a run starts processes and measures
// the whole machine, so concurrent runs measure each other.
#pragma once

#include <string>

#include "bench/e2e/e2e_config.h"
#include "bench/e2e/report.h"
#include "tiling/status.h"

namespace tilestage::bench {

struct E2eRunPaths {
  std::string out;      // output directory; its earlier e2e outputs (only those) are replaced
  std::string root;     // the source tree (FindSourceRoot)
  std::string exe;      // the tilestage binary the steps run
  std::string command;  // the command line, for the provenance
};

// Runs everything and returns the results as the report read them. Errors name the step or file
// that failed; InvalidArgument for an output directory of "/" or "".
Result<E2eResults> RunE2eBenchmark(const E2eConfig& config, const E2eRunPaths& paths);

}  // namespace tilestage::bench
