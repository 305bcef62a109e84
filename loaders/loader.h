// Loader: streams batches of a tile store to one consumer thread through a TBB pipeline.
//
//   input (order, serial) -> read -> verify (XXH3) -> decode (decompress) ->
//   normalize (float32, per-channel manifest statistics, NaN and nodata -> 0) ->
//   augment (flips, rot90, crop; seeded per sample) -> collate (serial, in order, into a
//   recycled batch buffer) -> bounded queue of `prefetch` batches -> Next().
// Samples pass from stage to stage in chunks of consecutive samples of one batch (about 1 MiB
// of stored bytes, at most 16 samples), so that the hand-offs are not paid per small record.
// Uncompressed records skip the separate verify step: x is normalized piece by piece as each
// piece is hashed (one read of the record from memory), and the checksum is compared before the
// sample counts as delivered; a record that is damaged anywhere still fails with the checksum
// mismatch.
//
// Validity: NaN, and in every dtype the channel's nodata value that the ingest recorded in the
// manifest (FieldNodata: DEM -32768, label 255, Landsat 0 stay in integer stores), are invalid:
// they become 0 after normalization and 0 in Batch::x_valid / Batch::y_valid, for x and y alike.
//
// Read: shards on the local file system are mapped read-only and records are verified, decoded
// and normalized straight from the page cache (no copy); other storages are read with pread.
//
// Order: sample_order.h. The global batch is batch_size * world_size samples; rank r of W takes
// the r-th part of each global batch. The order is a pure function of (seed, epoch, shard sizes,
// global batch, shuffle), not of W or the thread count, so a resume from LoaderPosition, on any
// W dividing the global batch, recomputes it and starts at the position without reading what
// came before. Augmentation draws are keyed by (seed, epoch, record index), so a sample's tensor
// is bit-identical whatever the thread count or the rank that loads it. The loader never calls
// MPI: ranks pass rank/world_size (and the job's node count, checked against a partition-staged
// store: stage_plan.h).
//
// Memory: at most prefetch + 1 batch buffers exist (the queue plus the one the caller holds) and
// the number of samples in flight is sized from mem_budget_bytes, so memory is bounded by the
// budget whatever the store size (only the epoch's order, 8 bytes per sample, grows with it; the
// page cache behind mapped shards belongs to the kernel and is not counted).
// Open fails with ResourceExhausted when the budget cannot hold the batches.
//
// Corruption: a record whose checksum or decoding fails stops loading with DataLoss naming the
// shard and record (skip_corrupt = false), or is dropped from its batch and counted (true): the
// batch then has fewer samples, batches_per_epoch stays the same on every rank.
//
// Thread-safety: one consumer thread calls Next() (or NextUnless()); position(), stats() and the
// other const accessors may be called from any thread. Internal TBB threads do the work.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loaders/batch.h"
#include "loaders/sample_order.h"
#include "tiling/manifest.h"
#include "tiling/status.h"
#include "tiling/storage.h"

namespace tilestage {

// Where the job is: the epoch and the samples of it consumed so far by all ranks together
// (a multiple of the global batch). The same position means the same point at any world size.
struct LoaderPosition {
  uint64_t epoch = 0;
  uint64_t samples_consumed = 0;  // global
};

struct LoaderOptions {
  int64_t batch_size = 32;  // per rank: the global batch is batch_size * world_size
  uint64_t seed = 0;
  ShuffleMode shuffle = ShuffleMode::kGlobal;
  int rank = 0;
  int world_size = 1;
  int threads = 0;  // 0 = TBB default
  int prefetch = 4;  // batches queued ahead of the consumer (>= 1)
  uint64_t mem_budget_bytes = 1ull << 30;
  bool normalize = true;
  // Deliver x and y in their stored dtype (Batch::x_stored, y_stored), values untouched (NaN and
  // nodata included; the validity masks say which are invalid). Needs normalize = false.
  bool keep_stored_dtype = false;
  bool augment = false;  // random flips, and rot90 when the (cropped) tile is square
  // Global record indices [range_begin, range_end) of the store (train/eval splits).
  uint64_t range_begin = 0;
  uint64_t range_end = UINT64_MAX;
  LoaderPosition start;  // resume point
  bool skip_corrupt = false;
  uint64_t block_shards = 4;  // ShuffleMode::kBlock window
  uint64_t block_parts = 64;  // ShuffleMode::kBlock canonical parts (sample_order.h)
  // Nodes of the job; a partition-staged store staged for another node count is refused
  // (FailedPrecondition with the restaging command). 0: not checked.
  int nodes = 0;
  bool validity_mask = false;  // fill Batch::x_valid
  bool drop_last = false;      // drop each epoch's tail instead of padding the last batch
  // Random crop of x (and of a y with the same H, W) to crop_h x crop_w; 0 = no crop.
  int64_t crop_h = 0;
  int64_t crop_w = 0;
};

// Busy time of one pipeline stage, summed over threads.
struct StageStats {
  std::string name;
  double busy_s = 0;
  uint64_t items = 0;
};

struct LoaderStats {
  std::vector<StageStats> stages;  // read, verify, decode, normalize, augment, collate
  uint64_t batches = 0;            // delivered to the consumer
  uint64_t samples = 0;            // delivered (skipped ones excluded)
  uint64_t bytes_read = 0;         // stored bytes read from shards
  uint64_t corrupt_skipped = 0;
  std::vector<std::string> corrupt_examples;  // first few "shard ...: record ...: ..." messages
  // Consumer wait inside Next() per delivered batch (the data stall).
  double wait_s_total = 0;
  double wait_s_max = 0;
  // Ready batches in the queue when Next() was called, averaged over calls, and the capacity.
  double queue_occupancy_mean = 0;
  int queue_capacity = 0;
  uint64_t tokens_in_flight = 0;     // samples the pipeline may hold at once
  uint64_t memory_bound_bytes = 0;   // what the loader's buffers can reach, <= the budget
  int threads = 0;
};

class Loader {
 public:
  // Opens the store (manifest and shard indexes) and checks the options: InvalidArgument for a
  // bad batch size, rank, range, resume position (not at a global batch boundary, or past the
  // epoch), zero samples, or a global batch larger than the records; FailedPrecondition for a
  // partition-staged store whose node count is not options.nodes; ResourceExhausted when
  // mem_budget_bytes is too small. Nothing is read until Next().
  static Result<std::unique_ptr<Loader>> Open(std::shared_ptr<Storage> storage,
                                              const std::string& store_dir,
                                              LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Fills *batch with the next batch of the current epoch and returns true; returns false at the
  // end of the epoch (the next call starts the following epoch). *batch's old buffers are taken
  // back for reuse. Errors (DataLoss naming shard and record, IOError) are sticky.
  Result<bool> Next(Batch* batch);
  // Next() for a consumer that must stay responsive while it waits (Python's Ctrl-C): about
  // every `poll` of waiting it calls `interrupted` on the calling thread, with no loader lock
  // held; once that returns true it returns std::nullopt, having consumed nothing (the loader
  // stays usable). Otherwise it returns what Next() would.
  Result<std::optional<bool>> NextUnless(Batch* batch, const std::function<bool()>& interrupted,
                                         std::chrono::milliseconds poll);

  // What to save in a checkpoint: reopening with start = position() continues exactly.
  LoaderPosition position() const;
  uint64_t batches_per_epoch() const;  // global batches, the same on every rank and world size
  uint64_t samples_per_epoch() const;  // this rank's samples (padding included)
  uint64_t total_records() const;      // records selected by the range, before padding
  const Manifest& manifest() const;
  const LoaderOptions& options() const;
  LoaderStats stats() const;

 private:
  class Impl;
  explicit Loader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tilestage
