// tilestage ingest geotiff: satellite scenes (any GDAL raster) to a tile store.
#include <cstdlib>

#include "ingest/input_files.h"
#include "ingest/modules.h"
#include "tools/cli/ingest_common.h"

namespace tilestage::cli {
namespace {

struct GeoTiffArgs {
  IngestArgs common;
  std::vector<std::string> files;
  std::string bands;
  bool stack_bands = false;
  std::string dst_crs;
  std::string res;
  std::string resampling;
  std::vector<std::string> labels;
  std::optional<double> dst_nodata;
};

Result<std::vector<int>> ParseBands(const std::string& text) {
  std::vector<int> bands;
  if (text.empty()) return bands;
  auto shape = ParseShape(text);
  if (!shape.ok())
    return InvalidArgument("--bands '", text, "': expected 1-based numbers like 1,2,3");
  for (int64_t b : *shape) bands.push_back(static_cast<int>(b));
  return bands;
}

Result<std::pair<double, double>> ParseRes(const std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  double y = x;
  if (end && *end == ',') y = std::strtod(end + 1, &end);
  if (end == text.c_str() || !end || *end != '\0' || !(x > 0) || !(y > 0))
    return InvalidArgument("--res '", text, "': expected a positive pixel size X or X,Y");
  return std::make_pair(x, y);
}

Result<std::unique_ptr<ingest::Source>> MakeSource(const GeoTiffArgs& args,
                                                   const ingest::GeoTiffModule& gdal) {
  ingest::GeoTiffOptions options;
  TS_ASSIGN_OR_RETURN(options.files, ingest::ExpandGlobs(args.files));
  TS_ASSIGN_OR_RETURN(options.bands, ParseBands(args.bands));
  options.stack_bands = args.stack_bands;
  options.dst_crs = args.dst_crs;
  if (!args.res.empty()) {
    TS_ASSIGN_OR_RETURN(auto res, ParseRes(args.res));
    options.res = res;
  }
  options.resampling = args.resampling;
  options.dst_nodata = args.dst_nodata;
  if (!args.common.dtype.empty()) {
    auto dtype = ParseDType(args.common.dtype);
    if (dtype.ok()) options.store_dtype = *dtype;  // a bad name is reported with the options
  }
  TS_ASSIGN_OR_RETURN(options.labels, ingest::ExpandGlobs(args.labels));
  return gdal.open_geotiff(options);
}

Result<const ingest::GeoTiffModule*> LoadGdal() {
  TS_ASSIGN_OR_RETURN(const std::string dir, ingest::ExecutableDir());
  return ingest::LoadGeoTiffModule(dir);
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* ingest = GetOrAddGroup(root, "ingest", "Turn raw inputs into tile stores");
  auto args = std::make_shared<GeoTiffArgs>();
  CLI::App* cmd = ingest->add_subcommand(
      "geotiff",
      "Satellite scenes (any GDAL raster: GeoTIFF, COG, BigTIFF...) to tiles; each file is a "
      "scene. Under mpirun, ranks split the scenes and write one store.");
  AddIngestOptions(cmd, &args->common);
  cmd->add_option("files", args->files, "Input rasters (a list, or quoted globs like 'dir/*.tif')")
      ->required();
  cmd->add_option("--bands", args->bands,
                  "Bands to keep, 1-based (e.g. 4,3,2); default: all but an alpha band");
  cmd->add_flag("--stack-bands", args->stack_bands,
                "Stack the single-band input files into the channels of one scene (Landsat); "
                "their grids must match");
  cmd->add_option("--dst-crs", args->dst_crs,
                  "Warp every scene to this CRS (EPSG:N, WKT or PROJ) with GDAL's warper");
  cmd->add_option("--res", args->res,
                  "Target pixel size X[,Y] in target CRS units (pixel grid aligned to it)");
  cmd->add_option("--resampling", args->resampling,
                  "GDAL resampling for warping: near, bilinear, cubic, average, mode...; default "
                  "near for integer data, bilinear for floating-point data (labels: near)");
  cmd->add_option("--dst-nodata", args->dst_nodata,
                  "Nodata value recorded for integer bands without one whose pixels are masked "
                  "(outside the warped footprint, alpha or mask band); default: the type's "
                  "maximum (unsigned) or minimum (signed). Float bands get NaN");
  cmd->add_option("--label", args->labels,
                  "Label raster stored as field y, warped onto each scene's grid (nearest); one "
                  "for all scenes or one per scene");
  cmd->callback([args, exit_code] {
    ingest::LimitGdalBlasThreads();  // before MPI starts threads of its own
    *exit_code = RunIngestCommand(
        args->common, "geotiff", args->files, [args]() -> Result<std::unique_ptr<ingest::Source>> {
          TS_ASSIGN_OR_RETURN(const ingest::GeoTiffModule* gdal, LoadGdal());
          return MakeSource(*args, *gdal);
        });
  });
});

}  // namespace
}  // namespace tilestage::cli
