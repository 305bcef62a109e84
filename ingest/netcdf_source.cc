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
    if (options_.lead > 0) schema_.y = field;
    const auto& steps = ds_->steps();
    const int64_t num_steps = static_cast<int64_t>(steps.size());
    for (int64_t t = 0; t + options_.lead < num_steps; t += options_.time_stride) {
      ItemInfo info;
      const NetcdfStep& s = steps[t];
      info.height = ds_->height();
      info.width = ds_->width();
      info.name = s.iso.empty() ? "step " + std::to_string(t) : s.iso;
      info.meta = {{"step", t}, {"file", ds_->files()[s.file]}, {"time_index", s.index}};
      if (!s.iso.empty()) info.meta["time"] = s.iso;
      info.files.push_back(ds_->files()[s.file]);
      if (options_.lead > 0) {
        const NetcdfStep& sy = steps[t + options_.lead];
        info.meta["step_y"] = t + options_.lead;
        info.meta["file_y"] = ds_->files()[sy.file];
        info.meta["time_index_y"] = sy.index;
        if (!sy.iso.empty()) info.meta["time_y"] = sy.iso;
        if (sy.file != s.file) info.files.push_back(ds_->files()[sy.file]);
      }
      steps_.push_back(t);
      items_.push_back(std::move(info));
    }
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
    (*meta)["lat_bounds"] = {*lat_lo, *lat_hi};
    (*meta)["lon_bounds"] = {*lon_lo, *lon_hi};
    (*meta)["grid_index"] = {window.row, window.col};
  }

  nlohmann::json ManifestAttrs() const override {
    nlohmann::json j = ds_->Describe();
    j["lead_steps"] = options_.lead;
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
  int64_t lead() const { return options_.lead; }

 private:
  std::unique_ptr<NetcdfDataset> ds_;
  NetcdfSourceOptions options_;
  SourceSchema schema_;
  std::vector<ItemInfo> items_;
  std::vector<int64_t> steps_;  // parallel to items_
};

Status NetcdfReader::Read(int64_t item, const Region& region, RegionData* out) {
  const NetcdfDataset& ds = source_.dataset();
  const NetcdfDataset::Window window{region.row, region.col, region.height, region.width};
  const int64_t step = source_.step_of(item);
  // Direct reads and unpacking run in parallel; library-path reads hold the process-wide lock.
  TS_RETURN_IF_ERROR(ds.ReadRaw(static_cast<size_t>(step), window, &raw_));
  TS_RETURN_IF_ERROR(ds.Decode(raw_, &out->x, &valid_));
  if (source_.lead() > 0) {
    TS_RETURN_IF_ERROR(ds.ReadRaw(static_cast<size_t>(step + source_.lead()), window, &raw_));
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
  if (options.lead >= num_steps) {
    return InvalidArgument("--lead ", options.lead, " is longer than the series: ", num_steps,
                           " time step(s) from ", ds->steps().front().iso, " to ",
                           ds->steps().back().iso, " in ", ds->files().size(),
                           " file(s); the lead must be below the number of steps");
  }
  return std::unique_ptr<Source>(new NetcdfSource(std::move(ds), options));
}

}  // namespace tilestage::ingest
