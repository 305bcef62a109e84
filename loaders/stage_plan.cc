#include "loaders/stage_plan.h"

#include <algorithm>
#include <numeric>

namespace tilestage {

std::vector<std::vector<size_t>> BalanceShards(const std::vector<uint64_t>& shard_bytes,
                                               int members) {
  std::vector<std::vector<size_t>> out(static_cast<size_t>(std::max(members, 1)));
  std::vector<size_t> by_size(shard_bytes.size());
  std::iota(by_size.begin(), by_size.end(), size_t{0});
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](size_t a, size_t b) { return shard_bytes[a] > shard_bytes[b]; });
  std::vector<uint64_t> load(out.size(), 0);
  for (size_t s : by_size) {
    const size_t m = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    out[m].push_back(s);
    load[m] += shard_bytes[s];
  }
  for (auto& list : out) std::sort(list.begin(), list.end());
  return out;
}

Result<StagePlan> MakeStagePlan(const std::vector<uint64_t>& shard_bytes, int nodes, int group) {
  if (nodes < 1) return InvalidArgument("stage plan needs at least one node, got ", nodes);
  if (group < 1 || group > nodes || nodes % group != 0)
    return InvalidArgument("group size ", group, " must divide the ", nodes,
                           " nodes (each group of nodes holds one full copy)");
  StagePlan plan;
  plan.nodes = nodes;
  plan.group = group;
  plan.shards_of_member = BalanceShards(shard_bytes, group);
  return plan;
}

std::vector<std::vector<TransferChunk>> ScheduleReads(const std::vector<size_t>& shards,
                                                      const std::vector<uint64_t>& shard_bytes,
                                                      int replicas, uint64_t chunk_bytes) {
  std::vector<std::vector<TransferChunk>> out(static_cast<size_t>(std::max(replicas, 1)));
  chunk_bytes = std::max<uint64_t>(chunk_bytes, 1);
  for (size_t k = 0; k < shards.size(); ++k) {
    auto& list = out[k % out.size()];
    const size_t s = shards[k];
    const uint64_t size = shard_bytes[s];
    uint64_t offset = 0;
    do {
      const uint64_t n = std::min(chunk_bytes, size - offset);
      list.push_back({s, offset, n});
      offset += n;
    } while (offset < size);
  }
  return out;
}

}  // namespace tilestage
