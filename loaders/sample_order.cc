#include "loaders/sample_order.h"

#include <algorithm>
#include <numeric>

#include "tiling/synth.h"

namespace tilestage {
namespace {

// Streams of the counter-based generator, so the draws of different purposes never collide.
constexpr uint64_t kShardShuffleStream = 0x5348415244ull;   // "SHARD"
constexpr uint64_t kRecordShuffleStream = 0x5245434f52ull;  // "RECOR"
constexpr uint64_t kPartStream = 0x50415254ull;             // "PART"

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

uint64_t TotalRecords(const OrderSpec& spec) {
  return std::accumulate(spec.shard_records.begin(), spec.shard_records.end(), uint64_t{0});
}

// floor(a * b / c) without overflow.
uint64_t MulDiv(uint64_t a, uint64_t b, uint64_t c) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b / c);
}

// Step 1-2's geometry: part c owns slots [slot[c], slot[c+1]) of every global batch and records
// [first[c], first[c+1]) of the epoch's layout.
struct Parts {
  std::vector<uint64_t> slot, first;
  size_t count() const { return slot.size() - 1; }
};

Parts MakeParts(const OrderSpec& spec, uint64_t total) {
  const uint64_t g = spec.global_batch;
  const uint64_t p = spec.shuffle == ShuffleMode::kBlock ? std::min(spec.block_parts, g) : 1;
  Parts parts;
  for (uint64_t c = 0; c <= p; ++c) {
    parts.slot.push_back(MulDiv(g, c, p));
    parts.first.push_back(MulDiv(total, parts.slot.back(), g));
  }
  return parts;
}

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

std::vector<uint64_t> EpochPermutation(const OrderSpec& spec, uint64_t epoch) {
  const uint64_t total = TotalRecords(spec);
  std::vector<uint64_t> order(total);
  const uint64_t key = EpochKey(spec.seed, epoch);
  if (spec.shuffle != ShuffleMode::kBlock) {
    std::iota(order.begin(), order.end(), spec.first_index);
    if (spec.shuffle == ShuffleMode::kGlobal)
      KeyedShuffle(order.begin(), order.end(), key, kRecordShuffleStream);
    return order;
  }
  // Shards in shuffled order, records concatenated; `starts` marks where each shard begins.
  std::vector<uint64_t> shard_first(spec.shard_records.size() + 1, spec.first_index);
  for (size_t s = 0; s < spec.shard_records.size(); ++s)
    shard_first[s + 1] = shard_first[s] + spec.shard_records[s];
  std::vector<size_t> shards(spec.shard_records.size());
  std::iota(shards.begin(), shards.end(), size_t{0});
  KeyedShuffle(shards.begin(), shards.end(), key, kShardShuffleStream);
  std::vector<uint64_t> starts;
  uint64_t at = 0;
  for (size_t s : shards) {
    if (spec.shard_records[s] == 0) continue;
    starts.push_back(at);
    std::iota(order.begin() + at, order.begin() + at + spec.shard_records[s], shard_first[s]);
    at += spec.shard_records[s];
  }
  starts.push_back(total);
  // Inside each part, windows of block_shards shard pieces (a shard cut by a part boundary
  // counts in both parts), each shuffled on its own.
  const Parts parts = MakeParts(spec, total);
  const uint64_t window = std::max<uint64_t>(spec.block_shards, 1);
  for (size_t c = 0; c < parts.count(); ++c) {
    const uint64_t lo = parts.first[c], hi = parts.first[c + 1];
    std::vector<uint64_t> cuts = {lo};  // piece boundaries inside [lo, hi)
    for (uint64_t s : starts)
      if (s > lo && s < hi) cuts.push_back(s);
    cuts.push_back(hi);
    const uint64_t part_key = CounterHash(key, kPartStream, c);
    for (size_t w = 0; w + 1 < cuts.size(); w += window) {
      const uint64_t end = cuts[std::min<size_t>(w + window, cuts.size() - 1)];
      KeyedShuffle(order.begin() + cuts[w], order.begin() + end, CounterHash(part_key, w, 0),
                   kRecordShuffleStream);
    }
  }
  return order;
}

Result<SampleOrder> SampleOrder::Create(OrderSpec spec) {
  if (spec.block_shards == 0) return InvalidArgument("block shuffle window must be >= 1 shard");
  if (spec.block_parts == 0) return InvalidArgument("block shuffle needs at least 1 part");
  const uint64_t total = TotalRecords(spec);
  if (total == 0) return InvalidArgument("no samples to order (zero records selected)");
  if (spec.global_batch == 0) return InvalidArgument("global batch must be at least 1");
  if (spec.global_batch > total)
    return InvalidArgument("global batch of ", spec.global_batch, " samples is larger than the ",
                           total, " records selected");
  const uint64_t g = spec.global_batch;
  const uint64_t batches = spec.drop_last ? total / g : (total + g - 1) / g;
  return SampleOrder(std::move(spec), total, batches);
}

uint64_t SampleOrder::padding() const { return spec_.drop_last ? 0 : samples_per_epoch() - total_; }

Status SampleOrder::CheckWorld(uint64_t world) const {
  if (world == 0 || spec_.global_batch % world != 0)
    return InvalidArgument("global batch of ", spec_.global_batch, " samples cannot be split ",
                           "evenly over ", world, " ranks: the number of ranks must divide it");
  return Status::Ok();
}

std::vector<uint64_t> SampleOrder::EpochBatches(uint64_t epoch) const {
  const std::vector<uint64_t> layout = EpochPermutation(spec_, epoch);
  const Parts parts = MakeParts(spec_, total_);
  const uint64_t g = spec_.global_batch;
  std::vector<uint64_t> out(batches_ * g);
  for (size_t c = 0; c < parts.count(); ++c) {
    const uint64_t slots = parts.slot[c + 1] - parts.slot[c];
    const uint64_t first = parts.first[c], n = parts.first[c + 1] - first;
    for (uint64_t k = 0; k < batches_; ++k)
      for (uint64_t j = 0; j < slots; ++j)  // i >= n: padding repeats the part from its start
        out[k * g + parts.slot[c] + j] = layout[first + (k * slots + j) % n];
  }
  return out;
}

Result<std::vector<uint64_t>> SampleOrder::RankOrder(uint64_t epoch, uint64_t rank, uint64_t world,
                                                     uint64_t first_batch) const {
  TS_RETURN_IF_ERROR(CheckWorld(world));
  if (rank >= world) return InvalidArgument("rank ", rank, " out of range for world size ", world);
  if (first_batch > batches_)
    return InvalidArgument("resume at global batch ", first_batch, " is past the end of the ",
                           batches_, " batches of an epoch");
  const std::vector<uint64_t> all = EpochBatches(epoch);
  const uint64_t g = spec_.global_batch, part = g / world;
  std::vector<uint64_t> out;
  out.reserve((batches_ - first_batch) * part);
  for (uint64_t k = first_batch; k < batches_; ++k) {
    const auto begin = all.begin() + static_cast<ptrdiff_t>(k * g + rank * part);
    out.insert(out.end(), begin, begin + static_cast<ptrdiff_t>(part));
  }
  return out;
}

}  // namespace tilestage
