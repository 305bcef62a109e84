#include "ingest/hdf5_source.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "ingest/hdf5_frame_reader.h"
#include "ingest/nodata_values.h"

namespace tilestage::ingest {
namespace {

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Frames of one batch after the transforms: x [n, h, w], y [n, T, h, w] (f32) when targets.
struct Batch {
  Array x;
  Array y;
};
using BatchPtr = std::shared_ptr<const Batch>;

// Byte buffers of batches that are done with, reused for later batches of the same size: a new
// Array is zero-filled, which for ~20 MB per batch cost more than the transform writing it.
class BufferPool {
 public:
  explicit BufferPool(size_t capacity) : capacity_(capacity) {}
  // An Array of dtype/shape whose bytes are left as they were (every byte is overwritten).
  Array Take(DType dtype, std::vector<int64_t> shape) {
    Array a;
    a.dtype = dtype;
    a.shape = std::move(shape);
    size_t bytes = DTypeSize(dtype);
    for (int64_t d : a.shape) bytes *= static_cast<size_t>(d);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].size() == bytes) {
          a.data = std::move(free_[i]);
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
          return a;
        }
      }
    }
    a.data.resize(bytes);
    return a;
  }
  void Give(std::vector<uint8_t> bytes) {
    if (bytes.empty()) return;  // a batch that failed before its array was made
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < capacity_) free_.push_back(std::move(bytes));
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<uint8_t>> free_;
  size_t capacity_;
};

// Writes the dtype's DefaultNodata (NaN for float frames, the maximum of unsigned ones) into the
// pixels `valid` marks 0 in frames [n, h, w]: valid is one [h, w] for
// every frame, or [n, h, w], one per frame.
void FillMasked(const Array& valid, Array* frames) {
  const size_t plane = static_cast<size_t>(frames->shape[1] * frames->shape[2]);
  const size_t valid_stride = valid.data.size() == plane ? 0 : plane;
  VisitDType(frames->dtype, [&](auto zero) {
    using T = decltype(zero);
    const T fill = static_cast<T>(DefaultNodata(frames->dtype));
    T* v = reinterpret_cast<T*>(frames->data.data());
    const size_t n = frames->data.size() / sizeof(T) / plane;
    for (size_t f = 0; f < n; ++f, v += plane) {
      const uint8_t* m = valid.data.data() + f * valid_stride;
      for (size_t i = 0; i < plane; ++i) v[i] = m[i] ? v[i] : fill;
    }
  });
}

struct FileState {
  std::unique_ptr<Hdf5FrameReader> reader;
  std::string mask_path;  // empty: no pixel mask
  Array valid;            // u8 [out_height, out_width] after the transform: 0 = masked
  // A mask per frame (CXI masks [N,H,W]): read with each batch of frames instead of `valid`.
  std::optional<Hdf5AuxInfo> frame_masks;
  std::optional<Hdf5AuxInfo> positions;
  std::vector<Hdf5AuxInfo> targets;
  int64_t first_item = 0;
  int64_t batch_frames = 1;
};

class Hdf5Source final : public Source {
 public:
  ~Hdf5Source() override {
    {
      std::lock_guard<std::mutex> lock(prefetch_mu_);
      stop_ = true;
    }
    prefetch_cv_.notify_all();
    if (prefetcher_.joinable()) prefetcher_.join();
  }
  std::string kind() const override { return "hdf5"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(items_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_[static_cast<size_t>(index)]; }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override;
  nlohmann::json ManifestAttrs() const override { return attrs_; }

  Status Init(const Hdf5SourceOptions& options);
  // The batch holding item `item`, read and transformed once however many threads ask. With
  // prefetch, also asks the read-ahead thread for the batch after it.
  Result<BatchPtr> GetBatch(size_t file, int64_t batch, bool prefetch = true) const;
  // (file, frame within the file) of an item.
  std::pair<size_t, int64_t> Locate(int64_t item) const {
    auto it = std::upper_bound(files_.begin(), files_.end(), item,
                               [](int64_t i, const FileState& s) { return i < s.first_item; });
    const size_t f = static_cast<size_t>(it - files_.begin()) - 1;
    return {f, item - files_[f].first_item};
  }
  const FileState& file(size_t f) const { return files_[f]; }
  const FrameTransform::Box& box() const { return box_; }
  size_t num_targets() const { return target_names_.size(); }

 private:
  Result<BatchPtr> LoadBatch(size_t file, int64_t batch) const;
  // The read-ahead thread: loads the batch after the one the workers asked for last, so the
  // next HDF5 read and decode overlap the tiling and compression of the current batch instead
  // of stalling every worker at each batch boundary. Started on first use.
  void RequestPrefetch(size_t file, int64_t batch) const;
  void PrefetchLoop() const;

  Hdf5SourceOptions options_;
  std::vector<FileState> files_;
  std::vector<ItemInfo> items_;
  SourceSchema schema_;
  FrameTransform::Box box_{};
  std::vector<std::string> target_names_;
  nlohmann::json attrs_;

  using Key = std::pair<size_t, int64_t>;
  mutable std::mutex cache_mu_;
  mutable std::map<Key, std::shared_future<Result<BatchPtr>>> cache_;
  mutable std::deque<Key> cache_order_;
  size_t cache_capacity_ = 4;
  // Shared with the batches' deleters, which may run after the source is gone.
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>(8);

  mutable std::mutex prefetch_mu_;
  mutable std::condition_variable prefetch_cv_;
  mutable std::optional<Key> prefetch_want_;
  mutable std::once_flag prefetch_started_;
  mutable std::thread prefetcher_;
  bool stop_ = false;  // guarded by prefetch_mu_
};

class Hdf5ItemReader final : public ItemReader {
 public:
  explicit Hdf5ItemReader(const Hdf5Source* source) : source_(source) {}

  Status Read(int64_t item, const Region& region, RegionData* out) override {
    auto [f, frame] = source_->Locate(item);
    const FileState& state = source_->file(f);
    const int64_t batch = frame / state.batch_frames;
    if (!current_ || current_file_ != f || current_batch_ != batch) {
      TS_ASSIGN_OR_RETURN(current_, source_->GetBatch(f, batch));
      current_file_ = f;
      current_batch_ = batch;
    }
    const int64_t index = frame - batch * state.batch_frames;
    const auto& box = source_->box();
    CopyRegion(current_->x, index, 1, box.out_height, box.out_width, region, &out->x);
    if (source_->num_targets() > 0) {
      CopyRegion(current_->y, index, static_cast<int64_t>(source_->num_targets()), box.out_height,
                 box.out_width, region, &out->y);
    }
    return Status::Ok();
  }

 private:
  // Copies `region` of frame `index` of a [n, C, h, w] batch into *dst [C, rh, rw].
  static void CopyRegion(const Array& batch, int64_t index, int64_t channels, int64_t height,
                         int64_t width, const Region& region, Array* dst) {
    const size_t elem = DTypeSize(batch.dtype);
    if (dst->dtype != batch.dtype ||
        dst->shape != std::vector<int64_t>{channels, region.height, region.width}) {
      *dst = Array(batch.dtype, {channels, region.height, region.width});
    }
    const uint8_t* src =
        batch.data.data() + static_cast<size_t>(index * channels * height * width) * elem;
    uint8_t* out = dst->data.data();
    const size_t row_bytes = static_cast<size_t>(region.width) * elem;
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t r = 0; r < region.height; ++r) {
        std::memcpy(
            out + static_cast<size_t>((c * region.height + r)) * row_bytes,
            src + static_cast<size_t>(((c * height) + region.row + r) * width + region.col) * elem,
            row_bytes);
      }
    }
  }

  const Hdf5Source* source_;
  BatchPtr current_;
  size_t current_file_ = 0;
  int64_t current_batch_ = -1;
};

Result<std::unique_ptr<ItemReader>> Hdf5Source::OpenReader() const {
  return std::unique_ptr<ItemReader>(new Hdf5ItemReader(this));
}

Status Hdf5Source::Init(const Hdf5SourceOptions& options) {
  options_ = options;
  if (options.files.empty()) return InvalidArgument("no HDF5 input files given");
  nlohmann::json file_attrs = nlohmann::json::array();
  int64_t next_item = 0;
  DType dtype = DType::kU8;
  bool any_mask = false;
  for (size_t f = 0; f < options.files.size(); ++f) {
    const std::string& path = options.files[f];
    FileState state;
    TS_ASSIGN_OR_RETURN(state.reader, Hdf5FrameReader::Open(path, options.dataset));
    const Hdf5FrameInfo& info = state.reader->info();
    const std::string where = "HDF5 file " + path + ": dataset " + info.dataset;
    if (f == 0) {
      dtype = info.dtype;
      TS_ASSIGN_OR_RETURN(box_, options.transform.Plan(info.height, info.width, where));
    } else {
      const Hdf5FrameInfo& first = files_[0].reader->info();
      if (info.height != first.height || info.width != first.width)
        return InvalidArgument(where, ": frames are ", info.height, "x", info.width, " but ",
                               first.file, " has ", first.height, "x", first.width,
                               " frames: all files must have the same frame size");
      if (info.dtype != first.dtype)
        return InvalidArgument(where, ": frames are ", DTypeName(info.dtype), " but ", first.file,
                               " has ", DTypeName(first.dtype));
    }
    if (options.mask != "none") {
      if (!options.mask.empty())
        state.mask_path = options.mask;
      else if (auto found = state.reader->DiscoverPixelMask())
        state.mask_path = *found;
    }
    if (!state.mask_path.empty()) {
      TS_ASSIGN_OR_RETURN(auto mask, state.reader->OpenPixelMask(state.mask_path));
      if (mask.per_frame) {
        state.frame_masks = std::move(mask.per_frame);
      } else {
        state.valid = Array(DType::kU8, {box_.out_height, box_.out_width});
        options.transform.ApplyToMask(mask.shared.data.data(), info.width, box_,
                                      state.valid.data.data());
      }
    }
    std::string positions_path = options.positions == "none" ? "" : options.positions;
    if (options.positions.empty()) {
      for (const char* cxi :
           {"/entry_1/sample_1/geometry_1/translation", "/entry_1/data_1/translation"})
        if (state.reader->HasDataset(cxi)) {
          positions_path = cxi;
          break;
        }
    }
    if (!positions_path.empty()) {
      TS_ASSIGN_OR_RETURN(auto aux, state.reader->OpenAux(positions_path, 1));
      if (aux.item_shape[0] != 2 && aux.item_shape[0] != 3)
        return InvalidArgument("HDF5 file ", path, ": positions ", aux.path, " have ",
                               aux.item_shape[0], " values per frame, expected 2 or 3");
      state.positions = aux;
    }
    for (const std::string& target : options.targets) {
      TS_ASSIGN_OR_RETURN(auto aux, state.reader->OpenAux(target, 2));
      if (aux.item_shape[0] != box_.out_height || aux.item_shape[1] != box_.out_width)
        return InvalidArgument("HDF5 file ", path, ": target ", aux.path, " is ", aux.item_shape[0],
                               "x", aux.item_shape[1],
                               " per frame but the (transformed) frames are ", box_.out_height, "x",
                               box_.out_width, ": y must be on the frame's grid");
      state.targets.push_back(aux);
    }
    state.first_item = next_item;
    state.batch_frames = state.reader->BatchFrames(options.batch_bytes);

    // Item metadata: positions are small, read them once here.
    Array positions;
    if (state.positions) {
      auto read = state.reader->ReadAux(*state.positions, 0, info.num_frames, DType::kF64);
      if (!read.ok()) return read.status();
      positions = std::move(read).value();
    }
    for (int64_t i = 0; i < info.num_frames; ++i) {
      ItemInfo item;
      item.name = path + "#" + std::to_string(i);
      item.height = box_.out_height;
      item.width = box_.out_width;
      item.files = {path};
      item.meta = {{"file", path}, {"dataset", info.dataset}, {"frame", i}};
      if (!info.scan_shape.empty()) item.meta["scan_index"] = state.reader->ScanIndex(i);
      if (state.positions) {
        const int64_t d = state.positions->item_shape[0];
        auto p = positions.As<double>();
        item.meta["position"] = std::vector<double>(p.begin() + i * d, p.begin() + (i + 1) * d);
      }
      items_.push_back(std::move(item));
    }
    next_item += info.num_frames;
    file_attrs.push_back({{"file", path},
                          {"dataset", info.dataset},
                          {"shape", info.shape},
                          {"dtype", DTypeName(info.dtype)},
                          {"scan_shape", info.scan_shape},
                          {"filters", info.filters},
                          {"virtual", info.is_virtual},
                          {"pixel_mask", state.mask_path},
                          {"pixel_mask_per_frame", state.frame_masks.has_value()},
                          {"positions", state.positions ? state.positions->path : ""}});
    any_mask |= !state.mask_path.empty();
    files_.push_back(std::move(state));
  }
  const std::string channel = BaseName(files_[0].reader->info().dataset);
  schema_.x.dtype = options.transform.OutputDType(dtype);
  const FrameScale scale = options.transform.scale;
  schema_.x.channel_names = {scale == FrameScale::kLog1p  ? "log1p(" + channel + ")"
                             : scale == FrameScale::kSqrt ? "sqrt(" + channel + ")"
                                                          : channel};
  // Masked pixels hold a value that says so by itself (see Hdf5SourceOptions::mask).
  if (any_mask) schema_.x.nodata = {DefaultNodata(schema_.x.dtype)};
  if (!options.targets.empty()) {
    FieldInfo y;
    y.dtype = DType::kF32;
    for (const auto& t : options.targets) y.channel_names.push_back(BaseName(t));
    target_names_ = y.channel_names;
    schema_.y = y;
  }
  attrs_ = {{"hdf5",
             {{"files", file_attrs},
              {"frame_shape", {box_.out_height, box_.out_width}},
              {"transform", options.transform.Describe()},
              {"positions", options.positions},
              {"targets", options.targets}}}};
  cache_capacity_ = static_cast<size_t>(2 * tbb::this_task_arena::max_concurrency() + 2);
  pool_ = std::make_shared<BufferPool>(cache_capacity_ + 2);
  return Status::Ok();
}

Result<BatchPtr> Hdf5Source::LoadBatch(size_t f, int64_t batch) const {
  const FileState& state = files_[f];
  const Hdf5FrameInfo& info = state.reader->info();
  const int64_t first = batch * state.batch_frames;
  const int64_t count = std::min(state.batch_frames, info.num_frames - first);
  std::shared_ptr<Batch> out(new Batch(), [pool = pool_](Batch* b) {
    pool->Give(std::move(b->x.data));
    delete b;
  });
  const FrameTransform& t = options_.transform;
  if (t.IsIdentity()) {
    TS_ASSIGN_OR_RETURN(out->x, state.reader->ReadFrames(first, count));
  } else {
    // Each frame is transformed as it comes out of its decoded chunk (still in cache).
    out->x = pool_->Take(t.OutputDType(info.dtype), {count, box_.out_height, box_.out_width});
    const size_t out_frame =
        static_cast<size_t>(box_.out_height * box_.out_width) * DTypeSize(out->x.dtype);
    uint8_t* dst = out->x.data.data();
    TS_RETURN_IF_ERROR(
        state.reader->ForEachFrame(first, count, [&](int64_t i, const uint8_t* frame) {
          t.Apply(info.dtype, frame, info.width, box_, dst + static_cast<size_t>(i) * out_frame);
        }));
  }
  if (state.frame_masks) {
    TS_ASSIGN_OR_RETURN(Array raw, state.reader->ReadFrameMasks(*state.frame_masks, first, count));
    Array valid(DType::kU8, {count, box_.out_height, box_.out_width});
    const size_t in_plane = static_cast<size_t>(info.height * info.width);
    const size_t out_plane = static_cast<size_t>(box_.out_height * box_.out_width);
    for (int64_t i = 0; i < count; ++i)
      t.ApplyToMask(raw.data.data() + i * in_plane, info.width, box_,
                    valid.data.data() + i * out_plane);
    FillMasked(valid, &out->x);
  } else if (!state.mask_path.empty()) {
    FillMasked(state.valid, &out->x);
  }
  if (!state.targets.empty()) {
    const int64_t nt = static_cast<int64_t>(state.targets.size());
    const int64_t plane = box_.out_height * box_.out_width;
    out->y = Array(DType::kF32, {count, nt, box_.out_height, box_.out_width});
    for (int64_t t_index = 0; t_index < nt; ++t_index) {
      const Hdf5AuxInfo& aux = state.targets[static_cast<size_t>(t_index)];
      TS_ASSIGN_OR_RETURN(Array target, state.reader->ReadAux(aux, first, count, DType::kF32));
      auto src = target.As<float>();
      auto dst = out->y.As<float>();
      for (int64_t i = 0; i < count; ++i)
        std::copy(src.begin() + i * plane, src.begin() + (i + 1) * plane,
                  dst.begin() + (i * nt + t_index) * plane);
    }
  }
  return BatchPtr(std::move(out));
}

void Hdf5Source::RequestPrefetch(size_t f, int64_t batch) const {
  Key next{f, batch + 1};
  if ((batch + 1) * files_[f].batch_frames >= files_[f].reader->info().num_frames) {
    if (f + 1 >= files_.size()) return;
    next = {f + 1, 0};
  }
  std::call_once(prefetch_started_,
                 [this] { prefetcher_ = std::thread([this] { PrefetchLoop(); }); });
  {
    std::lock_guard<std::mutex> lock(prefetch_mu_);
    prefetch_want_ = next;
  }
  prefetch_cv_.notify_one();
}

void Hdf5Source::PrefetchLoop() const {
  std::optional<Key> done;
  while (true) {
    Key want;
    {
      std::unique_lock<std::mutex> lock(prefetch_mu_);
      prefetch_cv_.wait(lock, [&] { return stop_ || (prefetch_want_ && prefetch_want_ != done); });
      if (stop_) return;
      want = *prefetch_want_;
    }
    // Errors are not lost: a worker asking for this batch gets the same cached Result.
    (void)GetBatch(want.first, want.second, /*prefetch=*/false);
    done = want;
  }
}

Result<BatchPtr> Hdf5Source::GetBatch(size_t f, int64_t batch, bool prefetch) const {
  const Key key{f, batch};
  std::shared_future<Result<BatchPtr>> future;
  std::promise<Result<BatchPtr>> promise;
  bool load = false;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      cache_.emplace(key, future);
      cache_order_.push_back(key);
      // Items are processed roughly in order: the oldest batches are done with. A reader still
      // holding one keeps it alive through its shared_ptr.
      while (cache_order_.size() > cache_capacity_) {
        cache_.erase(cache_order_.front());
        cache_order_.pop_front();
      }
      load = true;
    }
  }
  if (prefetch) RequestPrefetch(f, batch);
  if (load) {
    // No exception may leave the promise unset: the other readers wait on it.
    try {
      // Isolated: while this thread waits for its own parallel_for it must not pick up a driver
      // task that would wait on this very promise (a self-deadlock under work stealing).
      promise.set_value(tbb::this_task_arena::isolate([&] { return LoadBatch(f, batch); }));
    } catch (const std::exception& e) {
      promise.set_value(
          Internal("HDF5 file ", files_[f].reader->info().file, ": batch ", batch, ": ", e.what()));
    }
  }
  return future.get();
}

}  // namespace

Result<std::unique_ptr<Source>> OpenHdf5Source(const Hdf5SourceOptions& options) {
  auto source = std::make_unique<Hdf5Source>();
  TS_RETURN_IF_ERROR(source->Init(options));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace tilestage::ingest
