// Options every `tilestage ingest <format>` subcommand shares, and the one function that runs an
// ingest from the CLI (MPI setup, the driver, the summary), so the GeoTIFF, NetCDF, HDF5 and
// TIFF-stack subcommands register the same flags and behave the same way:
//
//   --out DIR  --overwrite  --tile H,W|full  --stride R,C  --edge drop|pad|shift  --min-valid F
//   --dtype T  --y-dtype T  --codec C  --shard-size S  --threads N  --json  --no-progress
//
// Use from a subcommand file:
//   auto args = std::make_shared<IngestArgs>();
//   AddIngestOptions(cmd, args.get());            // optionally a different default tile
//   cmd->callback([args, exit_code] {
//     *exit_code = RunIngestCommand(*args, "geotiff", args->files,
//                                   [&]() -> Result<std::unique_ptr<Source>> {
//       ...open the inputs (called after MPI is initialized, on every rank)...
//     });
//   });
// Not thread-safe (CLI setup runs before main's threads exist).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "ingest/driver.h"
#include "ingest/source.h"
#include "tools/cli/command.h"

namespace tilestage::cli {

struct IngestArgs {
  std::string out;
  std::string tile = "256,256";  // or "full"
  std::string stride;            // empty: equal to the tile (no overlap)
  std::string edge = "shift";
  double min_valid = 0.0;
  std::string dtype;    // empty: keep the source dtype
  std::string y_dtype;  // empty: keep the source dtype of y
  std::string codec = "zstd";
  std::string shard_size = "256MiB";
  int threads = 0;
  bool json = false;
  bool no_progress = false;
  bool overwrite = false;
};

// Registers the shared options on cmd; `default_tile` is "256,256" or, e.g., "full".
void AddIngestOptions(CLI::App* cmd, IngestArgs* args, const std::string& default_tile = "256,256");

// Parses the shared options into driver options (InvalidArgument naming the flag and value).
Result<ingest::DriverOptions> MakeDriverOptions(const IngestArgs& args);

// Initializes MPI when launched under mpirun (MPI_THREAD_FUNNELED), builds the source with
// make_source, runs the driver, prints the summary (text, or JSON with --json) on rank 0, and
// finalizes MPI. Returns the process exit code (errors are printed through Report()). A single
// process starts hashing `inputs` (the command's input files or globs) for the provenance before
// make_source loads the format library (ingest/source_hashes.h).
int RunIngestCommand(const IngestArgs& args, const std::string& label,
                     const std::vector<std::string>& inputs,
                     const std::function<Result<std::unique_ptr<ingest::Source>>()>& make_source);

}  // namespace tilestage::cli
