#include "ingest/driver.h"

#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "ingest/mpi_split.h"
#include "ingest/nodata_values.h"
#include "ingest/progress.h"
#include "ingest/rank_messages.h"
#include "tiling/manifest.h"
#include "tiling/shard.h"
#include "tiling/store.h"

namespace tilestage::ingest {
namespace {

// ------------------------------------------------------------------ cutting and conversion

template <typename D, typename S>
D ConvertValue(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_floating_point_v<D>) {
    return static_cast<D>(v);
  } else {
    // Round to nearest and saturate: a float field stored as u8 keeps its visible range.
    double x = static_cast<double>(v);
    if (std::isnan(x)) return D{0};
    x = std::nearbyint(x);
    if (x <= static_cast<double>(std::numeric_limits<D>::lowest()))
      return std::numeric_limits<D>::lowest();
    if (x >= static_cast<double>(std::numeric_limits<D>::max()))
      return std::numeric_limits<D>::max();
    return static_cast<D>(x);
  }
}

// What the store keeps of one field: its dtype and, per channel, the stored value that marks an
// invalid pixel (null: none; float fields then mark them with NaN). The loader knows validity only
// from the stored values, so every pixel that is invalid (NaN, the source's nodata, a mask,
// padding) must be stored as a value it reads as invalid, whatever dtype the store keeps.
struct StoredField {
  std::string name;  // "x" or "y", for messages
  DType dtype = DType::kF32;
  std::vector<std::optional<double>> nodata;
  // Per channel: a valid value could convert (round, saturate) into the stored nodata value and
  // silently turn invalid; such a value is refused.
  std::vector<bool> refuse_collisions;
};

// The stored field for source field `info` kept as `out`. Float output: invalid values become NaN
// when converted, and keep the source's nodata when the dtype is kept. Integer output: a field
// that may hold invalid pixels (NaN in a float source, the source's nodata, padded windows) keeps
// the source's nodata when `out` represents it exactly, else gets DefaultNodata(out).
StoredField PlanStoredField(const std::string& name, const FieldInfo& info, DType out,
                            bool any_padded) {
  StoredField f;
  f.name = name;
  f.dtype = out;
  const size_t channels = static_cast<size_t>(info.channels());
  f.nodata.resize(channels);
  f.refuse_collisions.assign(channels, false);
  for (size_t c = 0; c < channels; ++c) {
    std::optional<double> nd = c < info.nodata.size() ? info.nodata[c] : std::nullopt;
    // An integer source never holds a nodata value its type cannot represent: no pixel matches.
    if (nd && !RepresentsExactly(info.dtype, *nd)) nd.reset();
    if (IsFloat(out)) {
      if (out == info.dtype) f.nodata[c] = nd;
      continue;
    }
    if (!(IsFloat(info.dtype) || nd || any_padded)) continue;
    if (nd && RepresentsExactly(out, *nd)) {
      f.nodata[c] = nd;
      f.refuse_collisions[c] = out != info.dtype;
    } else {
      f.nodata[c] = DefaultNodata(out);
      f.refuse_collisions[c] = true;
    }
  }
  return f;
}

struct CutContext {
  const Array* src = nullptr;   // [C, box.height, box.width]
  const Array* mask = nullptr;  // [C or 1, box.height, box.width] or empty
  const FieldInfo* info = nullptr;
  const StoredField* stored = nullptr;
  const std::string* item_name = nullptr;
  Region box;     // region the source data covers (clipped to the item)
  Region window;  // the tile, possibly extending past the item (pad)
  int64_t item_height = 0;
  int64_t item_width = 0;
};

// Cuts ctx.window out of ctx.src into *tile (dtype ctx.stored->dtype), storing every invalid
// pixel as the stored nodata value (NaN for float fields without one), and fills *valid ([C,
// th*tw], 1 = valid) unless the values alone tell validity, in which case valid is left empty:
// every value is valid (integers without nodata, mask or padding), or NaN is the only invalid value
// (float data kept as float32/float64, without nodata, mask or padding). Statistics then skip NaN
// by themselves and ValidFraction reads NaN off the tile, which saves building and reducing a byte
// per value. InvalidArgument when a valid value converts into the stored nodata value.
Status CutField(const CutContext& ctx, Array* tile, std::vector<uint8_t>* valid) {
  const Array& src = *ctx.src;
  const StoredField& stored = *ctx.stored;
  const DType out = stored.dtype;
  const int64_t channels = src.shape[0];
  const int64_t th = ctx.window.height, tw = ctx.window.width;
  const Region inside = ClipToItem(ctx.window, ctx.item_height, ctx.item_width);
  const int64_t vr = inside.height, vc = inside.width;
  const int64_t r0 = ctx.window.row - ctx.box.row, c0 = ctx.window.col - ctx.box.col;
  const int64_t box_w = ctx.box.width, box_plane = ctx.box.height * ctx.box.width;
  const bool padded = vr < th || vc < tw;
  const bool has_mask = ctx.mask && !ctx.mask->data.empty();
  const int64_t mask_channels = has_mask ? ctx.mask->shape[0] : 0;
  bool has_nodata = false, refuse = false;
  for (const auto& nd : ctx.info->nodata) has_nodata |= nd.has_value();
  for (const bool r : stored.refuse_collisions) refuse |= r;
  const bool nan_only =
      !padded && !has_mask && !has_nodata && !refuse && IsFloat(src.dtype) && IsFloat(out);
  const bool may_be_invalid =
      (padded || has_mask || has_nodata || refuse || IsFloat(src.dtype)) && !nan_only;
  // A converted field stores its invalid pixels as its own nodata value (NaN for float).
  const bool rewrite_invalid = out != src.dtype;

  const bool in_place = tile == ctx.src;  // the data already is the tile (same dtype, no pad)
  if (!in_place && (tile->dtype != out || tile->shape != std::vector<int64_t>{channels, th, tw}))
    *tile = Array(out, {channels, th, tw});  // every element is written below
  if (may_be_invalid)
    valid->assign(static_cast<size_t>(channels * th * tw), 1);
  else
    valid->clear();

  return VisitDType(src.dtype, [&](auto s_zero) -> Status {
    using S = decltype(s_zero);
    return VisitDType(out, [&](auto d_zero) -> Status {
      using D = decltype(d_zero);
      const S* s_all = reinterpret_cast<const S*>(src.data.data());
      D* d_all = reinterpret_cast<D*>(tile->data.data());
      for (int64_t c = 0; c < channels; ++c) {
        const std::optional<double> nd =
            c < static_cast<int64_t>(ctx.info->nodata.size()) ? ctx.info->nodata[c] : std::nullopt;
        const std::optional<double> stored_nd = stored.nodata[c];
        const D fill = stored_nd ? ConvertValue<D>(*stored_nd)
                                 : (std::is_floating_point_v<D>
                                        ? std::numeric_limits<D>::quiet_NaN()
                                        : D{0});  // integers without nodata are never invalid
        const bool check_collisions = stored.refuse_collisions[c];
        // GDAL compares float pixels with the nodata value cast to the band type; integer
        // bands only match a nodata value they can represent exactly.
        const bool has_nd_s = nd.has_value() && RepresentsExactly(src.dtype, *nd);
        const S nd_s = has_nd_s ? static_cast<S>(*nd) : S{};
        const S* s_plane = s_all + c * box_plane;
        D* d_plane = d_all + c * th * tw;
        const uint8_t* m_plane =
            has_mask ? ctx.mask->data.data() + (mask_channels > 1 ? c : 0) * box_plane : nullptr;
        uint8_t* v_plane = may_be_invalid ? valid->data() + c * th * tw : nullptr;
        for (int64_t r = 0; r < th; ++r) {
          D* d = d_plane + r * tw;
          if (r >= vr) {
            std::fill(d, d + tw, fill);
            if (v_plane) std::fill(v_plane + r * tw, v_plane + (r + 1) * tw, uint8_t{0});
            continue;
          }
          const S* s = s_plane + (r0 + r) * box_w + c0;
          if (!in_place) {
            if constexpr (std::is_same_v<S, D>)
              std::memcpy(d, s, vc * sizeof(S));
            else
              for (int64_t i = 0; i < vc; ++i) d[i] = ConvertValue<D>(s[i]);
            std::fill(d + vc, d + tw, fill);
          }
          if (!v_plane) continue;
          uint8_t* v = v_plane + r * tw;
          const uint8_t* m = m_plane ? m_plane + (r0 + r) * box_w + c0 : nullptr;
          // One simple pass per condition, each branch-free so that it vectorizes.
          if constexpr (std::is_floating_point_v<S>) {
            for (int64_t i = 0; i < vc; ++i) v[i] = s[i] == s[i];  // not NaN
          } else {
            std::fill(v, v + vc, uint8_t{1});
          }
          if (m)
            for (int64_t i = 0; i < vc; ++i) v[i] &= m[i] != 0;
          if (has_nd_s)
            for (int64_t i = 0; i < vc; ++i) v[i] &= s[i] != nd_s;
          if (check_collisions) {
            uint8_t collided = 0;
            for (int64_t i = 0; i < vc; ++i) collided |= v[i] & (d[i] == fill);
            if (collided) {
              int64_t i = 0;
              while (!(v[i] && d[i] == fill)) ++i;
              return InvalidArgument(
                  "field ", stored.name, " of ", *ctx.item_name, ", channel ", c, ", row ",
                  ctx.window.row + r, ", col ", ctx.window.col + i, ": the valid value ",
                  static_cast<double>(s[i]), " is stored as ", DTypeName(out), " ",
                  static_cast<double>(fill),
                  ", the nodata value that marks invalid pixels (NaN, the source's nodata or "
                  "padding); store a wider --dtype (e.g. f32) or keep the source's dtype");
            }
          }
          if (rewrite_invalid)
            for (int64_t i = 0; i < vc; ++i) d[i] = v[i] ? d[i] : fill;
          std::fill(v + vc, v + tw, uint8_t{0});
        }
      }
      return Status::Ok();
    });
  });
}

// Fraction of pixel positions valid in every channel of `tile`, from its validity mask or, when
// CutField left the mask empty, from the per-channel counts (a channel without an invalid value
// needs no look) and NaN in the channels that have some.
double ValidFraction(const Array& tile, const std::vector<uint8_t>& valid,
                     const std::vector<ChannelStats>& stats) {
  const int64_t channels = NumChannels(tile);
  const int64_t plane = channels ? tile.NumElements() / channels : 0;
  if (plane == 0) return 1.0;
  // The AND over channels is taken plane by plane: contiguous loops the compiler vectorizes, as
  // long as they store through a plain pointer (a byte stored through the vector could alias the
  // vector's own data pointer, which would then be reloaded every iteration).
  thread_local std::vector<uint8_t> all_storage;
  uint8_t* all = nullptr;
  if (!valid.empty()) {
    all_storage.assign(valid.begin(), valid.begin() + plane);
    all = all_storage.data();
    for (int64_t c = 1; c < channels; ++c) {
      const uint8_t* v = valid.data() + c * plane;
      for (int64_t i = 0; i < plane; ++i) all[i] &= v[i];
    }
  } else {
    bool any_invalid = false;
    for (const ChannelStats& s : stats) any_invalid |= s.count < s.total;
    if (!any_invalid) return 1.0;
    all_storage.assign(static_cast<size_t>(plane), 1);
    all = all_storage.data();
    VisitDType(tile.dtype, [&](auto zero) {
      using T = decltype(zero);
      if constexpr (std::is_floating_point_v<T>) {
        for (int64_t c = 0; c < channels; ++c) {
          if (stats[c].count == stats[c].total) continue;
          const T* v = reinterpret_cast<const T*>(tile.data.data()) + c * plane;
          for (int64_t i = 0; i < plane; ++i) all[i] &= v[i] == v[i];
        }
      }
    });
  }
  int64_t ok = 0;
  for (int64_t i = 0; i < plane; ++i) ok += all[i];
  return static_cast<double>(ok) / static_cast<double>(plane);
}

// ------------------------------------------------------------------ helpers of the steps

// Merges the channel statistics of consecutive items (RankReport) in item order.
void MergeItemStats(const std::vector<ChannelStats>& items, std::vector<ChannelStats>& total) {
  const size_t channels = total.size();
  if (channels == 0) return;
  for (size_t i = 0; i + channels <= items.size(); i += channels)
    MergeChannelStats(total,
                      std::vector<ChannelStats>(items.begin() + i, items.begin() + i + channels));
}

std::string ShardPrefix(const RankInfo& world) {
  if (world.size <= 1) return "";
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "r%04d-", world.rank);
  return prefix;
}

// Removes this rank's shard files (those of all its lanes) after a failure so no partial data
// lingers.
void RemoveOwnShards(Storage& storage, const std::string& dir, const std::string& prefix) {
  auto names = storage.List(dir);
  if (!names.ok()) return;
  for (const auto& name : *names)
    if (name.starts_with(prefix) && name.find("shard-", prefix.size()) != std::string::npos &&
        name.find(kShardSuffix) != std::string::npos)
      (void)storage.Remove(JoinPath(dir, name));
}

// Where this run writes, the same on every rank: `out` for a new store, its staging sibling when
// --overwrite replaces a complete store there (which stays whole until PublishStore). Rank 0
// recovers from an interrupted earlier run, decides and prepares; every rank learns the answer.
Result<std::string> PrepareOutput(const RankInfo& world, const DriverOptions& options) {
  Storage& storage = *options.storage;
  std::string dir = options.out;
  Status status;
  if (world.rank == 0) {
    auto prepared = PrepareStoreOutput(storage, options.out, options.overwrite);
    if (prepared.ok()) dir = *prepared;
    else status = prepared.status();
  }
  TS_ASSIGN_OR_RETURN(const std::string shared,
                      BroadcastFromRoot(world, EncodeOutputDecision({status, dir})));
  TS_ASSIGN_OR_RETURN(OutputDecision decision, DecodeOutputDecision(shared));
  TS_RETURN_IF_ERROR(decision.status);
  return std::move(decision.dir);
}

// ------------------------------------------------------------------ the local (per-rank) run

struct Unit {
  int64_t item = 0;
  size_t group = 0;  // row of windows
};

struct UnitResult {
  Status status;
  int64_t item = 0;
  std::vector<EncodedRecord> records;
  std::vector<ChannelStats> x_stats;  // of the unit's kept tiles, merged in window order
  std::vector<ChannelStats> y_stats;
  uint64_t considered = 0;
  uint64_t dropped = 0;
  uint64_t raw_bytes = 0;
};

struct LocalResult {
  Status status;
  std::vector<ShardEntry> shards;
  std::map<int64_t, std::vector<ChannelStats>> x_stats;  // per item of this rank
  std::map<int64_t, std::vector<ChannelStats>> y_stats;
  std::map<int64_t, uint64_t> tiles_per_item;
  uint64_t considered = 0, written = 0, dropped = 0, raw_bytes = 0;
  std::vector<SourceHash> sources;
};

struct ThreadState {
  std::unique_ptr<ItemReader> reader;
  Status open_status;
  RegionData data;
  Sample sample;  // reused: its arrays keep their buffers from tile to tile
  std::vector<uint8_t> x_valid, y_valid;
};

class LocalRun {
 public:
  LocalRun(const Source& source, const DriverOptions& options,
           const std::vector<std::vector<std::vector<Region>>>& plans, ItemRange range,
           const StoredField& x_stored, const std::optional<StoredField>& y_stored)
      : source_(source),
        options_(options),
        plans_(plans),
        range_(range),
        x_stored_(x_stored),
        y_stored_(y_stored) {}

  void ProcessUnit(const Unit& unit, ThreadState& ts, UnitResult* out) {
    out->item = unit.item;
    out->x_stats.resize(source_.schema().x.channels());
    if (source_.schema().y) out->y_stats.resize(source_.schema().y->channels());
    if (!ts.reader && ts.open_status.ok()) {
      auto reader = source_.OpenReader();
      if (reader.ok())
        ts.reader = std::move(reader).value();
      else
        ts.open_status = reader.status();
    }
    if (!ts.reader) {
      out->status = ts.open_status;
      return;
    }
    const ItemInfo& info = source_.item(unit.item);
    const std::vector<Region>& windows = plans_[unit.item][unit.group];
    const SourceSchema& schema = source_.schema();
    const bool per_window = source_.PrefersWindowReads();
    Region box;
    if (!per_window) {
      box = Region{windows.front().row, windows.front().col, windows.front().height,
                   windows.back().col + windows.back().width - windows.front().col};
      box = ClipToItem(box, info.height, info.width);
      if (Status s = ReadChecked(unit.item, info, box, ts); !s.ok()) {
        out->status = s;
        return;
      }
    }
    const DType x_out = x_stored_.dtype;
    const DType y_out = y_stored_ ? y_stored_->dtype : DType::kU8;
    if (ts.sample.fields.empty()) {
      ts.sample.Add("x", Array());
      if (schema.y) ts.sample.Add("y", Array());
    }
    Array& x_tile = ts.sample.fields[0].array;
    for (const Region& window : windows) {
      ++out->considered;
      if (per_window) {
        box = ClipToItem(window, info.height, info.width);
        if (Status s = ReadChecked(unit.item, info, box, ts); !s.ok()) {
          out->status = s;
          return;
        }
      }
      // When the read region is exactly the tile in the stored dtype, the read buffer becomes
      // the tile (no copy); it is handed back to the reader after encoding.
      const bool x_in_place = box == window && x_out == schema.x.dtype;
      if (x_in_place) std::swap(x_tile, ts.data.x);
      CutContext ctx{x_in_place ? &x_tile : &ts.data.x,
                     &ts.data.x_mask,
                     &schema.x,
                     &x_stored_,
                     &info.name,
                     box,
                     window,
                     info.height,
                     info.width};
      if (Status s = CutField(ctx, &x_tile, &ts.x_valid); !s.ok()) {
        if (x_in_place) std::swap(x_tile, ts.data.x);
        out->status = s;
        return;
      }
      // Statistics first: without a mask, the valid fraction is read off their counts.
      std::vector<ChannelStats> x_stats =
          ComputeChannelStats(x_tile, ts.x_valid.empty() ? nullptr : ts.x_valid.data());
      const double valid_fraction = ValidFraction(x_tile, ts.x_valid, x_stats);
      if (valid_fraction <= 0.0 || valid_fraction < options_.min_valid) {
        ++out->dropped;
        if (x_in_place) std::swap(x_tile, ts.data.x);
        continue;
      }
      MergeChannelStats(out->x_stats, x_stats);
      out->raw_bytes += x_tile.ByteSize();
      bool y_in_place = false;
      if (schema.y) {
        Array& y_tile = ts.sample.fields[1].array;
        y_in_place = box == window && y_out == schema.y->dtype;
        if (y_in_place) std::swap(y_tile, ts.data.y);
        CutContext yctx{y_in_place ? &y_tile : &ts.data.y,
                        &ts.data.y_mask,
                        &*schema.y,
                        &*y_stored_,
                        &info.name,
                        box,
                        window,
                        info.height,
                        info.width};
        if (Status s = CutField(yctx, &y_tile, &ts.y_valid); !s.ok()) {
          if (x_in_place) std::swap(x_tile, ts.data.x);
          if (y_in_place) std::swap(y_tile, ts.data.y);
          out->status = s;
          return;
        }
        MergeChannelStats(
            out->y_stats,
            ComputeChannelStats(y_tile, ts.y_valid.empty() ? nullptr : ts.y_valid.data()));
        out->raw_bytes += y_tile.ByteSize();
      }
      nlohmann::json& meta = ts.sample.meta;
      meta = info.meta.is_object() ? info.meta : nlohmann::json::object();
      meta["item"] = unit.item;
      meta["name"] = info.name;
      meta["window"] = {window.row, window.col, window.height, window.width};
      meta["valid_fraction"] = valid_fraction;
      // Every record carries every key (collating a batch needs them all): padded is false on
      // tiles that lie inside the item.
      meta["padded"] =
          window.row + window.height > info.height || window.col + window.width > info.width;
      source_.AddTileMeta(unit.item, window, &meta);
      auto encoded = EncodeRecord(ts.sample, options_.codec);
      if (x_in_place) std::swap(x_tile, ts.data.x);
      if (y_in_place) std::swap(ts.sample.fields[1].array, ts.data.y);
      if (!encoded.ok()) {
        out->status = encoded.status().WithContext(
            StrCat(info.name, " window ", window.row, ",", window.col, ": "));
        return;
      }
      out->records.push_back(std::move(encoded).value());
    }
  }

  // Reads `box` of item into ts.data and checks that the reader kept the schema's promise.
  Status ReadChecked(int64_t item, const ItemInfo& info, const Region& box, ThreadState& ts) {
    TS_RETURN_IF_ERROR(ts.reader->Read(item, box, &ts.data));
    const SourceSchema& schema = source_.schema();
    const std::vector<int64_t> want{schema.x.channels(), box.height, box.width};
    if (ts.data.x.shape != want || ts.data.x.dtype != schema.x.dtype)
      return Internal(source_.kind(), " source, ", info.name, ": reader returned ",
                      ts.data.x.Describe(), " for a region of ", box.height, "x", box.width,
                      " pixels, expected ", DTypeName(schema.x.dtype), "[", want[0], ",", want[1],
                      ",", want[2], "]");
    if (schema.y &&
        (ts.data.y.shape != std::vector<int64_t>{schema.y->channels(), box.height, box.width} ||
         ts.data.y.dtype != schema.y->dtype))
      return Internal(source_.kind(), " source, ", info.name, ": reader returned y ",
                      ts.data.y.Describe(), " for a region of ", box.height, "x", box.width,
                      " pixels");
    return Status::Ok();
  }

  // The rank's units are split into `lanes` contiguous runs, each cut, encoded and written by one
  // thread into shards of its own (prefix "lNNN-" after the rank's), so no thread waits for
  // another's writes or shard hashes. The records in shard order are the units' order and the
  // statistics are merged per unit and then in unit order, so neither depends on the lane count;
  // the shard files do, deterministically.
  LocalResult Run(const std::string& dir, const StoreWriterOptions& writer_options,
                  Progress& progress, int lanes) {
    std::vector<Unit> units;
    for (int64_t item = range_.begin; item < range_.end; ++item)
      for (size_t g = 0; g < plans_[item].size(); ++g) units.push_back({item, g});
    lanes = static_cast<int>(std::clamp<size_t>(units.size(), 1, std::max(lanes, 1)));
    std::vector<UnitResult> tallies(units.size());  // everything but the records, per unit
    std::vector<LaneResult> lane_results(lanes);
    std::atomic<bool> failed{false};
    tbb::task_arena arena(lanes);
    arena.execute([&] {
      tbb::parallel_for(0, lanes, [&](int lane) {
        const size_t begin = units.size() * lane / lanes;
        const size_t end = units.size() * (lane + 1) / lanes;
        StoreWriterOptions lane_options = writer_options;
        if (lanes > 1) lane_options.shard_prefix += LanePrefix(lane);
        lane_results[lane] =
            RunLane(dir, lane_options, units, begin, end, tallies, progress, failed);
      });
    });

    LocalResult result;
    for (LaneResult& lane : lane_results) {
      if (!lane.status.ok() && result.status.ok()) result.status = lane.status;
      result.shards.insert(result.shards.end(), lane.shards.begin(), lane.shards.end());
    }
    if (!result.status.ok()) return result;
    for (int64_t item = range_.begin; item < range_.end; ++item) {
      result.tiles_per_item[item] = 0;
      result.x_stats[item] = std::vector<ChannelStats>(source_.schema().x.channels());
      if (source_.schema().y)
        result.y_stats[item] = std::vector<ChannelStats>(source_.schema().y->channels());
    }
    for (const UnitResult& unit : tallies) {
      MergeChannelStats(result.x_stats[unit.item], unit.x_stats);
      if (source_.schema().y) MergeChannelStats(result.y_stats[unit.item], unit.y_stats);
      result.tiles_per_item[unit.item] += unit.considered - unit.dropped;
      result.considered += unit.considered;
      result.dropped += unit.dropped;
      result.written += unit.considered - unit.dropped;
      result.raw_bytes += unit.raw_bytes;
    }
    return result;
  }

 private:
  struct LaneResult {
    Status status;
    std::vector<ShardEntry> shards;
  };

  static std::string LanePrefix(int lane) {
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "l%03d-", lane);
    return prefix;
  }

  // Units [begin, end) in order through one writer; each unit's tally (without its records) goes
  // to tallies[unit]. Stops early, without an error of its own, once another lane has failed.
  LaneResult RunLane(const std::string& dir, const StoreWriterOptions& writer_options,
                     const std::vector<Unit>& units, size_t begin, size_t end,
                     std::vector<UnitResult>& tallies, Progress& progress,
                     std::atomic<bool>& failed) {
    LaneResult lane;
    auto writer = StoreWriter::Create(options_.storage, dir, writer_options);
    if (!writer.ok()) lane.status = writer.status();
    ThreadState ts;
    for (size_t u = begin; u < end && lane.status.ok() && !failed; ++u) {
      UnitResult& unit = tallies[u];
      ProcessUnit(units[u], ts, &unit);
      lane.status = unit.status;
      for (size_t r = 0; r < unit.records.size() && lane.status.ok(); ++r)
        lane.status = (*writer)->AppendEncoded(unit.records[r]);
      unit.records = {};
      progress.Add(unit.considered, unit.raw_bytes);
    }
    if (lane.status.ok() && !failed) {
      auto shards = (*writer)->Close();
      if (shards.ok())
        lane.shards = std::move(shards).value();
      else
        lane.status = shards.status();
    }
    if (!lane.status.ok()) failed = true;
    return lane;
  }

  const Source& source_;
  const DriverOptions& options_;
  const std::vector<std::vector<std::vector<Region>>>& plans_;
  ItemRange range_;
  const StoredField& x_stored_;
  const std::optional<StoredField>& y_stored_;
};

// Files of items [range) that this rank hashes: those whose first use (over all items) is here.
std::vector<std::string> FilesToHash(const Source& source, ItemRange range) {
  std::set<std::string> seen;
  std::vector<std::string> mine;
  for (int64_t i = 0; i < range.end; ++i) {
    for (const auto& f : source.item(i).files) {
      if (!seen.insert(f).second) continue;
      if (i >= range.begin) mine.push_back(f);
    }
  }
  return mine;
}

FieldSchema MakeFieldSchema(const std::string& name, const FieldInfo& info, DType dtype,
                            std::vector<int64_t> shape, std::vector<ChannelStats> stats) {
  FieldSchema f;
  f.name = name;
  f.dtype = dtype;
  f.shape = std::move(shape);
  f.channel_names = info.channel_names;
  f.units = info.units;
  f.stats = std::move(stats);
  return f;
}

nlohmann::json NodataJson(const std::vector<std::optional<double>>& nodata) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& nd : nodata) out.push_back(nd ? nlohmann::json(*nd) : nlohmann::json());
  return out;
}

}  // namespace

nlohmann::json IngestSummary::ToJson() const {
  return {{"out", out},
          {"kind", kind},
          {"items", items},
          {"tiles_considered", tiles_considered},
          {"tiles_written", tiles_written},
          {"tiles_dropped", tiles_dropped},
          {"raw_bytes", raw_bytes},
          {"stored_bytes", stored_bytes},
          {"compression_ratio", compression_ratio},
          {"shards", shards},
          {"elapsed_s", elapsed_s},
          {"tiles_per_s", elapsed_s > 0 ? tiles_written / elapsed_s : 0.0},
          {"mb_per_s", elapsed_s > 0 ? raw_bytes / elapsed_s / 1e6 : 0.0},
          {"ranks", ranks},
          {"threads", threads},
          {"items_without_tiles", items_without_tiles}};
}

std::string IngestSummary::ToText() const {
  std::ostringstream os;
  os << "ingest " << kind << ": " << items << " item(s), " << tiles_written << " tiles written, "
     << tiles_dropped << " dropped (below --min-valid) of " << tiles_considered << " cut\n";
  char line[256];
  std::snprintf(line, sizeof line,
                "  %.2f s, %.0f tiles/s, %.1f MB/s raw; %llu shard(s), %.1f MB on disk, "
                "compression %.2fx; %d rank(s) x %d thread(s)\n",
                elapsed_s, elapsed_s > 0 ? tiles_written / elapsed_s : 0.0,
                elapsed_s > 0 ? raw_bytes / elapsed_s / 1e6 : 0.0, (unsigned long long)shards,
                stored_bytes / 1e6, compression_ratio, ranks,
                threads);
  os << line;
  for (const auto& name : items_without_tiles) os << "  no tile kept from " << name << "\n";
  os << "  store: " << out << "\n";
  return os.str();
}

// ------------------------------------------------------------------ the steps of RunIngest

namespace {

// Everything that can be checked without reading pixels is checked before touching the output,
// identically on every rank (so all ranks fail together, before any collective).
Status ValidateOptions(const Source& source, const DriverOptions& options) {
  const SourceSchema& schema = source.schema();
  if (options.out.empty()) return InvalidArgument("--out: an output store directory is required");
  if (!(options.min_valid >= 0.0 && options.min_valid <= 1.0))
    return InvalidArgument("--min-valid ", options.min_valid, ": must be between 0 and 1");
  if (schema.x.channels() <= 0) return InvalidArgument(source.kind(), " source: no channels");
  if (!schema.x.nodata.empty() && schema.x.channels() != (int64_t)schema.x.nodata.size())
    return Internal(source.kind(), " source: nodata list does not match the channels");
  if (options.y_dtype && !schema.y)
    return InvalidArgument("a y dtype was given but the source has no y field");
  if (source.num_items() <= 0) return InvalidArgument(source.kind(), " source: no input items");
  return Status::Ok();
}

// The windows of every item (the same on every rank) and this rank's share of them.
struct IngestPlan {
  std::vector<std::vector<std::vector<Region>>> windows;  // item -> row of windows -> window
  ItemRange range;                                        // this rank's items
  uint64_t rank_tiles = 0;                                // windows in range
  int threads = 1;
  std::string shard_prefix;
  StoredField x;  // what the store keeps of x and y
  std::optional<StoredField> y;
};

Result<IngestPlan> PlanIngest(const Source& source, const DriverOptions& options,
                              const RankInfo& world) {
  IngestPlan plan;
  plan.windows.resize(source.num_items());
  for (int64_t i = 0; i < source.num_items(); ++i) {
    const ItemInfo& info = source.item(i);
    TS_ASSIGN_OR_RETURN(plan.windows[i],
                        PlanWindows(options.tile, info.height, info.width, info.name));
  }
  plan.threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  plan.range = ItemBlock(source.num_items(), world.rank, world.size);
  plan.shard_prefix = ShardPrefix(world);
  for (int64_t i = plan.range.begin; i < plan.range.end; ++i)
    for (const auto& row : plan.windows[i]) plan.rank_tiles += row.size();
  bool any_padded = false;
  for (int64_t i = 0; i < source.num_items(); ++i)
    for (const auto& row : plan.windows[i])
      for (const Region& w : row)
        any_padded |=
            w.row + w.height > source.item(i).height || w.col + w.width > source.item(i).width;
  const SourceSchema& schema = source.schema();
  plan.x = PlanStoredField("x", schema.x, options.x_dtype.value_or(schema.x.dtype), any_padded);
  if (schema.y)
    plan.y = PlanStoredField("y", *schema.y, options.y_dtype.value_or(schema.y->dtype), any_padded);
  return plan;
}

// Source files are hashed on a thread of their own while the tiles are cut, so the hashing fills
// the pipeline's idle moments (serialized library reads, start and end) instead of adding its
// time after them; files hashed before the run (DriverOptions::early_hashes) are taken as they
// are. One thread is enough: hashing runs at several GB/s. Every failure stops the hashing (the
// ingest reports its own error), so a failure does not wait for a large input.
class SourceHashing {
 public:
  SourceHashing(const Source& source, ItemRange range, bool enabled,
                std::shared_ptr<EarlySourceHashes> early) {
    if (!enabled) return;
    hashing_ = std::async(std::launch::async, [this, files = FilesToHash(source, range), early] {
      std::vector<Result<SourceHash>> hashes;
      for (const std::string& file : files) {
        if (stop_) break;
        std::optional<Result<SourceHash>> hashed = early ? early->Take(file, stop_) : std::nullopt;
        hashes.push_back(hashed ? std::move(*hashed) : HashSourceFile(file, stop_));
      }
      return hashes;
    });
  }

  // Waits for the hashes, or stops the hashing when the run failed (`needed` false) and its
  // hashes are of no use. Returns the first hashing error.
  Status Finish(bool needed, std::vector<SourceHash>* out) {
    if (!hashing_.valid()) return Status::Ok();
    stop_ = !needed;
    std::vector<Result<SourceHash>> hashes = hashing_.get();
    if (!needed) return Status::Ok();
    for (auto& h : hashes) {
      if (!h.ok()) return h.status();
      out->push_back(std::move(h).value());
    }
    return Status::Ok();
  }

 private:
  std::atomic<bool> stop_{false};
  std::future<std::vector<Result<SourceHash>>> hashing_;
};

// What this rank tells rank 0, from the result of its local run.
RankReport MakeRankReport(const Source& source, ItemRange range, LocalResult local) {
  RankReport report;
  report.status = local.status;
  if (!report.status.ok()) return report;
  report.shards = std::move(local.shards);
  report.first_item = range.begin;
  for (int64_t i = range.begin; i < range.end; ++i) {
    report.tiles_per_item.push_back(local.tiles_per_item[i]);
    const auto& x = local.x_stats[i];
    report.x_stats.insert(report.x_stats.end(), x.begin(), x.end());
    if (source.schema().y) {
      const auto& y = local.y_stats[i];
      report.y_stats.insert(report.y_stats.end(), y.begin(), y.end());
    }
  }
  report.sources = std::move(local.sources);
  report.considered = local.considered;
  report.written = local.written;
  report.dropped = local.dropped;
  report.raw_bytes = local.raw_bytes;
  return report;
}

// Cuts, encodes and writes this rank's tiles into its own shards in write_dir, hashing its source
// files meanwhile. Failures are reported, not returned: every rank must reach the gather.
RankReport WriteRankShards(const Source& source, const DriverOptions& options,
                           const RankInfo& world, const IngestPlan& plan,
                           const std::string& write_dir) {
  Progress progress(options.progress && world.rank == 0, options.progress_label,
                    plan.rank_tiles);
  SourceHashing hashing(source, plan.range, options.hash_sources, options.early_hashes);
  StoreWriterOptions writer_options;
  writer_options.codec = options.codec;
  writer_options.shard_target_bytes = options.shard_target_bytes;
  writer_options.shard_prefix = plan.shard_prefix;
  int64_t tile_rows = options.tile.height;
  if (options.tile.whole_item)
    for (int64_t i = plan.range.begin; i < plan.range.end; ++i)
      tile_rows = std::max(tile_rows, source.item(i).height);
  source.PrepareReads(tile_rows, plan.threads);
  LocalRun run(source, options, plan.windows, plan.range, plan.x, plan.y);
  LocalResult local = run.Run(write_dir, writer_options, progress, plan.threads);
  progress.Finish();
  if (Status s = hashing.Finish(local.status.ok(), &local.sources); !s.ok()) local.status = s;
  return MakeRankReport(source, plan.range, std::move(local));
}

// Rank 0: the ranks' reports merged in rank order (= item order): shards, statistics and
// provenance for the manifest, counts into *summary. Returns the first rank's error.
struct MergedReports {
  std::vector<ShardEntry> shards;
  std::vector<ChannelStats> x_stats, y_stats;
  nlohmann::json sources = nlohmann::json::array();
};

Result<MergedReports> MergeReports(const Source& source, const std::vector<std::string>& gathered,
                                   IngestSummary* summary) {
  const SourceSchema& schema = source.schema();
  MergedReports merged;
  merged.x_stats.resize(schema.x.channels());
  merged.y_stats.resize(schema.y ? schema.y->channels() : 0);
  for (size_t rank = 0; rank < gathered.size(); ++rank) {
    TS_ASSIGN_OR_RETURN(const RankReport report,
                        DecodeRankReport(gathered[rank], static_cast<int>(rank)));
    TS_RETURN_IF_ERROR(report.status);
    const size_t items = report.tiles_per_item.size();
    if (report.x_stats.size() != items * merged.x_stats.size() ||
        report.y_stats.size() != items * merged.y_stats.size())
      return Internal("ingest report from rank ", rank, ": ", report.x_stats.size(), " x and ",
                      report.y_stats.size(), " y statistics for ", items, " items");
    merged.shards.insert(merged.shards.end(), report.shards.begin(), report.shards.end());
    for (size_t i = 0; i < items; ++i)
      if (report.tiles_per_item[i] == 0)
        summary->items_without_tiles.push_back(
            source.item(report.first_item + static_cast<int64_t>(i)).name);
    MergeItemStats(report.x_stats, merged.x_stats);
    MergeItemStats(report.y_stats, merged.y_stats);
    for (const SourceHash& h : report.sources) merged.sources.push_back(h.ToJson());
    summary->tiles_considered += report.considered;
    summary->tiles_written += report.written;
    summary->tiles_dropped += report.dropped;
    summary->raw_bytes += report.raw_bytes;
  }
  return merged;
}

// The manifest of the merged reports: fields with their statistics, provenance and the ingest's
// settings.
Manifest BuildManifest(const Source& source, const DriverOptions& options, const RankInfo& world,
                       const IngestPlan& plan, const IngestSummary& summary, MergedReports merged) {
  const SourceSchema& schema = source.schema();
  Manifest manifest;
  manifest.shards = std::move(merged.shards);
  manifest.kind = source.kind();
  manifest.codec = options.codec;
  const DType x_out = options.x_dtype.value_or(schema.x.dtype);
  std::vector<int64_t> shape{schema.x.channels(), options.tile.height, options.tile.width};
  if (options.tile.whole_item) {
    shape = {schema.x.channels(), source.item(0).height, source.item(0).width};
    for (int64_t i = 1; i < source.num_items(); ++i)
      if (source.item(i).height != shape[1] || source.item(i).width != shape[2]) shape.clear();
  }
  manifest.fields.push_back(
      MakeFieldSchema("x", schema.x, x_out, shape, std::move(merged.x_stats)));
  if (schema.y) {
    std::vector<int64_t> y_shape = shape;
    if (!y_shape.empty()) y_shape[0] = schema.y->channels();
    manifest.fields.push_back(MakeFieldSchema("y", *schema.y,
                                              options.y_dtype.value_or(schema.y->dtype), y_shape,
                                              std::move(merged.y_stats)));
  }
  manifest.provenance = MakeProvenance(options.command_line);
  manifest.provenance["sources"] = std::move(merged.sources);
  manifest.attrs = source.ManifestAttrs();
  nlohmann::json ingest = {
      {"tile", options.tile.whole_item ? nlohmann::json("full")
                                       : nlohmann::json({options.tile.height, options.tile.width})},
      {"edge", EdgePolicyName(options.tile.edge)},
      {"min_valid", options.min_valid},
      {"items", summary.items},
      {"tiles_considered", summary.tiles_considered},
      {"tiles_dropped", summary.tiles_dropped},
      {"ranks", world.size},
      // The stored values that mark invalid pixels (what readers compare with), and the
      // source's own, which differ when a conversion or padding needed a value of its own.
      {"nodata", {{"x", NodataJson(plan.x.nodata)}}},
      {"source_nodata", {{"x", NodataJson(schema.x.nodata)}}},
      {"pad_fill",
       "the channel's stored nodata value (NaN for float channels without one); padded "
       "pixels are invalid"},
      {"invalid_to_nan", IsFloat(x_out) && x_out != schema.x.dtype}};
  if (!options.tile.whole_item)
    ingest["stride"] = {options.tile.stride_rows, options.tile.stride_cols};
  if (schema.y) {
    ingest["nodata"]["y"] = NodataJson(plan.y->nodata);
    ingest["source_nodata"]["y"] = NodataJson(schema.y->nodata);
  }
  manifest.attrs["ingest"] = ingest;
  return manifest;
}

// Shards of earlier runs into this directory (another rank count) are not part of the store.
void PruneStaleShards(Storage& storage, const std::string& dir, const Manifest& manifest) {
  std::set<std::string> listed;
  for (const auto& s : manifest.shards) listed.insert(s.file);
  auto names = storage.List(dir);
  if (!names.ok()) return;
  for (const auto& name : *names)
    if (name.size() > 4 && name.ends_with(kShardSuffix) && !listed.count(name) &&
        name.find("shard-") != std::string::npos)
      (void)storage.Remove(JoinPath(dir, name));
}

// Writes the manifest (which makes the store complete) and, when the run wrote beside an old
// store, swaps the new one in; every rank has finished writing (the gather).
Status WriteAndPublish(const DriverOptions& options, const std::string& write_dir,
                       const Manifest& manifest, IngestSummary* summary) {
  Status status = WriteManifest(*options.storage, write_dir, manifest);
  if (status.ok()) {
    auto written = Store::Open(options.storage, write_dir);
    if (written.ok()) summary->compression_ratio = MeasureStore(**written).ratio();
  }
  if (status.ok() && write_dir != options.out)
    status = PublishStore(*options.storage, write_dir, options.out);
  summary->shards = manifest.shards.size();
  summary->stored_bytes = manifest.TotalBytes();
  return status;
}

// Rank 0: from the gathered reports to the published store, or the first error.
Status FinishStore(const Source& source, const DriverOptions& options, const RankInfo& world,
                   const IngestPlan& plan, const std::string& write_dir,
                   const std::vector<std::string>& gathered, IngestSummary* summary) {
  TS_ASSIGN_OR_RETURN(MergedReports merged, MergeReports(source, gathered, summary));
  if (summary->tiles_written == 0)
    return FailedPrecondition("no tiles written to ", options.out, ": all ",
                              summary->tiles_considered, " tile(s) cut from ", summary->items,
                              " item(s) were dropped (no valid pixel, or valid "
                              "fraction below --min-valid ",
                              options.min_valid, "); first item: ", source.item(0).name,
                              "; no manifest written");
  const Manifest manifest =
      BuildManifest(source, options, world, plan, *summary, std::move(merged));
  PruneStaleShards(*options.storage, write_dir, manifest);
  return WriteAndPublish(options, write_dir, manifest, summary);
}

// After a failed run every rank removes the shards it wrote; rank 0 removes the staging directory
// once all have.
void CleanUpFailedRun(const RankInfo& world, const DriverOptions& options,
                      const std::string& write_dir, const std::string& shard_prefix) {
  RemoveOwnShards(*options.storage, write_dir, shard_prefix);
  if (write_dir == options.out) return;
  (void)GatherToRoot(world, "");  // every rank has removed its shards
  if (world.rank == 0) (void)options.storage->RemoveAll(write_dir);
}

}  // namespace

Result<IngestSummary> RunIngest(const Source& source, const DriverOptions& options) {
  TS_ASSIGN_OR_RETURN(const RankInfo world, World());
  Progress progress(options.progress && world.rank == 0, options.progress_label, 0);
  TS_RETURN_IF_ERROR(ValidateOptions(source, options));
  TS_ASSIGN_OR_RETURN(const IngestPlan plan, PlanIngest(source, options, world));
  TS_ASSIGN_OR_RETURN(const std::string write_dir, PrepareOutput(world, options));

  const RankReport report = WriteRankShards(source, options, world, plan, write_dir);
  // One gather of everything rank 0 needs; every rank reaches it, failed or not. Ranks that
  // finish first wait for it without spinning a core the others on their node still use.
  Status arrived = IdleBarrier(*world.comm);
  auto gathered = arrived.ok() ? GatherToRoot(world, EncodeRankReport(report))
                               : Result<std::vector<std::string>>(arrived);
  if (!gathered.ok()) {
    RemoveOwnShards(*options.storage, write_dir, plan.shard_prefix);
    return gathered.status();
  }

  IngestOutcome outcome;
  IngestSummary& summary = outcome.summary;
  summary.out = options.out;
  summary.kind = source.kind();
  summary.items = source.num_items();
  summary.ranks = world.size;
  summary.threads = plan.threads;
  if (world.rank == 0)
    outcome.status = FinishStore(source, options, world, plan, write_dir, *gathered, &summary);
  summary.elapsed_s = progress.elapsed_s();

  // Every rank learns the outcome, so all return the same status and summary.
  TS_ASSIGN_OR_RETURN(const std::string shared,
                      BroadcastFromRoot(world, EncodeIngestOutcome(outcome)));
  TS_ASSIGN_OR_RETURN(IngestOutcome decided, DecodeIngestOutcome(shared));
  if (!decided.status.ok()) {
    CleanUpFailedRun(world, options, write_dir, plan.shard_prefix);
    return decided.status;
  }
  // The store's figures are rank 0's; the time and threads are this process's own.
  decided.summary.elapsed_s = summary.elapsed_s;
  decided.summary.threads = summary.threads;
  return decided.summary;
}

}  // namespace tilestage::ingest
