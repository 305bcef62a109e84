#include "loaders/stage_plan.h"

#include <algorithm>
#include <numeric>

#include "tiling/checksum.h"

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

std::string StoreFingerprint(const Manifest& manifest) {
  const nlohmann::json& staging = manifest.attrs.value("staging", nlohmann::json::object());
  if (staging.is_object() && staging.contains("source_fingerprint") &&
      staging["source_fingerprint"].is_string())
    return staging["source_fingerprint"].get<std::string>();
  std::string text;
  for (const ShardEntry& s : manifest.shards)
    text += StrCat(s.file, "\n", s.records, "\n", s.hash, "\n");
  return HashToHex(Hash64({reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
}

Status CheckStagedShare(const Manifest& manifest, const std::string& store_dir, int job_nodes) {
  const nlohmann::json& staging = manifest.attrs.value("staging", nlohmann::json::object());
  if (!staging.is_object() || staging.value("mode", "") != "partition") return Status::Ok();
  const int nodes = staging.value("nodes", 0);
  const int group = staging.value("group", nodes);
  if (group <= 1 || nodes == job_nodes) return Status::Ok();  // a full copy, or the same job
  // Restage with the same copies-per-job layout where it still fits, else one copy over all.
  const bool keep_group = group < nodes && job_nodes % group == 0;
  const std::string to = staging.value("to", store_dir);
  return FailedPrecondition(
      "store ", store_dir, " is partition-staged for ", nodes, " nodes (node ",
      staging.value("node", 0), " holds ", manifest.shards.size(), " of the ",
      staging.value("source_shards", uint64_t{0}), " shards) but this job runs on ", job_nodes,
      " node", job_nodes == 1 ? "" : "s", ", so its nodes would miss shards. Restage (copies only ",
      "the shards each node is missing): mpirun -np ", job_nodes,
      " --map-by ppr:1:node tilestage stage --from ", staging.value("source", "<source store>"),
      " --to ", to, " --mode partition", keep_group ? StrCat(" --group ", group) : std::string());
}

}  // namespace tilestage
