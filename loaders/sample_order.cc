#include "loaders/sample_order.h"

#include <numeric>

#include "tiling/synth.h"

namespace tilestage {
namespace {

// Streams of the counter-based generator, so the draws of different purposes never collide.
constexpr uint64_t kShardShuffleStream = 0x5348415244ull;   // "SHARD"
constexpr uint64_t kRecordShuffleStream = 0x5245434f52ull;  // "RECOR"

// Uniform integer in [0, bound) from a 64-bit hash (Lemire's multiply-shift; the bias is below
// bound / 2^64, far under anything a shuffle test could see).
uint64_t Bounded(uint64_t hash, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(hash) * bound) >> 64);
}

// Fisher-Yates over [first, last) with draws keyed by (key, stream): a pure function.
template <typename It>
void KeyedShuffle(It first, It last, uint64_t key, uint64_t stream) {
  const uint64_t n = static_cast<uint64_t>(last - first);
  for (uint64_t i = n; i > 1; --i) {
    const uint64_t j = Bounded(CounterHash(key, stream, i), i);
    std::swap(first[i - 1], first[j]);
  }
}

uint64_t EpochKey(uint64_t seed, uint64_t epoch) { return CounterHash(seed, 0x45504f4348, epoch); }

}  // namespace

const char* ShuffleModeName(ShuffleMode mode) {
  switch (mode) {
    case ShuffleMode::kNone: return "none";
    case ShuffleMode::kGlobal: return "global";
    case ShuffleMode::kBlock: return "block";
  }
  return "?";
}

Result<ShuffleMode> ParseShuffleMode(const std::string& text) {
  if (text == "none") return ShuffleMode::kNone;
  if (text == "global") return ShuffleMode::kGlobal;
  if (text == "block") return ShuffleMode::kBlock;
  return InvalidArgument("shuffle mode '", text, "' is not one of none, global, block");
}

uint64_t RankShareSize(uint64_t total_records, uint64_t world_size) {
  if (world_size == 0) return 0;
  return (total_records + world_size - 1) / world_size;
}

std::vector<uint64_t> EpochPermutation(const OrderSpec& spec, uint64_t epoch) {
  const uint64_t total =
      std::accumulate(spec.shard_records.begin(), spec.shard_records.end(), uint64_t{0});
  std::vector<uint64_t> order(total);
  const uint64_t key = EpochKey(spec.seed, epoch);
  switch (spec.shuffle) {
    case ShuffleMode::kNone:
      std::iota(order.begin(), order.end(), spec.first_index);
      break;
    case ShuffleMode::kGlobal:
      std::iota(order.begin(), order.end(), spec.first_index);
      KeyedShuffle(order.begin(), order.end(), key, kRecordShuffleStream);
      break;
    case ShuffleMode::kBlock: {
      std::vector<uint64_t> shard_first(spec.shard_records.size() + 1, spec.first_index);
      for (size_t s = 0; s < spec.shard_records.size(); ++s)
        shard_first[s + 1] = shard_first[s] + spec.shard_records[s];
      std::vector<size_t> shards(spec.shard_records.size());
      std::iota(shards.begin(), shards.end(), size_t{0});
      KeyedShuffle(shards.begin(), shards.end(), key, kShardShuffleStream);
      const uint64_t window = std::max<uint64_t>(spec.block_shards, 1);
      auto out = order.begin();
      for (size_t w = 0; w < shards.size(); w += window) {
        auto window_begin = out;
        for (size_t k = w; k < std::min<size_t>(w + window, shards.size()); ++k) {
          const size_t s = shards[k];
          std::iota(out, out + static_cast<ptrdiff_t>(spec.shard_records[s]), shard_first[s]);
          out += static_cast<ptrdiff_t>(spec.shard_records[s]);
        }
        KeyedShuffle(window_begin, out, CounterHash(key, kRecordShuffleStream, w),
                     kRecordShuffleStream);
      }
      break;
    }
  }
  return order;
}

Result<SampleOrder> SampleOrder::Create(OrderSpec spec) {
  if (spec.world_size == 0) return InvalidArgument("world size must be at least 1");
  if (spec.block_shards == 0) return InvalidArgument("block shuffle window must be >= 1 shard");
  const uint64_t total =
      std::accumulate(spec.shard_records.begin(), spec.shard_records.end(), uint64_t{0});
  if (total == 0) return InvalidArgument("no samples to order (zero records selected)");
  return SampleOrder(std::move(spec), total);
}

Result<std::vector<uint64_t>> SampleOrder::RankOrder(uint64_t epoch, uint64_t rank,
                                                     uint64_t from) const {
  if (rank >= spec_.world_size)
    return InvalidArgument("rank ", rank, " out of range for world size ", spec_.world_size);
  const uint64_t share = share_size();
  if (from > share)
    return InvalidArgument("resume position ", from, " is past the end of the rank's share of ",
                           share, " samples");
  const std::vector<uint64_t> perm = EpochPermutation(spec_, epoch);
  std::vector<uint64_t> out;
  out.reserve(share - from);
  for (uint64_t k = rank * share + from; k < (rank + 1) * share; ++k)
    out.push_back(perm[k % total_]);  // k >= total: padding repeats the permutation's start
  return out;
}

}  // namespace tilestage
