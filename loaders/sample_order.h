// Sample ordering: which global record indices a rank visits in an epoch, and in which order.
//
// Everything here is a pure function of (seed, epoch, shard sizes, world size, mode): no I/O, no
// MPI, no threads, so the order is identical whatever the thread count and can be tested
// exhaustively. The loader and the trainer's checkpoints rely on that: a resumed run recomputes
// the same order and skips the samples already consumed without reading them.
//
// Order of one epoch:
//   1. A permutation of the N records (kNone: store order; kGlobal: uniform shuffle; kBlock: the
//      shards are shuffled, grouped into windows of `block_shards` consecutive shards, and the
//      records are shuffled inside each window only, so a reader touches at most one window of
//      shards at a time, as Mosaic Streaming's py1b/py1br shuffles do).
//   2. Padded to P = W * ceil(N / W) by repeating the permutation from its start, so every rank
//      gets the same number of samples and no rank waits for another that ran out (the hang that
//      uneven WebDataset/DLIO splits produce).
//   3. Rank r gets the contiguous slice [r * S, (r + 1) * S) with S = P / W; contiguous slices
//      keep a rank's reads inside its windows in block mode.
// Before padding, every record appears exactly once across all ranks.
//
// Thread-safety: free functions on values; SampleOrder is immutable after Create and safe to
// share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage {

enum class ShuffleMode { kNone, kGlobal, kBlock };

const char* ShuffleModeName(ShuffleMode mode);
// "none", "global", "block".
Result<ShuffleMode> ParseShuffleMode(const std::string& text);

struct OrderSpec {
  // Records per shard, in store order. Records are numbered first_index, first_index + 1, ...
  // across the shards in this order.
  std::vector<uint64_t> shard_records;
  uint64_t first_index = 0;
  ShuffleMode shuffle = ShuffleMode::kGlobal;
  uint64_t seed = 0;
  uint64_t world_size = 1;
  // kBlock: shards per shuffle window (>= 1).
  uint64_t block_shards = 4;
};

// ceil(total / world_size): samples each rank gets per epoch, padding included.
uint64_t RankShareSize(uint64_t total_records, uint64_t world_size);

// The permutation of step 1: every record index exactly once. O(N) time and memory.
std::vector<uint64_t> EpochPermutation(const OrderSpec& spec, uint64_t epoch);

// A validated spec plus the per-rank slicing (steps 2 and 3).
class SampleOrder {
 public:
  // InvalidArgument for zero records, world_size 0, block_shards 0.
  static Result<SampleOrder> Create(OrderSpec spec);

  const OrderSpec& spec() const { return spec_; }
  uint64_t total_records() const { return total_; }
  // Samples per rank per epoch (padding included); equal on all ranks.
  uint64_t share_size() const { return RankShareSize(total_, spec_.world_size); }
  // Records repeated as padding in each epoch (share_size() * world_size - total_records()).
  uint64_t padding() const { return share_size() * spec_.world_size - total_; }

  // Rank's samples for the epoch from position `from` on (0 <= from <= share_size()): the whole
  // share for from == 0, the remaining sequence after a resume otherwise. InvalidArgument for a
  // bad rank or position.
  Result<std::vector<uint64_t>> RankOrder(uint64_t epoch, uint64_t rank, uint64_t from = 0) const;

 private:
  explicit SampleOrder(OrderSpec spec, uint64_t total) : spec_(std::move(spec)), total_(total) {}
  OrderSpec spec_;
  uint64_t total_ = 0;
};

}  // namespace tilestage
