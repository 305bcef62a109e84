#include "loaders/loader.h"

#include <sys/mman.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "loaders/stage_plan.h"
#include "tiling/checksum.h"
#include "tiling/shard.h"
#include "tiling/store.h"
#include "tiling/synth.h"
#include "tiling/vector4.h"

namespace tilestage {
namespace {

using Clock = std::chrono::steady_clock;

enum Stage { kRead, kVerify, kDecode, kNormalize, kAugment, kCollate, kNumStages };
constexpr const char* kStageNames[kNumStages] = {"read",      "verify",  "decode",
                                                 "normalize", "augment", "collate"};
constexpr uint64_t kAugmentStream = 0x4155474d454e54ull;  // "AUGMENT"
constexpr size_t kMaxCorruptExamples = 8;
// A chunk holds about this many stored bytes (at most kMaxChunkItems samples, at least one).
constexpr uint64_t kChunkBytes = 1 << 20;
constexpr uint64_t kMaxChunkItems = 16;

// Per-channel affine normalization (identity where statistics are missing or disabled) and the
// value that marks a missing pixel in each channel, when the manifest records one.
struct ChannelNorm {
  std::vector<float> mean;
  std::vector<float> inv_std;
  std::vector<std::optional<double>> nodata;
};

Result<ChannelNorm> MakeNorm(const std::string& dir, const Manifest& manifest,
                             const FieldSchema& field, int64_t channels, bool enabled) {
  TS_ASSIGN_OR_RETURN(auto nodata, FieldNodata(manifest, field.name));
  if (!nodata.empty() && static_cast<int64_t>(nodata.size()) != channels)
    return DataLoss("store ", dir, ": the manifest records ", nodata.size(),
                    " nodata values for the ", channels, " channels of field ", field.name);
  ChannelNorm norm;
  norm.mean.assign(static_cast<size_t>(channels), 0.0f);
  norm.inv_std.assign(static_cast<size_t>(channels), 1.0f);
  norm.nodata = std::move(nodata);
  norm.nodata.resize(static_cast<size_t>(channels));
  if (!enabled || static_cast<int64_t>(field.stats.size()) != channels) return norm;
  for (int64_t c = 0; c < channels; ++c) {
    const ChannelStats& s = field.stats[static_cast<size_t>(c)];
    if (s.count == 0) continue;
    norm.mean[c] = static_cast<float>(s.mean);
    const double sd = s.std();
    // A constant channel would divide by zero; centring it is all normalization can do.
    norm.inv_std[c] = (sd > 0 && std::isfinite(sd)) ? static_cast<float>(1.0 / sd) : 1.0f;
  }
  return norm;
}

// The stored value of type T that marks a missing pixel: a float nodata in range is compared after
// a cast to T (as GDAL compares float pixels and as the ingest did), an integer type matches only a
// nodata value it represents exactly. NaN needs no nodata: it is always invalid.
template <typename T>
std::optional<T> NodataAs(std::optional<double> nodata) {
  if (!nodata || std::isnan(*nodata) || !RepresentsExactly(DTypeOf<T>(), *nodata))
    return std::nullopt;
  return static_cast<T>(*nodata);
}

// Converts `count` consecutive values of one channel (raw little-endian bytes of dtype T, not
// necessarily aligned) to float32 and normalizes them; NaN and the channel's nodata value become
// 0. Writes 1/0 validity into mask when given. Loads go through memcpy: payloads inside a record
// need not be aligned.
template <typename T>
[[gnu::always_inline]] inline void NormalizeRange(const uint8_t* s, int64_t count, float mean,
                                                  float inv_std, std::optional<T> nodata, float* o,
                                                  uint8_t* m) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!m && !nodata) {
      // The common case, kept branch-free so the compiler vectorizes it.
      for (int64_t i = 0; i < count; ++i) {
        T raw;
        std::memcpy(&raw, s + i * sizeof(T), sizeof(T));
        const float r = (static_cast<float>(raw) - mean) * inv_std;
        // NaN in, NaN out; zero it with integer ops, which (unlike a float compare under
        // -ftrapping-math) let the compiler vectorize the loop.
        uint32_t bits;
        std::memcpy(&bits, &r, sizeof bits);
        const uint32_t is_nan = (bits & 0x7fffffffu) > 0x7f800000u;
        bits &= is_nan - 1u;
        std::memcpy(o + i, &bits, sizeof bits);
      }
      return;
    }
    const bool has_nodata = nodata.has_value();
    const T nd = nodata.value_or(T{0});
    for (int64_t i = 0; i < count; ++i) {
      T raw;
      std::memcpy(&raw, s + i * sizeof(T), sizeof(T));
      const float v = static_cast<float>(raw);
      const bool valid = !std::isnan(v) && !(has_nodata && raw == nd);
      o[i] = valid ? (v - mean) * inv_std : 0.0f;
      if (m) m[i] = valid ? 1 : 0;
    }
  } else {
    if (!nodata) {
      for (int64_t i = 0; i < count; ++i) {
        T raw;
        std::memcpy(&raw, s + i * sizeof(T), sizeof(T));
        o[i] = (static_cast<float>(raw) - mean) * inv_std;
      }
      if (m) std::fill(m, m + count, uint8_t{1});
      return;
    }
    const T nd = *nodata;
    for (int64_t i = 0; i < count; ++i) {
      T raw;
      std::memcpy(&raw, s + i * sizeof(T), sizeof(T));
      const float r = (static_cast<float>(raw) - mean) * inv_std;
      o[i] = raw != nd ? r : 0.0f;
    }
    if (m) {
      for (int64_t i = 0; i < count; ++i) {
        T raw;
        std::memcpy(&raw, s + i * sizeof(T), sizeof(T));
        m[i] = raw != nd ? 1 : 0;
      }
    }
  }
}

// The common case (float32 without mask or nodata) compiled once more for AVX2, twice the lanes
// per instruction, and picked at load time, as the statistics loops are.
TS_AVX2_CLONES void NormalizeFloats(const uint8_t* s, int64_t count, float mean, float inv_std,
                                    float* o) {
  NormalizeRange<float>(s, count, mean, inv_std, std::nullopt, o, nullptr);
}

void NormalizeSpan(DType dtype, const uint8_t* s, int64_t count, float mean, float inv_std,
                   std::optional<double> nodata, float* o, uint8_t* m) {
  if (dtype == DType::kF32 && !m && !NodataAs<float>(nodata))
    return NormalizeFloats(s, count, mean, inv_std, o);
  VisitDType(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::optional<T> nd = NodataAs<T>(nodata);
    NormalizeRange<T>(s, count, mean, inv_std, nd, o, m);
  });
}

// Converts elements [begin, end) of a channel-first field to float32, normalizes them by their
// channel and maps NaN and nodata to 0; writes 1/0 validity into mask when given. Element i goes
// to out[i] (and mask[i]). Plain stores, not streaming ones: the consumer reads the batch soon
// after, and a few batches stay in cache (measured: streaming stores made `load --read-batches`
// about 15% slower).
void NormalizeElements(const FieldView& field, const ChannelNorm& norm, int64_t begin, int64_t end,
                       float* out, uint8_t* mask) {
  const int64_t channels = static_cast<int64_t>(norm.mean.size());
  const int64_t size = static_cast<int64_t>(DTypeSize(field.dtype));
  const int64_t elements = static_cast<int64_t>(field.data.size()) / size;
  const int64_t per_channel = elements / std::max<int64_t>(channels, 1);
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t from = std::max(begin, c * per_channel);
    const int64_t to = std::min(end, (c + 1) * per_channel);
    if (from >= to) continue;
    NormalizeSpan(field.dtype, field.data.data() + from * size, to - from, norm.mean[c],
                  norm.inv_std[c], norm.nodata[c], out + from, mask ? mask + from : nullptr);
  }
}

void NormalizeInto(const FieldView& field, const ChannelNorm& norm, float* out, uint8_t* mask) {
  NormalizeElements(field, norm, 0,
                    static_cast<int64_t>(field.data.size() / DTypeSize(field.dtype)), out, mask);
}

// XXH3 of `record` (as Hash64) while normalizing `field`, whose bytes lie inside it: each 4 KiB
// piece is hashed, then the field's elements that end in it are normalized from L1, while the
// next piece is prefetched. The record is read from memory once, not once to check and once to
// convert (about 10% more records per second on the loader benchmark).
uint64_t HashWhileNormalizing(std::span<const uint8_t> record, const FieldView& field,
                              const ChannelNorm& norm, Hasher& hasher, float* out, uint8_t* mask) {
  constexpr size_t kPieceBytes = 4 << 10;
  const size_t size = DTypeSize(field.dtype);
  const size_t field_begin = static_cast<size_t>(field.data.data() - record.data());
  const int64_t elements = static_cast<int64_t>(field.data.size() / size);
  int64_t normalized = 0;
  hasher.Reset();
  for (size_t at = 0; at < record.size(); at += kPieceBytes) {
    const size_t end = std::min(record.size(), at + kPieceBytes);
    for (size_t line = end; line < std::min(record.size(), end + kPieceBytes); line += 64)
      __builtin_prefetch(record.data() + line);
    hasher.Update(record.subspan(at, end - at));
    if (end <= field_begin) continue;
    const int64_t hashed = std::min(elements, static_cast<int64_t>((end - field_begin) / size));
    NormalizeElements(field, norm, normalized, hashed, out, mask);
    normalized = hashed;
  }
  return hasher.Digest();
}

// Writes 1/0 validity of a channel-first field (NaN and the channel's nodata invalid) into mask,
// for fields delivered in their stored dtype.
void MarkValidInto(const FieldView& field, const ChannelNorm& norm, uint8_t* mask) {
  const int64_t channels = static_cast<int64_t>(norm.nodata.size());
  const int64_t size = static_cast<int64_t>(DTypeSize(field.dtype));
  const int64_t per_channel =
      static_cast<int64_t>(field.data.size()) / size / std::max<int64_t>(channels, 1);
  VisitDType(field.dtype, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t c = 0; c < channels; ++c) {
      const std::optional<T> nd = NodataAs<T>(norm.nodata[c]);
      const uint8_t* s = field.data.data() + c * per_channel * size;
      uint8_t* m = mask + c * per_channel;
      for (int64_t i = 0; i < per_channel; ++i) {
        T raw;
        std::memcpy(&raw, s + i * size, sizeof(T));
        bool valid = !(nd && raw == *nd);
        if constexpr (std::is_floating_point_v<T>) valid = valid && !std::isnan(raw);
        m[i] = valid ? 1 : 0;
      }
    }
  });
}

const FieldView* FindView(const std::vector<FieldView>& views, std::string_view name) {
  for (const auto& v : views)
    if (v.name == name) return &v;
  return nullptr;
}

// One sample's spatial augmentation: crop offset, flips, quarter turns. Output pixel (i, j) of
// an oh x ow tile reads input pixel Source(i, j) of the in_h x in_w tile.
struct Transform {
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t y0 = 0, x0 = 0;
  bool flip_v = false, flip_h = false;
  int quarter_turns = 0;  // only when out_h == out_w

  bool identity() const {
    return in_h == out_h && in_w == out_w && !flip_v && !flip_h && quarter_turns == 0;
  }
  // np.rot90(flip(crop(in)), k)[i, j]: undo the turns, then the flips, then the crop.
  std::pair<int64_t, int64_t> Source(int64_t i, int64_t j) const {
    for (int k = 0; k < quarter_turns; ++k) {
      // np.rot90(m)[i, j] == m[j, n - 1 - i] for a square n x n tile.
      const int64_t a = j, b = out_w - 1 - i;
      i = a;
      j = b;
    }
    if (flip_v) i = out_h - 1 - i;
    if (flip_h) j = out_w - 1 - j;
    return {i + y0, j + x0};
  }
  template <typename T>
  void Apply(const T* in, int64_t channels, T* out) const {
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t j = 0; j < out_w; ++j) {
        const auto [si, sj] = Source(i, j);
        for (int64_t c = 0; c < channels; ++c)
          out[(c * out_h + i) * out_w + j] = in[(c * in_h + si) * in_w + sj];
      }
  }
  // Apply over elements of `size` bytes (stored values of any dtype, not necessarily aligned).
  void ApplyBytes(const uint8_t* in, int64_t channels, size_t size, uint8_t* out) const {
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t j = 0; j < out_w; ++j) {
        const auto [si, sj] = Source(i, j);
        for (int64_t c = 0; c < channels; ++c)
          std::memcpy(out + ((c * out_h + i) * out_w + j) * size,
                      in + ((c * in_h + si) * in_w + sj) * size, size);
      }
  }
};

struct BatchBuffer {
  Batch batch;
  std::vector<uint8_t> slot_ok;  // per slot: 1 filled, 0 skipped as corrupt
  uint64_t first_position = 0;   // in the rank's epoch share
  uint64_t positions = 0;        // samples of the share this batch covers (skipped included)
};

// One sample in the pipeline. Items belong to a chunk and are reused with it, byte buffers
// included.
struct Item {
  BatchBuffer* buffer = nullptr;
  int64_t slot = 0;
  bool last_in_batch = false;
  uint64_t index = 0;  // global record index
  size_t shard = 0;
  uint64_t record = 0;
  std::vector<uint8_t> stored;    // pread target when shards are not mapped
  std::span<const uint8_t> bytes;  // the record's stored bytes: in a shard mapping, or `stored`
  std::vector<FieldView> views;
  std::vector<std::vector<uint8_t>> decoded;  // compressed fields, reused record to record
  std::vector<float> scratch, y_scratch;
  std::vector<uint8_t> scratch_mask, y_scratch_mask;
  Hasher hasher;                  // the record's checksum when it is computed while decoding
  bool checksum_checked = false;  // this record's checksum has been compared with its index entry
  Status status;
};

// Consecutive samples of one batch that travel through the pipeline together: a TBB hand-off,
// a clock read and a pool lock cost about as much as checking and converting a few KB, so they
// are paid per chunk of about kChunkBytes rather than per sample.
struct Chunk {
  explicit Chunk(size_t capacity) : items(std::make_unique<Item[]>(capacity)) {}
  std::unique_ptr<Item[]> items;
  size_t size = 0;  // items in use
  std::span<Item> used() { return {items.get(), size}; }
  // Release/acquire at every stage hand-off. TBB already orders the stages; this makes the order
  // visible to ThreadSanitizer, which cannot see inside an uninstrumented libtbb.
  std::atomic<int> handoff{0};
  Chunk* Publish() {
    handoff.fetch_add(1, std::memory_order_release);
    return this;
  }
  Chunk* Acquire() {
    handoff.load(std::memory_order_acquire);
    return this;
  }
};

// One epoch's pass of the pipeline: the state its serial input and collate stages share.
struct PipelineRun {
  uint64_t epoch = 0;
  const std::vector<uint64_t>* order = nullptr;
  size_t* next = nullptr;          // the next position of *order to feed
  uint64_t base = 0;               // the position of (*order)[0] in the rank's epoch share
  BatchBuffer* current = nullptr;  // the batch the input stage is filling
  int64_t slot = 0;                // its next slot
  std::mutex error_mu;             // the input and collate stages may run at once
  Status error;

  bool Failed() {
    std::lock_guard lock(error_mu);
    return !error.ok();
  }
  void Fail(const Status& status) {
    std::lock_guard lock(error_mu);
    if (error.ok()) error = status;
  }
};

}  // namespace

class Loader::Impl {
 public:
  Impl(std::shared_ptr<Storage> storage, LoaderOptions options)
      : storage_(std::move(storage)), options_(std::move(options)) {}
  ~Impl() {
    StopProducer();
    for (auto m : maps_)
      if (!m.empty()) ::munmap(const_cast<uint8_t*>(m.data()), m.size());
  }

  Status Init(const std::string& dir);
  // `interrupted` may be empty: then the wait is not interruptible.
  Result<std::optional<bool>> Next(Batch* batch, const std::function<bool()>& interrupted,
                                   std::chrono::milliseconds poll);
  // Global: this rank's samples consumed, in whole batches, times the world size.
  LoaderPosition position() const {
    std::lock_guard lock(position_mu_);
    return {position_.epoch,
            position_.samples_consumed * static_cast<uint64_t>(options_.world_size)};
  }
  LoaderStats stats() const;

  std::shared_ptr<Storage> storage_;
  LoaderOptions options_;
  std::unique_ptr<Store> store_;
  std::vector<std::unique_ptr<ReadableFile>> files_;
  // Read-only mappings of the shard files on the local file system: records are hashed, decoded
  // and normalized straight from the page cache, with no copy into a read buffer. Empty for
  // other storages (and where mmap fails), which read with pread.
  std::vector<std::span<const uint8_t>> maps_;
  std::vector<std::string> where_prefix_;  // "shard <path>: record " of each shard
  std::optional<SampleOrder> order_;
  uint64_t share_ = 0;  // positions per epoch actually delivered (drop_last applied)
  uint64_t batches_per_epoch_ = 0;

  // Fields.
  std::vector<int64_t> x_in_shape_, x_out_shape_, y_in_shape_, y_out_shape_;
  bool has_y_ = false, y_spatial_ = false;
  DType x_dtype_ = DType::kF32, y_dtype_ = DType::kF32;
  ChannelNorm x_norm_, y_norm_;
  bool needs_transform_ = false;
  // Uncompressed records are checked while x is normalized (HashWhileNormalizing), in the decode
  // stage; otherwise a verify stage hashes each record before it is decoded.
  bool checksum_in_decode_ = false;
  uint64_t tokens_ = 0;       // samples in flight: chunks_ * chunk_items_
  uint64_t chunk_items_ = 1;  // samples per chunk
  uint64_t chunks_ = 0;       // chunks in flight (the pipeline's tokens)
  uint64_t memory_bound_ = 0;
  int threads_ = 0;
  std::unique_ptr<tbb::task_arena> arena_;

 private:
  void StartProducer(uint64_t epoch, uint64_t from);
  void StopProducer();
  void ProducerMain(uint64_t epoch, std::vector<uint64_t> order);
  // One epoch's pass of the pipeline over `order` from *next: input -> read -> verify -> decode
  // (normalize, augment) -> collate, each stage a step below.
  Status RunPipeline(uint64_t epoch, const std::vector<uint64_t>& order, size_t* next);
  Chunk* NextChunk(PipelineRun& run, tbb::flow_control& fc);
  bool StartBatch(PipelineRun& run);  // false when stopping or no buffer is free
  Chunk* ReadChunk(Chunk* chunk);
  Chunk* VerifyChunk(Chunk* chunk);
  Chunk* DecodeChunk(Chunk* chunk, uint64_t epoch);
  void CollateChunk(PipelineRun& run, Chunk* chunk);
  void ReadItem(Item& item);
  void DecodeItem(Item& item, uint64_t epoch);
  void CollateItem(PipelineRun& run, const Item& item);
  void CloseSkippedHoles(BatchBuffer* buffer) const;
  Status DecodeInto(Item* item, uint64_t epoch);
  Status NormalizeX(Item* item, const FieldView& x, float* out, uint8_t* mask);
  Transform SampleTransform(uint64_t epoch, uint64_t index) const;
  void DeliverStored(const FieldView& x, const FieldView* y, Item* item, uint64_t epoch);
  Status ChecksumError(const Item& item, uint64_t actual) const;
  // Adds the time since `since` to the stage's busy time and returns now, which starts the next
  // stage's timing: one clock read per boundary.
  Clock::time_point Timed(Stage stage, Clock::time_point since, uint64_t items = 1) {
    const auto now = Clock::now();
    ThreadStats& mine = MyStats();
    mine.busy_ns[stage].fetch_add(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - since).count(),
        std::memory_order_relaxed);
    mine.items[stage].fetch_add(items, std::memory_order_relaxed);
    return now;
  }

  mutable std::mutex position_mu_;
  LoaderPosition position_;  // samples_consumed counts this rank's samples

  // Producer/consumer hand-off.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BatchBuffer*> ready_;
  std::vector<BatchBuffer*> free_;
  std::vector<std::unique_ptr<BatchBuffer>> buffers_;
  bool stop_ = false;
  bool producer_done_ = false;
  Status producer_error_;
  std::thread producer_;
  bool running_ = false;
  Status sticky_error_;

  // Chunk pool (touched by the serial input and collate stages, which may run concurrently).
  std::mutex chunk_mu_;
  std::vector<std::unique_ptr<Chunk>> chunks_storage_;
  std::vector<Chunk*> free_chunks_;

  // Statistics, counted per pipeline thread, each thread's counters in their own cache lines:
  // shared counters, added to for every record by both threads of a 2-core node, kept one line
  // moving between the cores (about 5% of a later epoch's time, in one `lock add`). stats() adds
  // them.
  struct alignas(64) ThreadStats {
    std::atomic<uint64_t> busy_ns[kNumStages] = {};
    std::atomic<uint64_t> items[kNumStages] = {};
    std::atomic<uint64_t> bytes_read{0};
  };
  // The counters of the calling thread's slot in arena_ (the pipeline runs only there).
  ThreadStats& MyStats() {
    const int slot = tbb::this_task_arena::current_thread_index();
    return thread_stats_[static_cast<size_t>(slot) % thread_stats_.size()];
  }
  std::vector<ThreadStats> thread_stats_;
  std::atomic<uint64_t> corrupt_skipped_{0};
  std::vector<std::string> corrupt_examples_;  // under mu_
  uint64_t batches_ = 0, samples_ = 0, next_calls_ = 0;
  double wait_s_total_ = 0, wait_s_max_ = 0, occupancy_sum_ = 0;
};

Status Loader::Impl::Init(const std::string& dir) {
  const LoaderOptions& o = options_;
  if (o.batch_size <= 0) return InvalidArgument("batch size must be positive, got ", o.batch_size);
  if (o.world_size <= 0) return InvalidArgument("world size must be positive, got ", o.world_size);
  if (o.rank < 0 || o.rank >= o.world_size)
    return InvalidArgument("rank ", o.rank, " out of range for world size ", o.world_size);
  if (o.prefetch < 1) return InvalidArgument("prefetch must be at least 1, got ", o.prefetch);
  if (o.threads < 0) return InvalidArgument("threads must be >= 0, got ", o.threads);
  if (o.keep_stored_dtype && o.normalize)
    return InvalidArgument("the stored dtype is kept only without normalization (normalize off)");
  if (o.crop_h < 0 || o.crop_w < 0 || (o.crop_h > 0) != (o.crop_w > 0))
    return InvalidArgument("crop must give both height and width, got ", o.crop_h, "x", o.crop_w);

  TS_ASSIGN_OR_RETURN(store_, Store::Open(storage_, dir));
  const Manifest& m = store_->manifest();
  if (o.nodes > 0) TS_RETURN_IF_ERROR(CheckStagedShare(m, dir, o.nodes));
  for (size_t s = 0; s < store_->num_shards(); ++s) {
    TS_ASSIGN_OR_RETURN(auto file, storage_->OpenRead(store_->shard(s).path()));
    where_prefix_.push_back(StrCat("shard ", file->path(), ": record "));
    files_.push_back(std::move(file));
  }
  if (storage_.get() == LocalStorage().get()) {
    for (size_t s = 0; s < files_.size(); ++s) {
      auto map = MapForReading(files_[s]->path(), files_[s]->size());
      if (!map.ok()) {
        for (auto m : maps_) ::munmap(const_cast<uint8_t*>(m.data()), m.size());
        maps_.clear();
        break;  // fall back to pread for every shard
      }
      maps_.push_back(*map);
    }
  }

  // Fields and shapes.
  const FieldSchema* x = m.FindField("x");
  if (!x) return InvalidArgument("store ", dir, ": no field 'x' in the manifest");
  if (x->shape.size() != 3)
    return InvalidArgument("store ", dir, ": field x has shape of rank ", x->shape.size(),
                           "; the loader needs a fixed channel-first [C,H,W] shape");
  x_in_shape_ = x->shape;
  x_dtype_ = x->dtype;
  x_out_shape_ = x_in_shape_;
  if (o.crop_h > 0) {
    if (o.crop_h > x_in_shape_[1] || o.crop_w > x_in_shape_[2])
      return InvalidArgument("crop ", o.crop_h, "x", o.crop_w, " is larger than the ",
                             x_in_shape_[1], "x", x_in_shape_[2], " tiles of ", dir);
    x_out_shape_[1] = o.crop_h;
    x_out_shape_[2] = o.crop_w;
  }
  TS_ASSIGN_OR_RETURN(x_norm_, MakeNorm(dir, m, *x, x_in_shape_[0], o.normalize));
  if (const FieldSchema* y = m.FindField("y")) {
    if (y->shape.empty())
      return InvalidArgument("store ", dir, ": field y has a varying shape; the loader needs a "
                             "fixed one");
    has_y_ = true;
    y_dtype_ = y->dtype;
    y_in_shape_ = y->shape;
    y_out_shape_ = y_in_shape_;
    y_spatial_ = y->shape.size() == 3 && y->shape[1] == x_in_shape_[1] &&
                 y->shape[2] == x_in_shape_[2];
    if (y_spatial_) {
      y_out_shape_[1] = x_out_shape_[1];
      y_out_shape_[2] = x_out_shape_[2];
    }
    const int64_t y_channels = y_spatial_ ? y->shape[0] : 1;
    TS_ASSIGN_OR_RETURN(y_norm_, MakeNorm(dir, m, *y, y_channels,
                                          o.normalize && IsFloat(y->dtype) && y_spatial_));
  }
  needs_transform_ = o.augment || o.crop_h > 0;
  checksum_in_decode_ = m.codec.codec == Codec::kNone && !o.keep_stored_dtype;

  // Order.
  OrderSpec spec;
  spec.shuffle = o.shuffle;
  spec.seed = o.seed;
  spec.global_batch = static_cast<uint64_t>(o.batch_size) * static_cast<uint64_t>(o.world_size);
  spec.block_shards = o.block_shards;
  spec.block_parts = o.block_parts;
  spec.drop_last = o.drop_last;
  const uint64_t total = store_->size();
  const uint64_t range_end = std::min(o.range_end, total);
  if (o.range_begin >= range_end)
    return InvalidArgument("store ", dir, ": zero samples selected (range [", o.range_begin, ", ",
                           o.range_end == UINT64_MAX ? std::string("end")
                                                     : std::to_string(o.range_end),
                           ") of ", total, " records)");
  spec.first_index = o.range_begin;
  for (size_t s = 0; s < store_->num_shards(); ++s) {
    const uint64_t lo = std::max(store_->shard_offset(s), o.range_begin);
    const uint64_t hi = std::min(store_->shard_offset(s + 1), range_end);
    if (lo < hi) spec.shard_records.push_back(hi - lo);
  }
  auto order = SampleOrder::Create(std::move(spec));
  if (!order.ok())
    return order.status().WithContext(
        StrCat("store ", dir, ", batch of ", o.batch_size, " per rank x ", o.world_size, " ranks"));
  order_.emplace(std::move(order).value());
  const uint64_t batch = static_cast<uint64_t>(o.batch_size);
  batches_per_epoch_ = order_->batches_per_epoch();
  share_ = batches_per_epoch_ * batch;
  const uint64_t global = order_->global_batch();
  if (o.start.samples_consumed % global != 0 ||
      o.start.samples_consumed > order_->samples_per_epoch())
    return InvalidArgument("resume position ", o.start.samples_consumed, " of epoch ",
                           o.start.epoch, " is not a boundary of the ", batches_per_epoch_,
                           " global batches of ", global, " samples");
  // Internally the position counts this rank's samples.
  position_ = {o.start.epoch, o.start.samples_consumed / global * batch};

  // Memory: prefetch queued batches plus the caller's, then as many in-flight samples as fit.
  const uint64_t x_value = o.keep_stored_dtype ? DTypeSize(x_dtype_) : sizeof(float);
  const uint64_t y_value = o.keep_stored_dtype && has_y_ ? DTypeSize(y_dtype_) : sizeof(float);
  const uint64_t x_bytes =
      static_cast<uint64_t>(ShapeElements(x_out_shape_)) * (x_value + (o.validity_mask ? 1 : 0));
  const uint64_t y_bytes =
      has_y_ ? static_cast<uint64_t>(ShapeElements(y_out_shape_)) * (y_value + 1) : 0;
  const uint64_t batch_bytes = batch * (x_bytes + y_bytes + sizeof(uint64_t) + 1);
  uint64_t max_stored = 0, max_raw = 0, total_stored = 0;
  for (size_t s = 0; s < store_->num_shards(); ++s)
    for (uint64_t r = 0; r < store_->shard(s).num_records(); ++r) {
      max_stored = std::max(max_stored, store_->shard(s).entry(r).stored_size);
      max_raw = std::max(max_raw, store_->shard(s).entry(r).raw_size);
      total_stored += store_->shard(s).entry(r).stored_size;
    }
  const uint64_t scratch = needs_transform_ ? static_cast<uint64_t>(ShapeElements(x_in_shape_)) * 5 +
                                                  (has_y_ ? ShapeElements(y_in_shape_) * 5 : 0)
                                            : 0;
  const uint64_t token_bytes = max_stored + max_raw + scratch + sizeof(Item);
  const uint64_t fixed = static_cast<uint64_t>(o.prefetch + 1) * batch_bytes;
  if (o.mem_budget_bytes < fixed + token_bytes)
    return ResourceExhausted("memory budget of ", o.mem_budget_bytes, " bytes is too small: ",
                             o.prefetch + 1, " batch buffers of ", batch, " samples take ", fixed,
                             " bytes and one sample in flight ", token_bytes,
                             " more; lower --prefetch or --batch, or raise --mem-budget");
  threads_ = o.threads > 0 ? o.threads : tbb::this_task_arena::max_concurrency();
  const uint64_t mean_stored = std::max<uint64_t>(1, total_stored / std::max<uint64_t>(1, total));
  const uint64_t useful_chunks = static_cast<uint64_t>(std::max(8, 4 * threads_));
  const uint64_t affordable = (o.mem_budget_bytes - fixed) / token_bytes;
  chunk_items_ = std::clamp<uint64_t>(kChunkBytes / mean_stored, 1,
                                      std::min<uint64_t>({kMaxChunkItems, batch, affordable}));
  chunks_ = std::min(useful_chunks, affordable / chunk_items_);
  tokens_ = chunks_ * chunk_items_;
  memory_bound_ = fixed + tokens_ * token_bytes;
  arena_ = std::make_unique<tbb::task_arena>(threads_);
  thread_stats_ = std::vector<ThreadStats>(static_cast<size_t>(threads_));

  for (int i = 0; i < o.prefetch; ++i) {
    buffers_.push_back(std::make_unique<BatchBuffer>());
    free_.push_back(buffers_.back().get());
  }
  for (uint64_t i = 0; i < chunks_; ++i) {
    chunks_storage_.push_back(std::make_unique<Chunk>(chunk_items_));
    free_chunks_.push_back(chunks_storage_.back().get());
  }
  return Status::Ok();
}

void Loader::Impl::StartProducer(uint64_t epoch, uint64_t from) {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    producer_done_ = false;
    producer_error_ = Status::Ok();
  }
  running_ = true;
  producer_ = std::thread([this, epoch, from] {
    const uint64_t batch = static_cast<uint64_t>(options_.batch_size);
    auto order = order_->RankOrder(epoch, static_cast<uint64_t>(options_.rank),
                                   static_cast<uint64_t>(options_.world_size), from / batch);
    if (!order.ok()) {
      std::lock_guard lock(mu_);
      producer_error_ = order.status();
      producer_done_ = true;
      cv_.notify_all();
      return;
    }
    ProducerMain(epoch, std::move(order).value());
  });
}

void Loader::Impl::StopProducer() {
  if (!running_) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  producer_.join();
  running_ = false;
  // Batches still queued belong to an abandoned epoch run: recycle them.
  std::lock_guard lock(mu_);
  for (BatchBuffer* b : ready_) free_.push_back(b);
  ready_.clear();
}

void Loader::Impl::ProducerMain(uint64_t epoch, std::vector<uint64_t> order) {
  size_t next = 0;
  Status status;
  // The pipeline stops whenever no free batch buffer is left (a TBB filter must not block), and
  // is restarted here once the consumer hands one back.
  while (next < order.size() && status.ok()) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
      if (stop_) break;
    }
    try {
      arena_->execute([&] { status = RunPipeline(epoch, order, &next); });
    } catch (const std::exception& e) {
      status = Internal("loader pipeline: ", e.what());
    }
  }
  std::lock_guard lock(mu_);
  producer_error_ = status;
  producer_done_ = true;
  cv_.notify_all();
}

Status Loader::Impl::RunPipeline(uint64_t epoch, const std::vector<uint64_t>& order, size_t* next) {
  PipelineRun run;
  run.epoch = epoch;
  run.order = &order;
  run.next = next;
  run.base = share_ - order.size();
  using tbb::filter_mode;
  const auto input = tbb::make_filter<void, Chunk*>(
      filter_mode::serial_in_order, [&](tbb::flow_control& fc) { return NextChunk(run, fc); });
  const auto read = tbb::make_filter<Chunk*, Chunk*>(
      filter_mode::parallel, [&](Chunk* chunk) { return ReadChunk(chunk); });
  const auto verify = tbb::make_filter<Chunk*, Chunk*>(
      filter_mode::parallel, [&](Chunk* chunk) { return VerifyChunk(chunk); });
  const auto decode = tbb::make_filter<Chunk*, Chunk*>(
      filter_mode::parallel, [&](Chunk* chunk) { return DecodeChunk(chunk, epoch); });
  const auto collate = tbb::make_filter<Chunk*, void>(
      filter_mode::serial_in_order, [&](Chunk* chunk) { CollateChunk(run, chunk); });
  if (checksum_in_decode_)
    tbb::parallel_pipeline(chunks_, input & read & decode & collate);
  else
    tbb::parallel_pipeline(chunks_, input & read & verify & decode & collate);
  // A batch whose input was cut short by an error is incomplete; give its buffer back.
  if (run.current) {
    std::lock_guard lock(mu_);
    free_.push_back(run.current);
  }
  return run.error;  // the stages are done: no lock needed
}

// The input stage: the next records of the order, up to a chunk of them and no further than the
// end of the current batch, in the slots after the previous ones, in a batch buffer taken from
// the free list when the last one is full. Stops at the end of the order, on the first error,
// and when no buffer is free (the consumer stopped).
Chunk* Loader::Impl::NextChunk(PipelineRun& run, tbb::flow_control& fc) {
  if (run.Failed() || *run.next >= run.order->size() || (!run.current && !StartBatch(run))) {
    fc.stop();
    return nullptr;
  }
  Chunk* chunk;
  {
    std::lock_guard lock(chunk_mu_);
    chunk = free_chunks_.back();
    free_chunks_.pop_back();
  }
  chunk->size = 0;
  while (run.current && chunk->size < chunk_items_) {
    Item& item = chunk->items[chunk->size++];
    item.buffer = run.current;
    item.slot = run.slot++;
    item.index = (*run.order)[(*run.next)++];
    item.last_in_batch = static_cast<uint64_t>(run.slot) == run.current->positions;
    item.status = Status::Ok();
    if (item.last_in_batch) run.current = nullptr;
  }
  return chunk->Publish();
}

bool Loader::Impl::StartBatch(PipelineRun& run) {
  BatchBuffer* buffer;
  {
    std::lock_guard lock(mu_);
    if (stop_ || free_.empty()) return false;
    buffer = free_.back();
    free_.pop_back();
  }
  const uint64_t batch_size = static_cast<uint64_t>(options_.batch_size);
  const uint64_t first = run.base + *run.next;
  const uint64_t n = std::min<uint64_t>(batch_size, run.order->size() - *run.next);
  buffer->first_position = first;
  buffer->positions = n;
  Batch& b = buffer->batch;
  b.epoch = run.epoch;
  b.index_in_epoch = first / batch_size;
  b.size = static_cast<int64_t>(n);
  b.skipped = 0;
  b.x_shape = x_out_shape_;
  b.y_shape = has_y_ ? y_out_shape_ : std::vector<int64_t>{};
  const uint64_t x_elements = n * static_cast<uint64_t>(ShapeElements(x_out_shape_));
  const uint64_t y_elements = has_y_ ? n * static_cast<uint64_t>(ShapeElements(y_out_shape_)) : 0;
  const bool stored = options_.keep_stored_dtype;
  b.x_dtype = x_dtype_;
  b.y_dtype = y_dtype_;
  b.x.resize(stored ? 0 : x_elements);
  b.y.resize(stored ? 0 : y_elements);
  b.x_stored.resize(stored ? x_elements * DTypeSize(x_dtype_) : 0);
  b.y_stored.resize(stored ? y_elements * DTypeSize(y_dtype_) : 0);
  b.x_valid.resize(options_.validity_mask ? x_elements : 0);
  b.y_valid.resize(y_elements);
  b.indices.resize(n);
  buffer->slot_ok.assign(n, 0);
  run.current = buffer;
  run.slot = 0;
  return true;
}

Chunk* Loader::Impl::ReadChunk(Chunk* chunk) {
  chunk->Acquire();
  const auto t0 = Clock::now();
  for (Item& item : chunk->used()) ReadItem(item);
  Timed(kRead, t0, chunk->size);
  return chunk->Publish();
}

// Locates the record and points item.bytes at it: in the shard's mapping (its first line
// prefetched, so that the chunk's later records are on their way while the first is decoded), or
// in item.stored, read with pread.
void Loader::Impl::ReadItem(Item& item) {
  auto loc = store_->Locate(item.index);
  if (!loc.ok()) {
    item.status = loc.status();
    return;
  }
  item.shard = loc->shard;
  item.record = loc->record;
  const IndexEntry& e = store_->shard(item.shard).entry(item.record);
  if (!maps_.empty()) {
    // Index extents were validated against the file size when the shard was opened.
    item.bytes = maps_[item.shard].subspan(e.offset, e.stored_size);
    __builtin_prefetch(item.bytes.data());
  } else {
    item.stored.resize(e.stored_size);
    item.status = files_[item.shard]->ReadAt(e.offset, item.stored);
    item.bytes = item.stored;
  }
  MyStats().bytes_read.fetch_add(e.stored_size, std::memory_order_relaxed);
}

Chunk* Loader::Impl::VerifyChunk(Chunk* chunk) {
  chunk->Acquire();
  const auto t0 = Clock::now();
  for (Item& item : chunk->used()) {
    if (!item.status.ok()) continue;
    const uint64_t actual = Hash64(item.bytes);
    if (actual != store_->shard(item.shard).entry(item.record).checksum)
      item.status = ChecksumError(item, actual);
  }
  Timed(kVerify, t0, chunk->size);
  return chunk->Publish();
}

Chunk* Loader::Impl::DecodeChunk(Chunk* chunk, uint64_t epoch) {
  chunk->Acquire();
  for (Item& item : chunk->used()) DecodeItem(item, epoch);
  return chunk->Publish();
}

void Loader::Impl::DecodeItem(Item& item, uint64_t epoch) {
  if (!item.status.ok()) return;
  item.checksum_checked = !checksum_in_decode_;
  item.status = DecodeInto(&item, epoch);
  // A record that failed before its checksum was computed is reported as corrupt when its bytes
  // do not match: the checksum is the better diagnosis than whatever the damaged header said.
  if (!item.checksum_checked) {
    const uint64_t actual = Hash64(item.bytes);
    if (actual != store_->shard(item.shard).entry(item.record).checksum)
      item.status = ChecksumError(item, actual);
  }
}

// The collate stage, in input order: records each item's outcome in its batch, returns the chunk
// to the pool.
void Loader::Impl::CollateChunk(PipelineRun& run, Chunk* chunk) {
  chunk->Acquire();
  const auto t0 = Clock::now();
  for (const Item& item : chunk->used()) CollateItem(run, item);
  const uint64_t items = chunk->size;
  {
    std::lock_guard lock(chunk_mu_);
    free_chunks_.push_back(chunk);
  }
  Timed(kCollate, t0, items);
}

// Records the item's outcome in its batch (a corrupt record skipped or the run's first error),
// and hands a batch whose last item arrived to the consumer, or back to the free list when the
// run failed.
void Loader::Impl::CollateItem(PipelineRun& run, const Item& item) {
  BatchBuffer* buffer = item.buffer;
  if (item.status.ok()) {
    buffer->slot_ok[item.slot] = 1;
  } else if (options_.skip_corrupt && item.status.code() == StatusCode::kDataLoss) {
    corrupt_skipped_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    if (corrupt_examples_.size() < kMaxCorruptExamples)
      corrupt_examples_.push_back(item.status.message());
  } else {
    run.Fail(item.status);
  }
  if (!item.last_in_batch) return;
  const bool failed = run.Failed();
  if (!failed) CloseSkippedHoles(buffer);
  std::lock_guard lock(mu_);
  if (failed) {
    free_.push_back(buffer);
  } else {
    ready_.push_back(buffer);
    cv_.notify_all();
  }
}

// Skipped samples leave holes; closing them keeps the batch dense.
void Loader::Impl::CloseSkippedHoles(BatchBuffer* buffer) const {
  Batch& b = buffer->batch;
  const int64_t xe = ShapeElements(x_out_shape_);
  const int64_t ye = has_y_ ? ShapeElements(y_out_shape_) : 0;
  int64_t kept = 0;
  for (int64_t s = 0; s < b.size; ++s) {
    if (!buffer->slot_ok[s]) continue;
    if (kept != s) {
      if (!b.x.empty()) std::copy_n(b.x.begin() + s * xe, xe, b.x.begin() + kept * xe);
      if (!b.x_stored.empty()) {
        const int64_t bytes = xe * static_cast<int64_t>(DTypeSize(b.x_dtype));
        std::copy_n(b.x_stored.begin() + s * bytes, bytes, b.x_stored.begin() + kept * bytes);
      }
      if (!b.x_valid.empty())
        std::copy_n(b.x_valid.begin() + s * xe, xe, b.x_valid.begin() + kept * xe);
      if (ye) {
        if (!b.y.empty()) std::copy_n(b.y.begin() + s * ye, ye, b.y.begin() + kept * ye);
        if (!b.y_stored.empty()) {
          const int64_t bytes = ye * static_cast<int64_t>(DTypeSize(b.y_dtype));
          std::copy_n(b.y_stored.begin() + s * bytes, bytes, b.y_stored.begin() + kept * bytes);
        }
        std::copy_n(b.y_valid.begin() + s * ye, ye, b.y_valid.begin() + kept * ye);
      }
      b.indices[kept] = b.indices[s];
    }
    ++kept;
  }
  b.skipped = b.size - kept;
  if (kept == b.size) return;
  b.size = kept;
  if (!b.x.empty()) b.x.resize(kept * xe);
  if (!b.x_stored.empty()) b.x_stored.resize(kept * xe * DTypeSize(b.x_dtype));
  if (!b.x_valid.empty()) b.x_valid.resize(kept * xe);
  if (!b.y.empty()) b.y.resize(kept * ye);
  if (!b.y_stored.empty()) b.y_stored.resize(kept * ye * DTypeSize(b.y_dtype));
  b.y_valid.resize(kept * ye);
  b.indices.resize(kept);
}

Status Loader::Impl::ChecksumError(const Item& item, uint64_t actual) const {
  const IndexEntry& e = store_->shard(item.shard).entry(item.record);
  return DataLoss("shard ", files_[item.shard]->path(), ": record ", item.record,
                  " (global index ", item.index, "): checksum mismatch (stored ",
                  HashToHex(e.checksum), ", computed ", HashToHex(actual), ")");
}

Status Loader::Impl::DecodeInto(Item* item, uint64_t epoch) {
  // Built without a stream: this runs for every record.
  auto where = [&] { return where_prefix_[item->shard] + std::to_string(item->record); };
  auto t0 = Clock::now();
  const IndexEntry& e = store_->shard(item->shard).entry(item->record);
  Status parsed = ParseRecordView(item->bytes, e, where(), &item->views, &item->decoded);
  if (!parsed.ok()) return parsed;
  t0 = Timed(kDecode, t0);

  const FieldView* x = FindView(item->views, "x");
  if (!x) return DataLoss(where(), ": no field 'x'");
  if (x->shape != x_in_shape_ || x->dtype != x_dtype_)
    return DataLoss(where(), ": field x is ", DTypeName(x->dtype), FormatShape(x->shape),
                    ", the manifest says ", DTypeName(x_dtype_), FormatShape(x_in_shape_));
  Batch& b = item->buffer->batch;
  const FieldView* y = nullptr;
  if (has_y_) {
    y = FindView(item->views, "y");
    if (!y) return DataLoss(where(), ": no field 'y'");
    if (y->shape != y_in_shape_ || y->dtype != y_dtype_)
      return DataLoss(where(), ": field y is ", DTypeName(y->dtype), FormatShape(y->shape),
                      ", the manifest says ", DTypeName(y_dtype_), FormatShape(y_in_shape_));
  }
  b.indices[item->slot] = item->index;
  if (options_.keep_stored_dtype) {
    DeliverStored(*x, y, item, epoch);
    Timed(kNormalize, t0);
    return Status::Ok();
  }
  const int64_t xe = ShapeElements(x_out_shape_);
  float* x_out = b.x.data() + item->slot * xe;
  uint8_t* mask_out = options_.validity_mask ? b.x_valid.data() + item->slot * xe : nullptr;
  const int64_t ye = has_y_ ? ShapeElements(y_out_shape_) : 0;
  float* y_out = has_y_ ? b.y.data() + item->slot * ye : nullptr;
  uint8_t* y_mask_out = has_y_ ? b.y_valid.data() + item->slot * ye : nullptr;
  if (!needs_transform_) {
    TS_RETURN_IF_ERROR(NormalizeX(item, *x, x_out, mask_out));
    if (y) NormalizeInto(*y, y_norm_, y_out, y_mask_out);
    Timed(kNormalize, t0);
    return Status::Ok();
  }
  item->scratch.resize(static_cast<size_t>(ShapeElements(x_in_shape_)));
  item->scratch_mask.resize(mask_out ? item->scratch.size() : 0);
  TS_RETURN_IF_ERROR(
      NormalizeX(item, *x, item->scratch.data(), mask_out ? item->scratch_mask.data() : nullptr));
  t0 = Timed(kNormalize, t0);

  const Transform t = SampleTransform(epoch, item->index);
  t.Apply(item->scratch.data(), x_in_shape_[0], x_out);
  if (mask_out) t.Apply(item->scratch_mask.data(), x_in_shape_[0], mask_out);
  if (y) {
    if (y_spatial_) {
      item->y_scratch.resize(static_cast<size_t>(ShapeElements(y_in_shape_)));
      item->y_scratch_mask.resize(item->y_scratch.size());
      NormalizeInto(*y, y_norm_, item->y_scratch.data(), item->y_scratch_mask.data());
      t.Apply(item->y_scratch.data(), y_in_shape_[0], y_out);
      t.Apply(item->y_scratch_mask.data(), y_in_shape_[0], y_mask_out);
    } else {
      NormalizeInto(*y, y_norm_, y_out, y_mask_out);
    }
  }
  Timed(kAugment, t0);
  return Status::Ok();
}

// Normalizes x into out (and mask), checking the record's checksum on the way when that is the
// decode stage's job and x lies uncompressed inside the record.
Status Loader::Impl::NormalizeX(Item* item, const FieldView& x, float* out, uint8_t* mask) {
  const auto record = reinterpret_cast<uintptr_t>(item->bytes.data());
  const auto data = reinterpret_cast<uintptr_t>(x.data.data());
  const bool in_record = data >= record && data + x.data.size() <= record + item->bytes.size();
  if (!checksum_in_decode_ || !in_record) {
    NormalizeInto(x, x_norm_, out, mask);
    return Status::Ok();
  }
  const uint64_t actual = HashWhileNormalizing(item->bytes, x, x_norm_, item->hasher, out, mask);
  item->checksum_checked = true;
  if (actual != store_->shard(item->shard).entry(item->record).checksum)
    return ChecksumError(*item, actual);
  return Status::Ok();
}

// Draws keyed by (seed, epoch, record): the same sample gets the same crop and augmentation
// whatever the thread count, rank count or resume point.
Transform Loader::Impl::SampleTransform(uint64_t epoch, uint64_t index) const {
  const uint64_t key = CounterHash(options_.seed, kAugmentStream, CounterHash(epoch, index, 0));
  Transform t;
  t.in_h = x_in_shape_[1];
  t.in_w = x_in_shape_[2];
  t.out_h = x_out_shape_[1];
  t.out_w = x_out_shape_[2];
  if (options_.crop_h > 0) {
    t.y0 = static_cast<int64_t>(CounterHash(key, 1, 0) % static_cast<uint64_t>(t.in_h - t.out_h + 1));
    t.x0 = static_cast<int64_t>(CounterHash(key, 2, 0) % static_cast<uint64_t>(t.in_w - t.out_w + 1));
  }
  if (options_.augment) {
    const uint64_t bits = CounterHash(key, 3, 0);
    t.flip_v = bits & 1;
    t.flip_h = bits & 2;
    if (t.out_h == t.out_w) t.quarter_turns = static_cast<int>((bits >> 2) & 3);
  }
  return t;
}

// keep_stored_dtype: the stored bytes go into the batch as they are (cropped and augmented like
// the float path), and the validity masks are computed from them.
void Loader::Impl::DeliverStored(const FieldView& x, const FieldView* y, Item* item,
                                 uint64_t epoch) {
  Batch& b = item->buffer->batch;
  const Transform t = SampleTransform(epoch, item->index);
  auto deliver = [&](const FieldView& f, const ChannelNorm& norm, int64_t channels, bool spatial,
                     uint8_t* out, uint8_t* mask) {
    const size_t size = DTypeSize(f.dtype);
    if (!spatial || t.identity()) {
      std::memcpy(out, f.data.data(), f.data.size());
      if (mask) MarkValidInto(f, norm, mask);
      return;
    }
    t.ApplyBytes(f.data.data(), channels, size, out);
    if (!mask) return;
    item->scratch_mask.resize(f.data.size() / size);
    MarkValidInto(f, norm, item->scratch_mask.data());
    t.Apply(item->scratch_mask.data(), channels, mask);
  };
  const int64_t xe = ShapeElements(x_out_shape_);
  deliver(x, x_norm_, x_in_shape_[0], /*spatial=*/true,
          b.x_stored.data() + item->slot * xe * DTypeSize(x.dtype),
          options_.validity_mask ? b.x_valid.data() + item->slot * xe : nullptr);
  if (!y) return;
  const int64_t ye = ShapeElements(y_out_shape_);
  deliver(*y, y_norm_, y_spatial_ ? y_in_shape_[0] : 1, y_spatial_,
          b.y_stored.data() + item->slot * ye * DTypeSize(y->dtype),
          b.y_valid.data() + item->slot * ye);
}

Result<std::optional<bool>> Loader::Impl::Next(Batch* batch,
                                               const std::function<bool()>& interrupted,
                                               std::chrono::milliseconds poll) {
  if (!sticky_error_.ok()) return sticky_error_;
  LoaderPosition pos;  // this rank's
  {
    std::lock_guard lock(position_mu_);
    pos = position_;
  }
  if (pos.samples_consumed >= share_) {
    StopProducer();
    std::lock_guard lock(position_mu_);
    position_ = {pos.epoch + 1, 0};
    return std::optional<bool>(false);
  }
  if (!running_) StartProducer(pos.epoch, pos.samples_consumed);

  const auto t0 = Clock::now();
  BatchBuffer* buffer = nullptr;
  {
    std::unique_lock lock(mu_);
    const double occupancy = static_cast<double>(ready_.size());
    auto has_news = [&] { return !ready_.empty() || producer_done_; };
    if (!interrupted) {
      cv_.wait(lock, has_news);
    } else {
      while (!cv_.wait_for(lock, poll, has_news)) {
        lock.unlock();
        if (interrupted()) return std::optional<bool>();
        lock.lock();
      }
    }
    occupancy_sum_ += occupancy;
    ++next_calls_;
    if (ready_.empty()) {
      sticky_error_ = producer_error_.ok()
                          ? Internal("loader: the pipeline ended before the epoch did")
                          : producer_error_;
      lock.unlock();
      StopProducer();
      return sticky_error_;
    }
    buffer = ready_.front();
    ready_.pop_front();
  }
  const double wait_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::swap(*batch, buffer->batch);
  const uint64_t covered = buffer->positions;
  {
    std::lock_guard lock(mu_);
    free_.push_back(buffer);
    wait_s_total_ += wait_s;
    wait_s_max_ = std::max(wait_s_max_, wait_s);
    ++batches_;
    samples_ += static_cast<uint64_t>(batch->size);
  }
  cv_.notify_all();
  std::lock_guard lock(position_mu_);
  position_.samples_consumed += covered;
  return std::optional<bool>(true);
}

LoaderStats Loader::Impl::stats() const {
  LoaderStats s;
  for (int i = 0; i < kNumStages; ++i) {
    uint64_t busy_ns = 0, items = 0;
    for (const ThreadStats& t : thread_stats_) {
      busy_ns += t.busy_ns[i].load(std::memory_order_relaxed);
      items += t.items[i].load(std::memory_order_relaxed);
    }
    s.stages.push_back({kStageNames[i], busy_ns * 1e-9, items});
  }
  for (const ThreadStats& t : thread_stats_) s.bytes_read += t.bytes_read.load();
  s.corrupt_skipped = corrupt_skipped_.load();
  s.queue_capacity = options_.prefetch;
  s.tokens_in_flight = tokens_;
  s.memory_bound_bytes = memory_bound_;
  s.threads = threads_;
  std::lock_guard lock(mu_);
  s.corrupt_examples = corrupt_examples_;
  s.batches = batches_;
  s.samples = samples_;
  s.wait_s_total = wait_s_total_;
  s.wait_s_max = wait_s_max_;
  s.queue_occupancy_mean = next_calls_ ? occupancy_sum_ / static_cast<double>(next_calls_) : 0;
  return s;
}

// ------------------------------------------------------------------------------ Loader

Loader::Loader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Loader::~Loader() = default;

Result<std::unique_ptr<Loader>> Loader::Open(std::shared_ptr<Storage> storage,
                                             const std::string& store_dir,
                                             LoaderOptions options) {
  auto impl = std::make_unique<Impl>(std::move(storage), std::move(options));
  TS_RETURN_IF_ERROR(impl->Init(store_dir).WithContext(StrCat("loader for ", store_dir)));
  return std::unique_ptr<Loader>(new Loader(std::move(impl)));
}

Result<bool> Loader::Next(Batch* batch) {
  TS_ASSIGN_OR_RETURN(std::optional<bool> more, impl_->Next(batch, {}, {}));
  return *more;
}
Result<std::optional<bool>> Loader::NextUnless(Batch* batch,
                                               const std::function<bool()>& interrupted,
                                               std::chrono::milliseconds poll) {
  return impl_->Next(batch, interrupted, poll);
}
LoaderPosition Loader::position() const { return impl_->position(); }
uint64_t Loader::batches_per_epoch() const { return impl_->batches_per_epoch_; }
uint64_t Loader::samples_per_epoch() const { return impl_->share_; }
uint64_t Loader::total_records() const { return impl_->order_->total_records(); }
const Manifest& Loader::manifest() const { return impl_->store_->manifest(); }
const LoaderOptions& Loader::options() const { return impl_->options_; }
LoaderStats Loader::stats() const { return impl_->stats(); }

}  // namespace tilestage
