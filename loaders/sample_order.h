// Sample ordering: which global record indices each global batch of an epoch holds, and which
// part of it each rank takes.
//
// Everything here is a pure function of (seed, epoch, shard sizes, global batch size, shuffle
// mode and its parameters): no I/O, no MPI, no threads, and not the world size. So the order is
// the same whatever the thread count, and a job stopped on N ranks continues on M ranks with the
// same sequence of global batches (elastic determinism, as Mosaic Streaming offers for a fixed
// global batch). The loader and the trainer's checkpoints rely on it: a position is (epoch,
// global samples consumed), and a resumed run recomputes the order and skips the batches already
// consumed without reading them.
//
// Order of one epoch with N records and global batch G (G <= N):
//   1. The records are laid out in P parts ("canonical parts", Mosaic's canonical nodes):
//      kNone: one part, store order. kGlobal: one part, a uniform shuffle of all records.
//      kBlock: the shards are shuffled, their records concatenated in that shard order and cut
//      into P = min(block_parts, G) contiguous parts; inside each part the records are shuffled
//      within windows of `block_shards` consecutive shards only, so a reader of one part touches
//      one window of shards at a time (Mosaic's py1b/py1br).
//   2. Each global batch takes g_c = floor(G (c+1) / P) - floor(G c / P) consecutive samples of
//      part c, parts in order. Part c holds n_c = floor(N s_(c+1) / G) - floor(N s_c / G) records
//      (s_c = floor(G c / P)), i.e. its share of N in proportion to its slots.
//   3. The epoch has K = ceil(N / G) global batches, all full: part c is padded to K g_c samples
//      by repeating its own sequence from the start (padding stays inside the part, so it keeps
//      the part's locality; K G - N samples are padding in all, whatever the world size).
//      With drop_last, K = floor(N / G) and each part's tail beyond K g_c is dropped instead.
//   4. Rank r of W (W must divide G) takes the r-th of W equal contiguous parts of each global
//      batch: samples [r G/W, (r+1) G/W). Every rank gets K batches of G/W samples.
// Before padding, every record appears exactly once per epoch.
//
// Locality of kBlock. Rank r's slice lies inside parts r P/W .. (r+1) P/W - 1 when W divides P,
// inside part r / (W/P) when P divides W, and straddles two parts otherwise: a rank reads from
// max(1, P/W) parts at once (+1 at a straddle), each one window of block_shards shards at a time.
// So P is the world size the order is tuned for (Mosaic picks its canonical nodes the same way):
// from W = P up, each rank reads its own window of shards; below P, a rank interleaves P/W
// windows, the cost of keeping the order independent of W. Computed once (not measured) for one
// epoch of a store of 1024 shards of 256 records, G = 512, block_shards = 4, block_parts = 64,
// by walking RankOrder of rank 0 (the global shuffle beside it):
//
//      W | parts read  | shards touched per step | shards open at once | shards read per epoch
//        | at once     |   block   (global)      |   block   (global)  |   block   (global)
//     ---+-------------+-------------------------+---------------------+----------------------
//      1 |     64      |   231     (404)         |   256     (1024)    |   1024    (1024)
//      2 |     32      |   115     (227)         |   128     (1024)    |    512    (1024)
//      8 |      8      |    29      (62)         |    32     (1024)    |    128    (1024)
//     64 |      1      |   3.6     (8.0)         |     4      (783)    |     16    (1010)
//
// ("open" = read between its first and last record of the epoch: the shards a page cache or a
// reader must hold at once.) At W = 1 the block order keeps a quarter of the store open (the old
// W-dependent block order kept 4 shards); a job that stays small can lower block_parts.
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
  // Samples of one step over all ranks (>= 1, <= the record count).
  uint64_t global_batch = 1;
  // kBlock: shards per shuffle window (>= 1) and canonical parts (>= 1; at most G are used).
  uint64_t block_shards = 4;
  uint64_t block_parts = 64;
  // Drop each part's tail instead of padding (every batch full either way).
  bool drop_last = false;
};

// The epoch's records laid out as in steps 1-2 above, before padding: every record exactly once,
// the parts one after another. O(N) time and memory.
std::vector<uint64_t> EpochPermutation(const OrderSpec& spec, uint64_t epoch);

class SampleOrder {
 public:
  // InvalidArgument for zero records, a global batch of 0 or larger than the records,
  // block_shards or block_parts of 0.
  static Result<SampleOrder> Create(OrderSpec spec);

  const OrderSpec& spec() const { return spec_; }
  uint64_t total_records() const { return total_; }
  uint64_t global_batch() const { return spec_.global_batch; }
  // K, the same for every world size.
  uint64_t batches_per_epoch() const { return batches_; }
  // K * G, padding included.
  uint64_t samples_per_epoch() const { return batches_ * spec_.global_batch; }
  // Repeated samples per epoch (0 with drop_last).
  uint64_t padding() const;

  // InvalidArgument naming G and W unless 1 <= world and world divides the global batch.
  Status CheckWorld(uint64_t world) const;

  // The epoch's global batches back to back: entries [k G, (k+1) G) are global batch k, ordered
  // so that rank r of W takes entries [k G + r G/W, k G + (r+1) G/W).
  std::vector<uint64_t> EpochBatches(uint64_t epoch) const;

  // The samples rank `rank` of `world` visits in the epoch from global batch `first_batch` on
  // (0 <= first_batch <= K): its part of each batch, batch after batch. InvalidArgument for a bad
  // world, rank or batch.
  Result<std::vector<uint64_t>> RankOrder(uint64_t epoch, uint64_t rank, uint64_t world,
                                          uint64_t first_batch = 0) const;

 private:
  SampleOrder(OrderSpec spec, uint64_t total, uint64_t batches)
      : spec_(std::move(spec)), total_(total), batches_(batches) {}
  OrderSpec spec_;
  uint64_t total_ = 0;
  uint64_t batches_ = 0;
};

}  // namespace tilestage
