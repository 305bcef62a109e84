#include "tools/cli/ingest_common.h"

#include <cstdlib>
#include <iostream>

#include "ingest/input_files.h"
#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_env.h"

namespace tilestage::cli {

void AddIngestOptions(CLI::App* cmd, IngestArgs* args, const std::string& default_tile) {
  args->tile = default_tile;
  cmd->add_option("--out", args->out,
                  "Store directory to write (created, with any missing parent directories)")
      ->required();
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace a store already at --out: the new store is written beside it and "
                "swapped in when complete, so the old one stays usable until then");
  cmd->add_option("--tile", args->tile, "Tile size H,W in pixels, or 'full' for whole items")
      ->capture_default_str();
  cmd->add_option("--stride", args->stride,
                  "Step between tiles R,C (default: the tile size, no overlap)");
  cmd->add_option("--edge", args->edge,
                  "Windows crossing the edge: drop; pad (fill with nodata, or 0 without nodata; "
                  "padded pixels are invalid); shift (last window moved inward, the default)")
      ->capture_default_str();
  cmd->add_option("--min-valid", args->min_valid,
                  "Drop tiles whose fraction of valid pixels (valid in every band) is below F; "
                  "tiles without any valid pixel are always dropped")
      ->capture_default_str();
  cmd->add_option("--dtype", args->dtype,
                  "Store x as this dtype (u8 i8 u16 i16 u32 i32 f32 f64); default: native. "
                  "Float output turns invalid values into NaN; integer output rounds and "
                  "saturates, and stores invalid pixels (NaN, nodata, padding) as the source's "
                  "nodata when the dtype holds it, else the dtype's max (unsigned) or min "
                  "(signed), recorded as the nodata; a valid value that would become it is an "
                  "error");
  cmd->add_option("--y-dtype", args->y_dtype,
                  "Store the target/label field y as this dtype (as --dtype); default: native");
  cmd->add_option("--codec", args->codec, "none, lz4, zstd[:LEVEL], each optionally +shuffle")
      ->capture_default_str();
  cmd->add_option("--shard-size", args->shard_size, "Target shard size (e.g. 64MiB)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Worker threads per process (0: all cores)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print a machine-readable JSON summary on stdout");
  cmd->add_flag("--no-progress", args->no_progress, "No progress line, even on a terminal");
}

Result<ingest::DriverOptions> MakeDriverOptions(const IngestArgs& args) {
  ingest::DriverOptions options;
  options.out = args.out;
  if (args.tile == "full") {
    options.tile.whole_item = true;
  } else {
    auto tile = ParseShape(args.tile);
    if (!tile.ok() || tile->size() != 2)
      return InvalidArgument("--tile '", args.tile, "': expected H,W (e.g. 256,256) or full");
    options.tile.height = (*tile)[0];
    options.tile.width = (*tile)[1];
    options.tile.stride_rows = options.tile.height;
    options.tile.stride_cols = options.tile.width;
  }
  if (!args.stride.empty()) {
    auto stride = ParseShape(args.stride);
    if (!stride.ok() || stride->size() != 2)
      return InvalidArgument("--stride '", args.stride, "': expected R,C (e.g. 128,128)");
    if (options.tile.whole_item)
      return InvalidArgument("--stride ", args.stride, " has no meaning with --tile full");
    options.tile.stride_rows = (*stride)[0];
    options.tile.stride_cols = (*stride)[1];
  }
  TS_ASSIGN_OR_RETURN(options.tile.edge, ingest::ParseEdgePolicy(args.edge));
  if (!(args.min_valid >= 0.0 && args.min_valid <= 1.0))
    return InvalidArgument("--min-valid ", args.min_valid, ": must be between 0 and 1");
  options.min_valid = args.min_valid;
  if (!args.dtype.empty()) {
    auto dtype = ParseDType(args.dtype);
    if (!dtype.ok()) return dtype.status().WithContext("--dtype: ");
    options.x_dtype = *dtype;
  }
  if (!args.y_dtype.empty()) {
    auto dtype = ParseDType(args.y_dtype);
    if (!dtype.ok()) return dtype.status().WithContext("--y-dtype: ");
    options.y_dtype = *dtype;
  }
  auto codec = ParseCodec(args.codec);
  if (!codec.ok()) return codec.status().WithContext("--codec: ");
  options.codec = *codec;
  auto shard = ParseByteSize(args.shard_size);
  if (!shard.ok()) return shard.status().WithContext("--shard-size: ");
  options.shard_target_bytes = *shard;
  if (args.threads < 0) return InvalidArgument("--threads ", args.threads, ": must be >= 0");
  options.threads = args.threads;
  options.overwrite = args.overwrite;
  options.progress = !args.no_progress && !args.json && StderrIsTerminal();
  options.command_line = CommandLine();
  return options;
}

int RunIngestCommand(const IngestArgs& args, const std::string& label,
                     const std::vector<std::string>& inputs,
                     const std::function<Result<std::unique_ptr<ingest::Source>>()>& make_source) {
  // A plain run (no launcher) needs no MPI at all.
  auto mpi = MpiSession::Start(MpiSession::When::kUnderLauncher);
  if (!mpi.ok()) return Report(mpi.status());
  auto world = NewWorldCommunicator();
  if (!world.ok()) return Report(world.status());
  const int rank = (*world)->rank();
  auto run = [&]() -> Result<ingest::IngestSummary> {
    TS_ASSIGN_OR_RETURN(ingest::DriverOptions options, MakeDriverOptions(args));
    options.progress = options.progress && rank == 0;
    options.progress_label = "ingest " + label;
    if ((*world)->size() == 1 && options.hash_sources) {
      // A pattern that matches nothing is the source's error to report, with its context.
      auto files = ingest::ExpandGlobs(inputs);
      if (files.ok())
        options.early_hashes =
            std::make_shared<ingest::EarlySourceHashes>(std::move(files).value());
    }
    TS_ASSIGN_OR_RETURN(std::unique_ptr<ingest::Source> source, make_source());
    return ingest::RunIngest(*source, options);
  };
  Result<ingest::IngestSummary> summary = run();
  int code = 0;
  if (rank == 0) {
    if (summary.ok()) {
      if (args.json)
        std::cout << summary->ToJson().dump(2) << "\n";
      else
        std::cout << summary->ToText();
      std::cout.flush();
    } else {
      code = Report(summary.status());
    }
  } else if (!summary.ok()) {
    code = summary.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  return code;
}

}  // namespace tilestage::cli
