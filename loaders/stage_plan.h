// Stage plan: which node holds which shards, and which node reads each shard from the source.
// Pure functions of (shard sizes, node count, group size): no I/O, no MPI, so every rank computes
// the same plan without talking to the others, and the plan is unit-tested exhaustively.
//
// Nodes are numbered 0..nodes-1 and split into groups of `group` consecutive nodes; each group
// holds one full copy of the store, partitioned over its members (member = node % group).
// partition mode is group == nodes (one copy over all nodes); replicate is group == 1 (a copy on
// every node). Nodes with the same member index in different groups hold the same shards and form
// a "replica set": one of them reads each shard from the source and the set shares the bytes over
// MPI, so every byte is read from the source once across the job.
//
// Thread-safety: value types and free functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiling/manifest.h"
#include "tiling/status.h"

namespace tilestage {

// Balanced split of shards over `members`: largest shards first, each to the member with the
// fewest bytes so far (ties: lowest member). Each member's list is in increasing shard order.
std::vector<std::vector<size_t>> BalanceShards(const std::vector<uint64_t>& shard_bytes,
                                               int members);

struct StagePlan {
  int nodes = 1;
  int group = 1;  // nodes per full copy
  // shards_of_member[m]: shards held by every node with node % group == m.
  std::vector<std::vector<size_t>> shards_of_member;

  int member_of(int node) const { return node % group; }
  int group_of(int node) const { return node / group; }
  int replicas() const { return nodes / group; }  // nodes holding each shard
  const std::vector<size_t>& shards_of_node(int node) const {
    return shards_of_member[static_cast<size_t>(member_of(node))];
  }
};

// InvalidArgument unless 1 <= group <= nodes and group divides nodes.
Result<StagePlan> MakeStagePlan(const std::vector<uint64_t>& shard_bytes, int nodes, int group);

// One piece of the transfer: `bytes` bytes of `shard` at `offset`.
struct TransferChunk {
  size_t shard = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

// Reader schedule inside one replica set of `replicas` nodes: the k-th shard of `shards` is read
// by replica k % replicas, in chunks of at most chunk_bytes; result[r] is replica r's chunks in
// order. A shard of zero bytes still gets one empty chunk so it lands.
std::vector<std::vector<TransferChunk>> ScheduleReads(const std::vector<size_t>& shards,
                                                      const std::vector<uint64_t>& shard_bytes,
                                                      int replicas, uint64_t chunk_bytes);

// ------------------------------------------------------------------ staged stores
// The stager writes each node's copy as a store whose manifest lists the shards that node holds
// and records how it was staged in attrs.staging: {"mode", "node", "nodes", "group", "source",
// "to", "source_shards", "source_records", "source_fingerprint"}.

// Identity of a store's records: XXH3 (16 hex digits) of its shard list (file, records, hash);
// for a staged copy, the identity of the store it was staged from. So a store and each of its
// staged copies have the same identity, and a checkpoint can tell another store apart.
std::string StoreFingerprint(const Manifest& manifest);

// A partition-staged store holds only its node's share of the shards (1 / group of them), so it
// serves exactly the node count it was staged for. FailedPrecondition when `manifest` (read from
// store_dir) is such a share and job_nodes differs, naming both counts and giving the
// `tilestage stage` command that restages for job_nodes nodes (it copies only the shards a node
// is missing). Ok for unstaged stores, replicated ones and full copies.
Status CheckStagedShare(const Manifest& manifest, const std::string& store_dir, int job_nodes);

}  // namespace tilestage
