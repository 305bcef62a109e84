// Stager: copies a tile store to node-local storage under MPI (DESIGN.md §4).
//
// Ranks on one node (Communicator::SplitByNode) share one copy; the node's
// lowest rank (its leader) does the I/O. The plan (stage_plan.h) gives each node its shards:
// partition = a disjoint, balanced share per node (or per node within groups of --group nodes);
// replicate = every shard on every node. Each shard is read from the source by one node of its
// replica set and redistributed with an allgather in rounds of at most chunk_bytes (<= 1 GiB)
// per node, so every byte leaves the source once. Reads are TBB-parallel in large pieces
// (optionally O_DIRECT), writes of different shards run in parallel and overlap the next round's
// read; every shard's XXH3 hash is checked against the source manifest as it lands, and a shard is
// published (atomic rename) only when it matches: a corrupt source shard is named in the error and
// no copy of it is left behind. Shards already present and intact are skipped (resume); stale
// temporary files of an interrupted run are removed; free space is checked (and agreed by all
// nodes) before anything is written or removed. The destination is a valid store whose manifest
// lists the shards that node holds, written last.
//
// Thread-safety: StageStore is collective over `comm`: every rank calls it, from one thread per
// process (the communicator is called only from that thread; TBB threads do the I/O).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tiling/comm/communicator.h"
#include "tiling/mllog.h"
#include "tiling/status.h"
#include "tiling/storage.h"

namespace tilestage {

enum class StageMode { kPartition, kReplicate };
Result<StageMode> ParseStageMode(const std::string& text);
const char* StageModeName(StageMode mode);

inline constexpr uint64_t kMaxStageChunkBytes = 1ull << 30;

struct StageOptions {
  std::string from;  // source store directory
  // Destination directory per node; "{node}" is replaced by the node number (needed when several
  // simulated nodes share one host).
  std::string to;
  StageMode mode = StageMode::kPartition;
  int group = 0;  // partition: nodes per full copy (0 = all nodes); replicate needs 0 or 1
  bool direct_io = false;  // O_DIRECT reads and writes where the file system allows it
  // Make each shard and the manifest durable before publishing them (fsync; a copy between two
  // local directories syncs the file system once for all its shards), and their directory after.
  // Off: the renames still make them appear only when complete, but a power loss may lose them;
  // for scratch space wiped per job.
  bool sync = true;
  int threads = 0;         // TBB threads per node leader (0 = TBB default)
  uint64_t chunk_bytes = 64ull << 20;  // per node and round, at most kMaxStageChunkBytes
  // 0: nodes are detected as the ranks sharing memory (SplitByNode). N > 0: every N consecutive ranks form one
  // simulated node (tests and single-host benchmarks of the multi-node paths).
  int ranks_per_node = 0;
  std::shared_ptr<Storage> source_storage;  // default LocalStorage()
  std::shared_ptr<Storage> dest_storage;    // default LocalStorage(); ignored for direct I/O
};

struct NodeStageReport {
  int node = 0;
  std::string dest;
  uint64_t shards_held = 0;
  uint64_t shards_written = 0;
  uint64_t shards_skipped = 0;  // already present and intact
  uint64_t bytes_held = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_read_from_source = 0;  // by this node, for the whole replica set
  double seconds = 0;
  bool direct_io_read = false;  // O_DIRECT actually used
  bool direct_io_write = false;
  int group = 0;              // nodes per full copy
  uint64_t store_bytes = 0;   // of the whole source store
  double gb_per_s() const { return seconds > 0 ? bytes_written / seconds / 1e9 : 0.0; }
  nlohmann::json ToJson() const;
  static NodeStageReport FromJson(const nlohmann::json& j);
};

struct StageReport {
  std::string mode;
  int ranks = 0;
  int nodes = 0;
  int group = 0;
  uint64_t store_bytes = 0;  // of the whole source store
  uint64_t start_ms = 0, stop_ms = 0;  // wall clock, for MLLOG lines
  double seconds = 0;                  // job wall time, barrier to barrier
  // Every node on rank 0 of comm; this rank's node on other leaders; empty elsewhere.
  std::vector<NodeStageReport> node_reports;
  uint64_t bytes_written() const;
  uint64_t bytes_read_from_source() const;
  double aggregate_gb_per_s() const { return seconds > 0 ? bytes_written() / seconds / 1e9 : 0; }
  nlohmann::json ToJson() const;
};

// The destination of node `node`: the pattern with every "{node}" replaced by the number. Nodes
// are numbered by their leaders' (lowest) ranks, in order.
std::string StageDestination(const std::string& pattern, int node);

// Collective. On error every rank returns the same Status (the first failing rank's, naming the
// shard or path and the rank).
Result<StageReport> StageStore(Communicator& comm, const StageOptions& options);

// The MLPerf HPC staging events of a finished staging (staging_start, staging_stop and a
// staging_duration point event in seconds) at the report's wall-clock times, as `tilestage stage`
// and `tilestage bench staging` log them; "file" and "lineno" name the caller, as mllog's
// get_caller does. Fails only as MakeMlEvent does.
Result<std::vector<MlEvent>> StagingMlEvents(const StageReport& report, const std::string& source,
                                             SourceLocation where = SourceLocation::current());

}  // namespace tilestage
