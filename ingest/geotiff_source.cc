#include "ingest/geotiff_source.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdal_utils.h>
#include <ogr_srs_api.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <set>

#include "ingest/geotiff_gdal.h"
#include "ingest/nodata_values.h"

namespace tilestage::ingest {
namespace {

const std::set<std::string> kResamplings = {
    "near", "bilinear", "cubic", "cubicspline", "lanczos", "average", "rms",
    "mode", "max",      "min",   "med",         "q1",      "q3",      "sum"};

// A CSL string list owned by a vector, for GDAL's argv-style option APIs.
class ArgList {
 public:
  void Add(const std::string& a) { args_.push_back(a); }
  char** Get() {
    ptrs_.clear();
    for (auto& a : args_) ptrs_.push_back(a.data());
    ptrs_.push_back(nullptr);
    return ptrs_.data();
  }
  std::string Join() const {
    std::string s;
    for (const auto& a : args_) s += (s.empty() ? "" : " ") + a;
    return s;
  }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

struct DatasetCloser {
  void operator()(void* ds) const {
    if (ds) GDALClose(static_cast<GDALDatasetH>(ds));
  }
};
using DatasetPtr = std::unique_ptr<void, DatasetCloser>;

GDALDatasetH Get(const DatasetPtr& p) { return static_cast<GDALDatasetH>(p.get()); }

// Uncompressed GeoTIFF pixels are read straight from the file into the caller's buffer
// (GTIFF_DIRECT_IO) rather than through GDAL's block cache: the same values at about half the CPU
// time of reading an uncompressed 8192^2 raster (bench/ingest_geotiff; no effect on compressed
// files). GDAL reads the option when a dataset opens, so it is set for this thread around the open
// only: the caller's own datasets keep their settings, and a GTIFF_DIRECT_IO the user set wins.
GDALDatasetH OpenWithDirectIo(const std::string& spec) {
  const bool user_set = CPLGetConfigOption("GTIFF_DIRECT_IO", nullptr) != nullptr;
  if (!user_set) CPLSetThreadLocalConfigOption("GTIFF_DIRECT_IO", "YES");
  GDALDatasetH ds =
      GDALOpenEx(spec.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY, nullptr, nullptr, nullptr);
  if (!user_set) CPLSetThreadLocalConfigOption("GTIFF_DIRECT_IO", nullptr);
  return ds;
}

// Opens a raster; NotFound for a missing file, InvalidArgument for anything GDAL cannot read as a
// raster.
Result<DatasetPtr> OpenRaster(const std::string& spec, const std::string& display) {
  GdalErrorScope scope;
  if (spec.rfind("/vsimem/", 0) != 0) {
    std::error_code ec;
    if (!std::filesystem::exists(spec, ec)) return NotFound("geotiff ", display, ": no such file");
    if (std::filesystem::is_directory(spec, ec))
      return InvalidArgument("geotiff ", display, ": is a directory, not a raster file");
  }
  GDALDatasetH ds = OpenWithDirectIo(spec);
  if (!ds)
    return GdalErrorScope::Error(StatusCode::kInvalidArgument,
                                 StrCat("geotiff ", display, ": not a raster GDAL can read"),
                                 "no GDAL raster driver recognizes it");
  DatasetPtr p(ds);
  if (GDALGetRasterCount(ds) <= 0)
    return InvalidArgument("geotiff ", display, ": has no raster bands");
  return p;
}

std::string CrsWkt(GDALDatasetH ds) {
  const char* wkt = GDALGetProjectionRef(ds);
  return wkt ? wkt : "";
}

bool SameCrs(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (a.empty() || b.empty()) return false;
  OGRSpatialReferenceH sa = OSRNewSpatialReference(a.c_str());
  OGRSpatialReferenceH sb = OSRNewSpatialReference(b.c_str());
  const bool same = sa && sb && OSRIsSame(sa, sb);
  if (sa) OSRDestroySpatialReference(sa);
  if (sb) OSRDestroySpatialReference(sb);
  return same;
}

std::optional<int> EpsgOf(const std::string& wkt) {
  if (wkt.empty()) return std::nullopt;
  OGRSpatialReferenceH srs = OSRNewSpatialReference(wkt.c_str());
  if (!srs) return std::nullopt;
  std::optional<int> epsg;
  if (OSRAutoIdentifyEPSG(srs) == OGRERR_NONE) {
    const char* name = OSRGetAuthorityName(srs, nullptr);
    const char* code = OSRGetAuthorityCode(srs, nullptr);
    if (name && code && std::strcmp(name, "EPSG") == 0) epsg = std::atoi(code);
  }
  OSRDestroySpatialReference(srs);
  return epsg;
}

struct Grid {
  int64_t width = 0;
  int64_t height = 0;
  double gt[6] = {0, 1, 0, 0, 0, 1};
  bool has_gt = false;
  std::string wkt;
};

Grid GridOf(GDALDatasetH ds) {
  Grid g;
  g.width = GDALGetRasterXSize(ds);
  g.height = GDALGetRasterYSize(ds);
  g.has_gt = GDALGetGeoTransform(ds, g.gt) == CE_None;
  g.wkt = CrsWkt(ds);
  return g;
}

// "" when the grids match, else what differs.
std::string GridDifference(const Grid& a, const Grid& b) {
  if (a.width != b.width || a.height != b.height)
    return StrCat("size ", a.width, "x", a.height, " vs ", b.width, "x", b.height);
  if (a.has_gt != b.has_gt) return "one has a geotransform, the other none";
  for (int i = 0; i < 6; ++i) {
    const double scale = std::max({1.0, std::fabs(a.gt[i]), std::fabs(b.gt[i])});
    if (std::fabs(a.gt[i] - b.gt[i]) > 1e-9 * scale) {
      return StrCat("geotransform [", a.gt[0], ", ", a.gt[1], ", ", a.gt[2], ", ", a.gt[3], ", ",
                    a.gt[4], ", ", a.gt[5], "] vs [", b.gt[0], ", ", b.gt[1], ", ", b.gt[2], ", ",
                    b.gt[3], ", ", b.gt[4], ", ", b.gt[5], "]");
    }
  }
  if (!SameCrs(a.wkt, b.wkt)) return "different CRS";
  return "";
}

std::string VsimemPrefix() {
  static std::atomic<int> counter{0};
  return StrCat("/vsimem/tilestage-geotiff-", reinterpret_cast<uintptr_t>(&counter), "-",
                counter.fetch_add(1), "/");
}

// What each scene needs to be read: a dataset spec (file or /vsimem VRT) and band numbers.
struct BandInfo {
  int number = 0;  // in the scene's dataset
  GDALDataType type = GDT_Byte;
  std::optional<double> nodata;
  int mask_flags = GMF_ALL_VALID;
  std::string description;
  std::string unit;
  bool alpha = false;
};

struct FieldPlan {
  std::string spec;     // what each reader opens
  std::string display;  // for messages: the file(s)
  std::vector<BandInfo> bands;
  // Masks the reader must return: none, one per-dataset mask, or one per channel.
  enum class MaskMode { kNone, kPerDataset, kPerChannel } mask_mode = MaskMode::kNone;
  std::vector<bool> channel_needs_mask;
  // The alpha band the warper added (-dstalpha), read as the mask of every channel (nonzero:
  // valid): GDAL reports no mask for a float alpha (-ot Float32); 0: none.
  int alpha_band = 0;
  // Per channel: the value written into masked pixels (the field's nodata, or NaN for float
  // data without one), so that a stored pixel alone says it is invalid.
  std::vector<double> mask_fill;
  // Per channel: the field's nodata was chosen by tilestage (FillNodata), not read from a file, so
  // a valid pixel equal to it would silently turn invalid: the reader refuses such a pixel.
  std::vector<bool> fill_chosen;
};

struct Scene {
  std::string name;
  std::vector<std::string> files;
  Grid grid;
  FieldPlan x;
  std::optional<FieldPlan> y;
  std::string resampling;                          // used when warped
  std::pair<double, double> warp_scale{1.0, 1.0};  // target pixels per source pixel (x, y)
  bool warped = false;
};

Result<std::vector<BandInfo>> ReadBands(GDALDatasetH ds, const std::vector<int>& selection,
                                        const std::string& display, bool drop_alpha) {
  const int count = GDALGetRasterCount(ds);
  std::vector<int> numbers = selection;
  if (numbers.empty()) {
    for (int b = 1; b <= count; ++b) {
      if (drop_alpha && GDALGetRasterColorInterpretation(GDALGetRasterBand(ds, b)) == GCI_AlphaBand)
        continue;
      numbers.push_back(b);
    }
  }
  std::vector<BandInfo> bands;
  for (int b : numbers) {
    if (b < 1 || b > count)
      return InvalidArgument("geotiff ", display, ": --bands ", b,
                             " is out of range (the raster has ", count, " band",
                             count == 1 ? "" : "s", ")");
    GDALRasterBandH band = GDALGetRasterBand(ds, b);
    BandInfo info;
    info.number = b;
    info.type = GDALGetRasterDataType(band);
    TS_RETURN_IF_ERROR(DTypeFromGdal(info.type, StrCat("geotiff ", display, " band ", b)).status());
    int has_nodata = 0;
    const double nodata = GDALGetRasterNoDataValue(band, &has_nodata);
    if (has_nodata) info.nodata = nodata;
    info.mask_flags = GDALGetMaskFlags(band);
    const char* desc = GDALGetDescription(band);
    info.description = desc ? desc : "";
    const char* unit = GDALGetRasterUnitType(band);
    info.unit = unit ? unit : "";
    info.alpha = GDALGetRasterColorInterpretation(band) == GCI_AlphaBand;
    bands.push_back(info);
  }
  if (bands.empty()) return InvalidArgument("geotiff ", display, ": no band selected");
  return bands;
}

// Target pixels per source pixel along x and y for warping `src` to the options' CRS and
// resolution: the source resolution in target units (GDAL's suggested warp output) over the
// target resolution; 1 without --res (the target keeps the suggested resolution).
Result<std::pair<double, double>> WarpScale(GDALDatasetH src, const GeoTiffOptions& options,
                                            const std::string& display) {
  if (!options.res) return std::make_pair(1.0, 1.0);
  GdalErrorScope scope;
  char** to = nullptr;
  if (!options.dst_crs.empty()) to = CSLSetNameValue(to, "DST_SRS", options.dst_crs.c_str());
  void* transformer = GDALCreateGenImgProjTransformer2(src, nullptr, to);
  CSLDestroy(to);
  if (!transformer)
    return GdalErrorScope::Error(StatusCode::kInvalidArgument,
                                 StrCat("geotiff ", display, ": no transform to ",
                                        options.dst_crs.empty() ? "its own CRS" : options.dst_crs));
  double gt[6];
  int pixels = 0, lines = 0;
  const CPLErr err =
      GDALSuggestedWarpOutput(src, GDALGenImgProjTransform, transformer, gt, &pixels, &lines);
  GDALDestroyGenImgProjTransformer(transformer);
  if (err != CE_None)
    return GdalErrorScope::Error(StatusCode::kInvalidArgument,
                                 StrCat("geotiff ", display, ": cannot project its extent to ",
                                        options.dst_crs.empty() ? "its own CRS" : options.dst_crs));
  return std::make_pair(std::fabs(gt[1]) / options.res->first,
                        std::fabs(gt[5]) / options.res->second);
}

// Runs GDALWarp into a VRT at `vrt_path` (lazy: pixels are warped when read).
Status WarpToVrt(GDALDatasetH src, const std::string& vrt_path, ArgList& args,
                 const std::string& display) {
  GdalErrorScope scope;
  GDALWarpAppOptions* options = GDALWarpAppOptionsNew(args.Get(), nullptr);
  if (!options)
    return GdalErrorScope::Error(
        StatusCode::kInvalidArgument,
        StrCat("geotiff ", display, ": bad warp options '", args.Join(), "'"));
  int usage_error = 0;
  GDALDatasetH sources[1] = {src};
  GDALDatasetH out = GDALWarp(vrt_path.c_str(), nullptr, 1, sources, options, &usage_error);
  GDALWarpAppOptionsFree(options);
  if (!out)
    return GdalErrorScope::Error(
        StatusCode::kInvalidArgument,
        StrCat("geotiff ", display, ": warping (gdalwarp ", args.Join(), ") failed"));
  GDALClose(out);  // flushes the VRT to /vsimem
  return Status::Ok();
}

void DecideMasks(FieldPlan* plan, const std::vector<std::optional<double>>& schema_nodata) {
  const size_t c = plan->bands.size();
  if (plan->alpha_band) {
    plan->channel_needs_mask.assign(c, true);
    plan->mask_mode = FieldPlan::MaskMode::kPerDataset;
    return;
  }
  plan->channel_needs_mask.assign(c, false);
  bool any = false, all_per_dataset = true;
  for (size_t i = 0; i < c; ++i) {
    const BandInfo& b = plan->bands[i];
    const int f = b.mask_flags;
    bool needs = false;
    if (f & GMF_ALL_VALID)
      needs = false;
    else if (f == GMF_NODATA) {
      // The driver compares with the schema's nodata; a scene whose nodata differs reads masks.
      needs = !(i < schema_nodata.size() && schema_nodata[i] && b.nodata &&
                (*schema_nodata[i] == *b.nodata ||
                 (std::isnan(*schema_nodata[i]) && std::isnan(*b.nodata))));
    } else {
      needs = true;
    }
    plan->channel_needs_mask[i] = needs;
    any |= needs;
    if (needs && !(f & GMF_PER_DATASET)) all_per_dataset = false;
  }
  if (!any)
    plan->mask_mode = FieldPlan::MaskMode::kNone;
  else if (all_per_dataset && std::all_of(plan->channel_needs_mask.begin(),
                                          plan->channel_needs_mask.end(), [](bool b) { return b; }))
    plan->mask_mode = FieldPlan::MaskMode::kPerDataset;
  else
    plan->mask_mode = FieldPlan::MaskMode::kPerChannel;
}

// Pixels a mask marks invalid (alpha, mask bands, the warper's fill outside the source footprint)
// must be invalid in the stored values too, whatever dtype the store keeps: a channel with a
// nodata value fills them with it; a float channel without one with NaN; an integer channel
// without one gets a nodata value (`fill`, else DefaultNodata) recorded in the manifest.
Status ChooseFills(FieldInfo* info, const std::vector<FieldPlan*>& plans,
                   std::optional<double> fill, std::optional<DType> store_dtype) {
  const size_t c = static_cast<size_t>(info->channels());
  info->nodata.resize(c);
  if (fill && !RepresentsExactly(info->dtype, *fill))
    return InvalidArgument("--dst-nodata ", *fill, ": not a value of the bands' type ",
                           DTypeName(info->dtype));
  std::vector<bool> chosen(c, false);
  for (size_t i = 0; i < c; ++i) {
    const bool masked = std::any_of(plans.begin(), plans.end(),
                                    [&](const FieldPlan* p) { return p->channel_needs_mask[i]; });
    if (!masked || info->nodata[i]) continue;
    const bool stored_as_float = store_dtype ? IsFloat(*store_dtype) : IsFloat(info->dtype);
    if (stored_as_float && !fill) continue;  // NaN marks them
    if (fill) {
      info->nodata[i] = *fill;
      chosen[i] = true;
    } else {
      info->nodata[i] = DefaultNodata(info->dtype);
      chosen[i] = true;
    }
  }
  for (FieldPlan* p : plans) {
    p->fill_chosen = chosen;
    p->mask_fill.assign(c, std::numeric_limits<double>::quiet_NaN());
    for (size_t i = 0; i < c; ++i)
      if (info->nodata[i]) p->mask_fill[i] = *info->nodata[i];
  }
  return Status::Ok();
}

// Common nodata per channel across scenes: a value when every scene has the same one.
std::vector<std::optional<double>> CommonNodata(const std::vector<const FieldPlan*>& plans) {
  const size_t c = plans.front()->bands.size();
  std::vector<std::optional<double>> out(c);
  for (size_t i = 0; i < c; ++i) {
    std::optional<double> v = plans.front()->bands[i].nodata;
    for (const FieldPlan* p : plans) {
      const auto& nd = p->bands[i].nodata;
      if (!v || !nd || !(*nd == *v || (std::isnan(*nd) && std::isnan(*v)))) {
        v.reset();
        break;
      }
    }
    out[i] = v;
  }
  return out;
}

Result<FieldInfo> MakeFieldInfo(const std::vector<const FieldPlan*>& plans,
                                const std::vector<std::string>& names_in,
                                const std::vector<std::string>& scene_names) {
  FieldInfo info;
  const size_t c = plans.front()->bands.size();
  GDALDataType type = plans.front()->bands.front().type;
  for (size_t s = 0; s < plans.size(); ++s) {
    if (plans[s]->bands.size() != c)
      return InvalidArgument("geotiff ", scene_names[s], ": ", plans[s]->bands.size(),
                             " bands selected, but ", scene_names[0], " has ", c,
                             "; every scene of a store needs the same bands");
    for (const auto& b : plans[s]->bands) type = GDALDataTypeUnion(type, b.type);
  }
  TS_ASSIGN_OR_RETURN(info.dtype, DTypeFromGdal(type, "geotiff " + scene_names[0]));
  info.channel_names = names_in;
  bool any_unit = false;
  for (const auto& b : plans.front()->bands) any_unit |= !b.unit.empty();
  if (any_unit)
    for (const auto& b : plans.front()->bands) info.units.push_back(b.unit);
  info.nodata = CommonNodata(plans);
  return info;
}

// ------------------------------------------------------------------ the source and its readers

class GeoTiffSource;

class GeoTiffReader : public ItemReader {
 public:
  explicit GeoTiffReader(const GeoTiffSource* source) : source_(source) {}
  Status Read(int64_t item, const Region& region, RegionData* out) override;

 private:
  Status ReadField(const FieldPlan& plan, DType dtype, GDALDatasetH ds, const Region& region,
                   Array* data, Array* mask);
  Status Locate(const FieldPlan& plan, GDALDatasetH ds, const Region& region, DType dtype);
  // Writes the plan's fill into masked pixels; refuses a valid pixel equal to a chosen fill.
  static Status FillMasked(const FieldPlan& plan, const Region& region, const Array& mask,
                           Array* data);

  const GeoTiffSource* source_;
  int64_t open_item_ = -1;
  DatasetPtr x_ds_;
  DatasetPtr y_ds_;
};

class GeoTiffSource : public Source {
 public:
  ~GeoTiffSource() override {
    for (const auto& path : vsimem_files_) VSIUnlink(path.c_str());
  }

  std::string kind() const override { return "geotiff"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(scenes_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_[index]; }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override {
    return std::unique_ptr<ItemReader>(new GeoTiffReader(this));
  }

  bool PrefersWindowReads() const override { return true; }

  // GDAL's block cache defaults to 5% of RAM and only grows: every decoded block then lands on
  // freshly faulted, zeroed pages (a quarter of the CPU time of an uncompressed ingest). A cache
  // that holds a few rows of tiles per thread recycles block buffers instead. Each thread reads
  // one row of tiles at a time, so that is the working set; an explicit GDAL_CACHEMAX wins.
  void PrepareReads(int64_t tile_rows, int threads) const override {
    if (CPLGetConfigOption("GDAL_CACHEMAX", nullptr) != nullptr) return;
    int64_t row_bytes = 0;
    for (const Scene& s : scenes_) {
      int64_t bytes_per_pixel = 0;
      for (const BandInfo& b : s.x.bands) bytes_per_pixel += GDALGetDataTypeSizeBytes(b.type);
      if (s.y)
        for (const BandInfo& b : s.y->bands) bytes_per_pixel += GDALGetDataTypeSizeBytes(b.type);
      row_bytes = std::max(row_bytes, s.grid.width * tile_rows * bytes_per_pixel);
    }
    const int64_t wanted =
        std::max<int64_t>(64 << 20, 4 * int64_t{std::max(threads, 1)} * row_bytes);
    if (wanted < GDALGetCacheMax64()) GDALSetCacheMax64(wanted);
  }

  void AddTileMeta(int64_t item, const Region& w, nlohmann::json* meta) const override {
    const Grid& g = scenes_[item].grid;
    if (!g.has_gt) return;
    const double* t = g.gt;
    (*meta)["geotransform"] = {t[0] + w.col * t[1] + w.row * t[2], t[1], t[2],
                               t[3] + w.col * t[4] + w.row * t[5], t[4], t[5]};
  }

  nlohmann::json ManifestAttrs() const override {
    nlohmann::json scenes = nlohmann::json::array();
    std::set<std::string> crs_set;
    for (const Scene& s : scenes_) {
      nlohmann::json j = {{"name", s.name},          {"files", s.files},
                          {"height", s.grid.height}, {"width", s.grid.width},
                          {"crs_wkt", s.grid.wkt},   {"warped", s.warped}};
      if (auto epsg = EpsgOf(s.grid.wkt)) j["epsg"] = *epsg;
      if (s.grid.has_gt) j["geotransform"] = std::vector<double>(s.grid.gt, s.grid.gt + 6);
      nlohmann::json bands = nlohmann::json::array();
      for (const auto& b : s.x.bands) bands.push_back(b.number);
      j["bands"] = bands;
      if (s.y) j["label"] = s.y->display;
      if (s.warped) {
        j["resampling"] = s.resampling;
        j["warp_scale"] = {s.warp_scale.first, s.warp_scale.second};
      }
      scenes.push_back(j);
      crs_set.insert(s.grid.wkt);
    }
    nlohmann::json attrs = {{"scenes", scenes}, {"stack_bands", options_.stack_bands}};
    if (crs_set.size() == 1) attrs["crs_wkt"] = *crs_set.begin();
    if (!options_.dst_crs.empty()) attrs["dst_crs"] = options_.dst_crs;
    if (options_.res) attrs["res"] = {options_.res->first, options_.res->second};
    if (!options_.labels.empty()) attrs["labels"] = options_.labels;
    return attrs;
  }

  Status Init(const GeoTiffOptions& options);

  const Scene& scene(int64_t i) const { return scenes_[i]; }

 private:
  Result<Scene> BuildScene(const std::vector<std::string>& files, size_t index);
  Status AttachLabel(Scene* scene, const std::string& label_file);

  GeoTiffOptions options_;
  std::string vsimem_;
  std::vector<std::string> vsimem_files_;
  std::vector<Scene> scenes_;
  std::vector<ItemInfo> items_;
  SourceSchema schema_;
};

Result<Scene> GeoTiffSource::BuildScene(const std::vector<std::string>& files, size_t index) {
  Scene scene;
  for (const auto& f : files) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(f, ec);
    scene.files.push_back(ec ? f : abs.lexically_normal().string());
  }
  scene.name = files.size() == 1
                   ? files[0]
                   : files[0] + " (+" + std::to_string(files.size() - 1) + " stacked)";
  std::vector<DatasetPtr> opened;
  for (size_t i = 0; i < files.size(); ++i) {
    TS_ASSIGN_OR_RETURN(DatasetPtr ds, OpenRaster(scene.files[i], files[i]));
    opened.push_back(std::move(ds));
  }
  std::string spec = scene.files[0];
  if (options_.stack_bands) {
    const Grid first = GridOf(Get(opened[0]));
    for (size_t i = 0; i < files.size(); ++i) {
      const int count = GDALGetRasterCount(Get(opened[i]));
      if (count != 1)
        return InvalidArgument("geotiff --stack-bands: ", files[i], " has ", count,
                               " bands; stacking takes single-band files (one channel each)");
      const std::string diff = GridDifference(first, GridOf(Get(opened[i])));
      if (!diff.empty())
        return InvalidArgument("geotiff --stack-bands: ", files[i], " is not on the grid of ",
                               files[0], " (", diff,
                               "); stacked bands must share size, "
                               "geotransform and CRS (warp them first, or pass --dst-crs/--res)");
    }
    spec = vsimem_ + "scene" + std::to_string(index) + "-stack.vrt";
    ArgList args;
    args.Add("-separate");
    GdalErrorScope scope;
    GDALBuildVRTOptions* vrt_options = GDALBuildVRTOptionsNew(args.Get(), nullptr);
    std::vector<const char*> names;
    for (const auto& f : scene.files) names.push_back(f.c_str());
    int usage_error = 0;
    GDALDatasetH vrt = GDALBuildVRT(spec.c_str(), static_cast<int>(names.size()), nullptr,
                                    names.data(), vrt_options, &usage_error);
    GDALBuildVRTOptionsFree(vrt_options);
    if (!vrt)
      return GdalErrorScope::Error(StatusCode::kInvalidArgument,
                                   StrCat("geotiff --stack-bands ", files[0],
                                          "...: building "
                                          "the stacked VRT failed"));
    GDALClose(vrt);
    vsimem_files_.push_back(spec);
  }
  TS_ASSIGN_OR_RETURN(DatasetPtr base, OpenRaster(spec, scene.name));

  const bool warp = !options_.dst_crs.empty() || options_.res.has_value();
  bool add_alpha = false;
  if (warp) {
    // Resampling: integer data keeps its values (nearest), continuous float data interpolates.
    TS_ASSIGN_OR_RETURN(auto probe, ReadBands(Get(base), {}, scene.name, false));
    bool all_nodata = true, is_float = false;
    for (const auto& b : probe) {
      all_nodata &= b.nodata.has_value();
      is_float |= GDALDataTypeIsFloating(b.type) != 0;
    }
    scene.resampling =
        !options_.resampling.empty() ? options_.resampling : (is_float ? "bilinear" : "near");
    ArgList args;
    args.Add("-of");
    args.Add("VRT");
    args.Add("-t_srs");
    args.Add(!options_.dst_crs.empty() ? options_.dst_crs : CrsWkt(Get(base)));
    if (options_.res) {
      args.Add("-tr");
      args.Add(StrCat(options_.res->first));
      args.Add(StrCat(options_.res->second));
      args.Add("-tap");  // pixel edges on multiples of the resolution: all scenes share one grid
    }
    args.Add("-r");
    args.Add(scene.resampling);
    // Interpolated values stored as float are interpolated in float (not rounded to the bands'
    // integer type first).
    if (options_.store_dtype && IsFloat(*options_.store_dtype) && !is_float) {
      args.Add("-ot");
      args.Add(*options_.store_dtype == DType::kF64 ? "Float64" : "Float32");
    }
    // One kernel scale for the whole scene: by default GDAL derives it per processing chunk
    // from that chunk's source/target windows, so bilinear/cubic values depend on how the warp
    // is chunked (a warped VRT read block by block vs gdalwarp's chunks) and differ on most
    // pixels. With XSCALE/YSCALE fixed, `gdalwarp -wo XSCALE=.. -wo YSCALE=..` (the values are
    // in the manifest) gives the same pixels, for every resampling.
    TS_ASSIGN_OR_RETURN(scene.warp_scale, WarpScale(Get(base), options_, scene.name));
    args.Add("-wo");
    args.Add(StrCat("XSCALE=", std::setprecision(17), scene.warp_scale.first));
    args.Add("-wo");
    args.Add(StrCat("YSCALE=", std::setprecision(17), scene.warp_scale.second));
    // The exact transformer: pixel values do not depend on how the warp is chunked into blocks
    // (the default 0.125-pixel approximation picks different neighbours per chunk).
    args.Add("-et");
    args.Add("0");
    // Without nodata, pixels outside the footprint would read as 0: an alpha band marks them (a
    // band with nodata is filled with it; the warper keeps the source nodata as the target's).
    add_alpha = !all_nodata;
    if (add_alpha) args.Add("-dstalpha");
    const std::string vrt = vsimem_ + "scene" + std::to_string(index) + "-warp.vrt";
    TS_RETURN_IF_ERROR(WarpToVrt(Get(base), vrt, args, scene.name));
    vsimem_files_.push_back(vrt);
    spec = vrt;
    scene.warped = true;
    TS_ASSIGN_OR_RETURN(base, OpenRaster(spec, scene.name));
  }
  scene.grid = GridOf(Get(base));
  scene.x.spec = spec;
  scene.x.display = scene.name;
  // --bands numbers the source bands; an alpha band added by the warper comes after them.
  TS_ASSIGN_OR_RETURN(scene.x.bands, ReadBands(Get(base), options_.bands, scene.name, true));
  if (scene.warped && add_alpha) scene.x.alpha_band = GDALGetRasterCount(Get(base));
  return scene;
}

Status GeoTiffSource::AttachLabel(Scene* scene, const std::string& label_file) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(label_file, ec);
  const std::string path = ec ? label_file : abs.lexically_normal().string();
  TS_ASSIGN_OR_RETURN(DatasetPtr label, OpenRaster(path, label_file));
  scene->files.push_back(path);
  FieldPlan plan;
  plan.display = label_file;
  plan.spec = path;
  const Grid label_grid = GridOf(Get(label));
  if (!GridDifference(scene->grid, label_grid).empty()) {
    const Grid& g = scene->grid;
    if (!g.has_gt || g.gt[2] != 0.0 || g.gt[4] != 0.0)
      return InvalidArgument("geotiff --label ", label_file, ": scene ", scene->name,
                             " has no north-up geotransform to warp the label onto");
    ArgList args;
    args.Add("-of");
    args.Add("VRT");
    args.Add("-t_srs");
    args.Add(g.wkt);
    args.Add("-te");
    const double xmin = g.gt[0], xmax = g.gt[0] + g.width * g.gt[1];
    const double ymax = g.gt[3], ymin = g.gt[3] + g.height * g.gt[5];
    for (double v :
         {std::min(xmin, xmax), std::min(ymin, ymax), std::max(xmin, xmax), std::max(ymin, ymax)})
      args.Add(StrCat(std::setprecision(17), v));
    args.Add("-ts");
    args.Add(std::to_string(g.width));
    args.Add(std::to_string(g.height));
    args.Add("-r");
    args.Add("near");  // labels are classes: never interpolate
    args.Add("-et");
    args.Add("0");
    const std::string vrt = vsimem_ + "label" + std::to_string(&*scene - scenes_.data()) + ".vrt";
    TS_RETURN_IF_ERROR(WarpToVrt(Get(label), vrt, args, label_file));
    vsimem_files_.push_back(vrt);
    plan.spec = vrt;
    TS_ASSIGN_OR_RETURN(label, OpenRaster(vrt, label_file));
  }
  TS_ASSIGN_OR_RETURN(plan.bands, ReadBands(Get(label), {}, label_file, true));
  scene->y = std::move(plan);
  return Status::Ok();
}

Status GeoTiffSource::Init(const GeoTiffOptions& options) {
  EnsureGdalRegistered();
  options_ = options;
  vsimem_ = VsimemPrefix();
  if (options.files.empty()) return InvalidArgument("geotiff: no input files");
  if (!options.resampling.empty() && !kResamplings.count(options.resampling))
    return InvalidArgument("--resampling '", options.resampling,
                           "': not a GDAL resampling method (near, bilinear, cubic, "
                           "cubicspline, lanczos, average, mode, min, max, med, q1, q3, sum, rms)");
  if (options.res && (!(options.res->first > 0) || !(options.res->second > 0)))
    return InvalidArgument("--res ", options.res->first, ",", options.res->second,
                           ": must be positive");
  std::vector<std::vector<std::string>> groups;
  if (options.stack_bands)
    groups.push_back(options.files);
  else
    for (const auto& f : options.files) groups.push_back({f});
  for (size_t i = 0; i < groups.size(); ++i) {
    TS_ASSIGN_OR_RETURN(Scene scene, BuildScene(groups[i], i));
    scenes_.push_back(std::move(scene));
  }
  if (!options.labels.empty()) {
    if (options.labels.size() != 1 && options.labels.size() != scenes_.size())
      return InvalidArgument("--label: ", options.labels.size(), " label files for ",
                             scenes_.size(), " scenes (give one, or one per scene)");
    for (size_t i = 0; i < scenes_.size(); ++i)
      TS_RETURN_IF_ERROR(
          AttachLabel(&scenes_[i], options.labels[options.labels.size() == 1 ? 0 : i]));
  }

  std::vector<const FieldPlan*> x_plans, y_plans;
  std::vector<std::string> scene_names;
  for (const Scene& s : scenes_) {
    x_plans.push_back(&s.x);
    if (s.y) y_plans.push_back(&*s.y);
    scene_names.push_back(s.name);
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < scenes_[0].x.bands.size(); ++i) {
    const BandInfo& b = scenes_[0].x.bands[i];
    if (!b.description.empty())
      names.push_back(b.description);
    else if (options.stack_bands)
      names.push_back(std::filesystem::path(scenes_[0].files[b.number - 1]).stem().string());
    else
      names.push_back("b" + std::to_string(b.number));
  }
  TS_ASSIGN_OR_RETURN(schema_.x, MakeFieldInfo(x_plans, names, scene_names));
  if (!y_plans.empty()) {
    std::vector<std::string> y_names;
    for (const auto& b : scenes_[0].y->bands)
      y_names.push_back(scenes_[0].y->bands.size() == 1 ? "label"
                                                        : "label" + std::to_string(b.number));
    TS_ASSIGN_OR_RETURN(FieldInfo y, MakeFieldInfo(y_plans, y_names, scene_names));
    schema_.y = y;
  }
  std::vector<FieldPlan*> x_fills, y_fills;
  for (Scene& s : scenes_) {
    DecideMasks(&s.x, schema_.x.nodata);
    x_fills.push_back(&s.x);
    if (s.y) {
      DecideMasks(&*s.y, schema_.y->nodata);
      y_fills.push_back(&*s.y);
    }
  }
  TS_RETURN_IF_ERROR(ChooseFills(&schema_.x, x_fills, options.dst_nodata, options.store_dtype));
  if (schema_.y) TS_RETURN_IF_ERROR(ChooseFills(&*schema_.y, y_fills, std::nullopt, std::nullopt));
  for (Scene& s : scenes_) {
    ItemInfo info;
    info.name = s.name;
    info.height = s.grid.height;
    info.width = s.grid.width;
    info.files = s.files;
    info.meta = {{"scene", s.name}};
    items_.push_back(info);
  }
  return Status::Ok();
}

// ------------------------------------------------------------------ reading

Status GeoTiffReader::Read(int64_t item, const Region& region, RegionData* out) {
  const Scene& scene = source_->scene(item);
  if (open_item_ != item) {
    // One scene open per thread at a time: the driver works through scenes in order.
    x_ds_.reset();
    y_ds_.reset();
    open_item_ = -1;
    TS_ASSIGN_OR_RETURN(x_ds_, OpenRaster(scene.x.spec, scene.name));
    if (scene.y) {
      TS_ASSIGN_OR_RETURN(y_ds_, OpenRaster(scene.y->spec, scene.y->display));
    }
    open_item_ = item;
  }
  const SourceSchema& schema = source_->schema();
  TS_RETURN_IF_ERROR(ReadField(scene.x, schema.x.dtype, Get(x_ds_), region, &out->x, &out->x_mask));
  if (scene.y)
    TS_RETURN_IF_ERROR(
        ReadField(*scene.y, schema.y->dtype, Get(y_ds_), region, &out->y, &out->y_mask));
  return Status::Ok();
}

void Reshape(Array* a, DType dtype, std::vector<int64_t> shape) {
  if (a->dtype == dtype && a->shape == shape) return;  // reuse the buffer, no zero-fill
  *a = Array(dtype, std::move(shape));
}

Status GeoTiffReader::ReadField(const FieldPlan& plan, DType dtype, GDALDatasetH ds,
                                const Region& region, Array* data, Array* mask) {
  const int channels = static_cast<int>(plan.bands.size());
  const int w = static_cast<int>(region.width), h = static_cast<int>(region.height);
  Reshape(data, dtype, {channels, region.height, region.width});
  std::vector<int> band_map;
  for (const auto& b : plan.bands) band_map.push_back(b.number);
  const size_t elem = DTypeSize(dtype);
  GdalErrorScope scope;
  const CPLErr err = GDALDatasetRasterIO(
      ds, GF_Read, static_cast<int>(region.col), static_cast<int>(region.row), w, h,
      data->data.data(), w, h, GdalFromDType(dtype), channels, band_map.data(),
      static_cast<int>(elem), static_cast<GSpacing>(elem) * w, static_cast<GSpacing>(elem) * w * h);
  if (err != CE_None) return Locate(plan, ds, region, dtype);
  if (plan.mask_mode == FieldPlan::MaskMode::kNone) {
    mask->data.clear();
    mask->shape.clear();
    return FillMasked(plan, region, *mask, data);
  }
  const int mask_channels = plan.mask_mode == FieldPlan::MaskMode::kPerDataset ? 1 : channels;
  Reshape(mask, DType::kU8, {mask_channels, region.height, region.width});
  if (plan.alpha_band) {
    thread_local std::vector<float> alpha;
    alpha.resize(static_cast<size_t>(w) * h);
    if (GDALRasterIO(GDALGetRasterBand(ds, plan.alpha_band), GF_Read, static_cast<int>(region.col),
                     static_cast<int>(region.row), w, h, alpha.data(), w, h, GDT_Float32, 0,
                     0) != CE_None)
      return GdalErrorScope::Error(
          StatusCode::kDataLoss,
          StrCat("geotiff ", plan.display, ": warped alpha band ", plan.alpha_band, ", rows ",
                 region.row, "-", region.row + h - 1, ", cols ", region.col, "-",
                 region.col + w - 1));
    for (size_t i = 0; i < alpha.size(); ++i) mask->data[i] = alpha[i] != 0;
    return FillMasked(plan, region, *mask, data);
  }
  for (int c = 0; c < mask_channels; ++c) {
    uint8_t* dst = mask->data.data() + static_cast<size_t>(c) * w * h;
    if (!plan.channel_needs_mask[c]) {
      std::memset(dst, 255, static_cast<size_t>(w) * h);
      continue;
    }
    GDALRasterBandH mask_band = GDALGetMaskBand(GDALGetRasterBand(ds, plan.bands[c].number));
    if (GDALRasterIO(mask_band, GF_Read, static_cast<int>(region.col), static_cast<int>(region.row),
                     w, h, dst, w, h, GDT_Byte, 0, 0) != CE_None)
      return GdalErrorScope::Error(
          StatusCode::kDataLoss,
          StrCat("geotiff ", plan.display, ": mask of band ", plan.bands[c].number, ", rows ",
                 region.row, "-", region.row + h - 1, ", cols ", region.col, "-",
                 region.col + w - 1));
  }
  return FillMasked(plan, region, *mask, data);
}

Status GeoTiffReader::FillMasked(const FieldPlan& plan, const Region& region, const Array& mask,
                                 Array* data) {
  const int64_t channels = static_cast<int64_t>(plan.bands.size());
  const int64_t plane = region.height * region.width;
  const int64_t mask_channels = mask.data.empty() ? 0 : mask.shape[0];
  return VisitDType(data->dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    T* all = reinterpret_cast<T*>(data->data.data());
    for (int64_t c = 0; c < channels; ++c) {
      const bool masked = mask_channels > 0 && plan.channel_needs_mask[c];
      if (!masked && !plan.fill_chosen[c]) continue;
      T* v = all + c * plane;
      const uint8_t* m = masked ? mask.data.data() + (mask_channels > 1 ? c : 0) * plane : nullptr;
      const T fill = static_cast<T>(plan.mask_fill[c]);
      if (plan.fill_chosen[c]) {
        for (int64_t i = 0; i < plane; ++i) {
          if ((!m || m[i]) && v[i] == fill)
            return InvalidArgument(
                "geotiff ", plan.display, ": band ", plan.bands[c].number, ", row ",
                region.row + i / region.width, ", col ", region.col + i % region.width,
                ": a valid pixel equals ", plan.mask_fill[c],
                ", the nodata value chosen for masked pixels (outside the warped footprint, "
                "alpha or mask band); choose another with --dst-nodata, or store --dtype f32 "
                "(masked pixels become NaN)");
        }
      }
      if (m)
        for (int64_t i = 0; i < plane; ++i) v[i] = m[i] ? v[i] : fill;
    }
    return Status::Ok();
  });
}

// After a failed read: finds the band and block that fail, for a message a person can act on.
Status GeoTiffReader::Locate(const FieldPlan& plan, GDALDatasetH ds, const Region& region,
                             DType dtype) {
  const std::string first_msg = GdalErrorScope::LastMessage();
  const std::string rows = StrCat("rows ", region.row, "-", region.row + region.height - 1,
                                  ", cols ", region.col, "-", region.col + region.width - 1);
  for (const auto& b : plan.bands) {
    GDALRasterBandH band = GDALGetRasterBand(ds, b.number);
    int bx = 0, by = 0;
    GDALGetBlockSize(band, &bx, &by);
    if (bx <= 0 || by <= 0) continue;
    const int type_size = GDALGetDataTypeSizeBytes(GDALGetRasterDataType(band));
    std::vector<uint8_t> block(static_cast<size_t>(bx) * by * type_size);
    for (int64_t y = region.row / by; y * by < region.row + region.height; ++y) {
      for (int64_t x = region.col / bx; x * bx < region.col + region.width; ++x) {
        CPLErrorReset();
        // RasterIO of just this block (GDALReadBlock would bypass VRT/warp logic the same way).
        const int x0 = static_cast<int>(x * bx), y0 = static_cast<int>(y * by);
        const int ww = static_cast<int>(std::min<int64_t>(bx, GDALGetRasterBandXSize(band) - x0));
        const int hh = static_cast<int>(std::min<int64_t>(by, GDALGetRasterBandYSize(band) - y0));
        if (GDALRasterIO(band, GF_Read, x0, y0, ww, hh, block.data(), ww, hh,
                         GDALGetRasterDataType(band), 0, 0) != CE_None) {
          return GdalErrorScope::Error(
              StatusCode::kDataLoss,
              StrCat("geotiff ", plan.display, ": band ", b.number, ", block (x=", x, ", y=", y,
                     ") of ", bx, "x", by, " (rows ", y0, "-", y0 + hh - 1, ", cols ", x0, "-",
                     x0 + ww - 1, ")"),
              first_msg);
        }
      }
    }
  }
  (void)dtype;
  return Status(StatusCode::kDataLoss,
                StrCat("geotiff ", plan.display, ": reading ", rows,
                       " failed: ", first_msg.empty() ? "GDAL reported no detail" : first_msg));
}

}  // namespace

Result<std::unique_ptr<Source>> OpenGeoTiffSource(const GeoTiffOptions& options) {
  auto source = std::make_unique<GeoTiffSource>();
  TS_RETURN_IF_ERROR(source->Init(options));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace tilestage::ingest
