// tilestage ingest netcdf: CF-convention climate NetCDF (ERA5, CMIP...) to a tile store, whole
// grids or spatial tiles, optionally as forecasting pairs (x at t, y at t + lead).
#include <cstdlib>
#include <sstream>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "ingest/input_files.h"
#include "ingest/modules.h"
#include "tools/cli/ingest_common.h"

namespace tilestage::cli {
namespace {

struct NetcdfArgs {
  IngestArgs common;
  std::vector<std::string> files;
  std::string vars;
  std::string levels;
  std::string lead = "0";
  int64_t time_stride = 1;
  std::string grid_dims;
  bool float64 = false;
  bool lat_weights = false;
  bool library_reads = false;
};

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Result<std::vector<double>> ParseLevels(const std::string& text) {
  std::vector<double> levels;
  for (const std::string& item : SplitComma(text)) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || *end != '\0') {
      return InvalidArgument("--levels '", text, "': '", item, "' is not a number");
    }
    levels.push_back(v);
  }
  return levels;
}

Result<std::unique_ptr<ingest::Source>> MakeSource(const NetcdfArgs& args) {
  ingest::NetcdfSourceOptions options;
  TS_ASSIGN_OR_RETURN(options.request.files, ingest::ExpandGlobs(args.files));
  options.request.variables = SplitComma(args.vars);
  if (options.request.variables.empty()) {
    return InvalidArgument("--vars '", args.vars, "': expected variable names like t2m,u10");
  }
  TS_ASSIGN_OR_RETURN(options.request.levels, ParseLevels(args.levels));
  options.request.float64 = args.float64;
  options.request.direct_reads = !args.library_reads;
  const std::string& lead = args.lead;
  if (!lead.empty() && lead.find_first_not_of("0123456789") == std::string::npos) {
    options.lead = std::stoll(lead);
  } else {
    TS_ASSIGN_OR_RETURN(options.lead_ms, ingest::ParseLeadDuration(lead));
  }
  if (!args.grid_dims.empty()) {
    const auto dims = SplitComma(args.grid_dims);
    if (dims.size() != 2)
      return InvalidArgument("--grid-dims '", args.grid_dims,
                             "': expected two dimension names Y,X");
    options.request.y_dim = dims[0];
    options.request.x_dim = dims[1];
  }
  options.time_stride = args.time_stride;
  options.latitude_weights = args.lat_weights;
  TS_ASSIGN_OR_RETURN(const std::string dir, ingest::ExecutableDir());
  TS_ASSIGN_OR_RETURN(const ingest::FormatsModule* formats, ingest::LoadFormatsModule(dir));
  return formats->open_netcdf(options);
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* ingest = GetOrAddGroup(root, "ingest", "Turn raw inputs into tile stores");
  auto args = std::make_shared<NetcdfArgs>();
  CLI::App* cmd = ingest->add_subcommand(
      "netcdf",
      "Climate NetCDF (CF conventions; classic, 64-bit offset, CDF-5, netCDF-4) to tiles: "
      "variables and levels as channels, files concatenated along time, packed values "
      "unpacked, fill/missing values as NaN. Under mpirun, ranks split the time steps and write "
      "one store. Default codec zstd+shuffle: climate floats store smaller and faster after a "
      "byte shuffle (an ERA5 file: 0.68 of the raw size instead of 0.74).");
  // Shuffling the bytes of float fields groups exponents and high mantissa bytes, which zstd
  // then finds; on the NetCDF benchmark it also cut the compression time by a quarter.
  args->common.codec = "zstd+shuffle";
  AddIngestOptions(cmd, &args->common, "full");
  cmd->add_option("files", args->files,
                  "Input files (a list, or quoted globs like 'era5/*.nc'), any order: they are "
                  "sorted by time")
      ->required();
  cmd->add_option("--vars", args->vars, "Variables, comma-separated (t2m,u10,t)")->required();
  cmd->add_option("--levels", args->levels,
                  "Vertical levels to keep, in the vertical coordinate's units (500,850); "
                  "default: all. Channels are named var_level (t_850)");
  cmd->add_option("--lead", args->lead,
                  "Store y = the grid N time steps after x (forecasting pairs; may cross files; "
                  "refused on an irregular series), or the grid a duration later (6h, 1d, 30min: "
                  "x steps without a step that much later are skipped)")
      ->capture_default_str();
  cmd->add_option("--grid-dims", args->grid_dims,
                  "The grid's dimensions Y,X when they have no CF coordinate variable "
                  "(curvilinear grids); default: those of the 2-D latitude/longitude named in the "
                  "variable's coordinates attribute");
  cmd->add_option("--time-stride", args->time_stride, "Keep every K-th time step as a sample")
      ->capture_default_str();
  cmd->add_flag("--float64", args->float64, "Unpack to float64 instead of float32");
  cmd->add_flag("--lat-weights", args->lat_weights,
                "Store cos(latitude) weights (mean 1) in the manifest");
  cmd->add_flag("--library-reads", args->library_reads,
                "Read every value through netCDF-C (nc_get_vara, one thread at a time) instead "
                "of reading plain (netCDF-3, contiguous netCDF-4) variables directly with pread "
                "in parallel: the reference path, for comparison and as a fallback");
  cmd->callback([args, exit_code] {
#if defined(__GLIBC__)
    // Whole-grid samples are buffers of 100 KB..100 MB allocated and freed once per sample;
    // glibc would mmap/munmap each one (page faults and zeroing: ~20% of the CPU time of an
    // ingest measured in bench/ingest_netcdf). Keep them on the heap and reuse them instead.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
    *exit_code =
        RunIngestCommand(args->common, "netcdf", args->files, [args] { return MakeSource(*args); });
  });
});

}  // namespace
}  // namespace tilestage::cli
