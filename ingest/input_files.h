// Input file lists for the ingest commands: shell-style wildcards expanded by tilestage itself, so
// that a pattern too long for the shell's argument limit (a century of NetCDF files, thousands of
// scenes) can be passed quoted.
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::ingest {

// Expands shell-style wildcards (*, ?, [...]) in arguments, sorted; arguments without wildcards
// are kept as given. A pattern that matches nothing is NotFound naming it.
Result<std::vector<std::string>> ExpandGlobs(const std::vector<std::string>& args);

}  // namespace tilestage::ingest
