#include "ingest/netcdf_source.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tilestage::ingest {
namespace {

class NetcdfSource;

class NetcdfReader : public ItemReader {
 public:
  explicit NetcdfReader(const NetcdfSource& source) : source_(source) {}
  Status Read(int64_t item, const Region& region, RegionData* out) override;

 private:
  const NetcdfSource& source_;
  NetcdfDataset::RawStep raw_;  // reused between reads
  std::vector<uint64_t> valid_;
};

class NetcdfSource : public Source {
 public:
  NetcdfSource(std::unique_ptr<NetcdfDataset> ds, const NetcdfSourceOptions& options)
      : ds_(std::move(ds)), options_(options) {
    FieldInfo field;
    field.dtype = ds_->dtype();
    for (const auto& c : ds_->channels()) {
      field.channel_names.push_back(c.name);
      field.units.push_back(c.units);
    }
    schema_.x = field;
    if (options_.lead > 0 || options_.lead_ms) schema_.y = field;
    const auto& steps = ds_->steps();
    const int64_t num_steps = static_cast<int64_t>(steps.size());
    for (int64_t t = 0; t < num_steps; t += options_.time_stride) {
      const std::optional<int64_t> ty = TargetStep(t);
      if (schema_.y && !ty) continue;  // no step at this lead after t
      ItemInfo info;
      const NetcdfStep& s = steps[t];
      info.height = ds_->height();
      info.width = ds_->width();
      // The file too: messages about an item (a tile larger than the grid...) name it.
      info.name =
          ds_->files()[s.file] + (s.iso.empty() ? " step " + std::to_string(t) : " " + s.iso);
      info.meta = {{"step", t}, {"file", ds_->files()[s.file]}, {"time_index", s.index}};
      if (!s.iso.empty()) info.meta["time"] = s.iso;
      info.files.push_back(ds_->files()[s.file]);
      if (ty) {
        const NetcdfStep& sy = steps[*ty];
        info.meta["step_y"] = *ty;
        info.meta["file_y"] = ds_->files()[sy.file];
        info.meta["time_index_y"] = sy.index;
        if (!sy.iso.empty()) info.meta["time_y"] = sy.iso;
        if (sy.file != s.file) info.files.push_back(ds_->files()[sy.file]);
      }
      steps_.push_back(t);
      y_steps_.push_back(ty.value_or(-1));
      items_.push_back(std::move(info));
    }
  }

  // The step y pairs with step t: t + lead steps, or the step exactly lead_ms later.
  std::optional<int64_t> TargetStep(int64_t t) const {
    const auto& steps = ds_->steps();
    if (options_.lead_ms) {
      const int64_t want = *steps[t].instant_ms + *options_.lead_ms;
      auto it = std::lower_bound(steps.begin() + t, steps.end(), want,
                                 [](const NetcdfStep& s, int64_t v) { return *s.instant_ms < v; });
      if (it == steps.end() || *it->instant_ms != want) return std::nullopt;
      return it - steps.begin();
    }
    if (options_.lead == 0 || t + options_.lead >= static_cast<int64_t>(steps.size()))
      return std::nullopt;
    return t + options_.lead;
  }

  std::string kind() const override { return "netcdf"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(items_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_.at(index); }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override {
    return std::unique_ptr<ItemReader>(new NetcdfReader(*this));
  }

  void AddTileMeta(int64_t item, const Region& window, nlohmann::json* meta) const override {
    const auto& lat = ds_->latitude().values;
    const auto& lon = ds_->longitude().values;
    const int64_t r0 = std::max<int64_t>(window.row, 0);
    const int64_t r1 = std::min<int64_t>(window.row + window.height, ds_->height());
    const int64_t c0 = std::max<int64_t>(window.col, 0);
    const int64_t c1 = std::min<int64_t>(window.col + window.width, ds_->width());
    if (r0 >= r1 || c0 >= c1) return;
    const auto [lat_lo, lat_hi] = std::minmax_element(lat.begin() + r0, lat.begin() + r1);
    const auto [lon_lo, lon_hi] = std::minmax_element(lon.begin() + c0, lon.begin() + c1);
    // Geographic grids give latitude/longitude bounds; other grids bounds in their own units.
    (*meta)[ds_->latitude().geographic() ? "lat_bounds" : "y_bounds"] = {*lat_lo, *lat_hi};
    (*meta)[ds_->longitude().geographic() ? "lon_bounds" : "x_bounds"] = {*lon_lo, *lon_hi};
    if (const auto& c2 = ds_->coords_2d()) {
      // A curvilinear grid: the tile's latitude/longitude range and corners from the 2-D
      // coordinates (lon range as stored: a tile across the antimeridian spans it).
      const int64_t w = ds_->width();
      double lat_min = INFINITY, lat_max = -INFINITY, lon_min = INFINITY, lon_max = -INFINITY;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          lat_min = std::min(lat_min, c2->lat[r * w + c]);
          lat_max = std::max(lat_max, c2->lat[r * w + c]);
          lon_min = std::min(lon_min, c2->lon[r * w + c]);
          lon_max = std::max(lon_max, c2->lon[r * w + c]);
        }
      (*meta)["lat_bounds"] = {lat_min, lat_max};
      (*meta)["lon_bounds"] = {lon_min, lon_max};
      nlohmann::json corners = nlohmann::json::array();
      for (int64_t r : {r0, r1 - 1})
        for (int64_t c : {c0, c1 - 1}) corners.push_back({c2->lat[r * w + c], c2->lon[r * w + c]});
      (*meta)["corners_lat_lon"] = corners;
    }
    (*meta)["grid_index"] = {window.row, window.col};
  }

  nlohmann::json ManifestAttrs() const override {
    nlohmann::json j = ds_->Describe();
    j["lead_steps"] = options_.lead;
    if (options_.lead_ms) j["lead_ms"] = *options_.lead_ms;
    j["time_stride"] = options_.time_stride;
    j["float64"] = options_.request.float64;
    if (options_.latitude_weights) {
      const auto& lat = ds_->latitude().values;
      std::vector<double> w(lat.size());
      double sum = 0.0;
      for (size_t i = 0; i < lat.size(); ++i) {
        w[i] = std::cos(lat[i] * std::numbers::pi / 180.0);
        sum += w[i];
      }
      for (double& v : w) v = v * static_cast<double>(w.size()) / sum;
      j["latitude_weights"] = w;
    }
    // Every stored item's time stamps, so a reader can pick samples by date without opening
    // shards (capped: a century of hourly steps would bloat the manifest).
    constexpr size_t kMaxListedItems = 200000;
    if (ds_->has_time() && items_.size() <= kMaxListedItems) {
      nlohmann::json times = nlohmann::json::array();
      for (const auto& item : items_) times.push_back(item.meta.value("time", ""));
      j["item_times"] = std::move(times);
    }
    return {{"netcdf", j}};
  }

  const NetcdfDataset& dataset() const { return *ds_; }
  int64_t step_of(int64_t item) const { return steps_.at(item); }
  int64_t y_step_of(int64_t item) const { return y_steps_.at(item); }

 private:
  std::unique_ptr<NetcdfDataset> ds_;
  NetcdfSourceOptions options_;
  SourceSchema schema_;
  std::vector<ItemInfo> items_;
  std::vector<int64_t> steps_;    // parallel to items_
  std::vector<int64_t> y_steps_;  // parallel to items_; -1 without y
};

Status NetcdfReader::Read(int64_t item, const Region& region, RegionData* out) {
  const NetcdfDataset& ds = source_.dataset();
  const NetcdfDataset::Window window{region.row, region.col, region.height, region.width};
  const int64_t step = source_.step_of(item);
  // Direct reads and unpacking run in parallel; library-path reads hold the process-wide lock.
  TS_RETURN_IF_ERROR(ds.ReadRaw(static_cast<size_t>(step), window, &raw_));
  TS_RETURN_IF_ERROR(ds.Decode(raw_, &out->x, &valid_));
  if (const int64_t step_y = source_.y_step_of(item); step_y >= 0) {
    TS_RETURN_IF_ERROR(ds.ReadRaw(static_cast<size_t>(step_y), window, &raw_));
    TS_RETURN_IF_ERROR(ds.Decode(raw_, &out->y, &valid_));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Source>> OpenNetcdfSource(const NetcdfSourceOptions& options) {
  if (options.lead < 0) return InvalidArgument("--lead ", options.lead, ": must be >= 0");
  if (options.time_stride < 1) {
    return InvalidArgument("--time-stride ", options.time_stride, ": must be >= 1");
  }
  TS_ASSIGN_OR_RETURN(auto ds, NetcdfDataset::Open(options.request));
  const int64_t num_steps = static_cast<int64_t>(ds->steps().size());
  if (options.lead > 0 && !ds->has_time()) {
    return InvalidArgument("--lead ", options.lead, ": ", ds->files()[0],
                           " has no CF time coordinate, so there is no series to pair along");
  }
  if (options.latitude_weights && !ds->latitude().geographic()) {
    return InvalidArgument("--lat-weights: the grid's y axis ", ds->latitude().name, " in ",
                           ds->files()[0], " is ", ds->latitude().kind, " (", ds->latitude().units,
                           "), not latitude");
  }
  if (options.lead_ms) {
    if (*options.lead_ms <= 0) return InvalidArgument("--lead: the duration must be positive");
    if (!ds->has_time())
      return InvalidArgument("--lead: ", ds->files()[0],
                             " has no CF time coordinate, so there is no series to pair along");
  } else if (options.lead > 0 && ds->has_time()) {
    // A lead in steps is a fixed time only on a regular series.
    const auto& steps = ds->steps();
    for (size_t t = 2; t < steps.size(); ++t) {
      const int64_t before = *steps[t - 1].instant_ms - *steps[t - 2].instant_ms;
      const int64_t after = *steps[t].instant_ms - *steps[t - 1].instant_ms;
      if (before == after) continue;
      return InvalidArgument(
          "--lead ", options.lead,
          " counts time steps, but the series is irregular: ", ds->files()[steps[t - 2].file], " ",
          steps[t - 2].iso, " -> ", ds->files()[steps[t - 1].file], " ", steps[t - 1].iso, " is ",
          FormatDurationMs(before), ", then -> ", ds->files()[steps[t].file], " ", steps[t].iso,
          " is ", FormatDurationMs(after), "; give the lead as a duration (--lead 6h, --lead 1d)");
    }
  }
  if (!options.lead_ms && options.lead >= num_steps) {
    return InvalidArgument("--lead ", options.lead, " is longer than the series: ", num_steps,
                           " time step(s) from ", ds->steps().front().iso, " to ",
                           ds->steps().back().iso, " in ", ds->files().size(),
                           " file(s); the lead must be below the number of steps");
  }
  auto source = std::make_unique<NetcdfSource>(std::move(ds), options);
  if (options.lead_ms && source->num_items() == 0) {
    const auto& steps = source->dataset().steps();
    return InvalidArgument("--lead ", FormatDurationMs(*options.lead_ms),
                           ": no time step has a step that much later (", steps.size(),
                           " steps from ", steps.front().iso, " to ", steps.back().iso, ")");
  }
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace tilestage::ingest
