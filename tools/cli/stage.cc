// tilestage stage: copy a store to node-local storage under MPI (partition or replicate), with
// verification, resume and MLPerf-style :::MLLOG staging events.
#include <mpi.h>

#include <cstdio>
#include <iostream>

#include "loaders/mllog.h"
#include "loaders/mpi_env.h"
#include "loaders/stager.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct StageArgs {
  std::string from, to;
  std::string mode = "partition";
  int group = 0;
  bool direct_io = false;
  bool no_sync = false;
  int threads = 0;
  std::string chunk = "64MiB";
  int ranks_per_node = 0;
  bool json = false;
};

Status RunStage(const StageArgs& args, int rank) {
  StageOptions o;
  o.from = args.from;
  o.to = args.to;
  TS_ASSIGN_OR_RETURN(o.mode, ParseStageMode(args.mode));
  o.group = args.group;
  o.direct_io = args.direct_io;
  o.sync = !args.no_sync;
  o.threads = args.threads;
  TS_ASSIGN_OR_RETURN(o.chunk_bytes, ParseByteSize(args.chunk));
  o.ranks_per_node = args.ranks_per_node;
  TS_ASSIGN_OR_RETURN(StageReport r, StageStore(MPI_COMM_WORLD, o));
  if (rank != 0) return Status::Ok();

  const nlohmann::json start_meta = {{"mode", r.mode}, {"nodes", r.nodes}, {"source", args.from}};
  const nlohmann::json stop_meta = {{"staged_bytes", r.bytes_written()}};
  const nlohmann::json duration_meta = {{"unit", "s"}};
  const std::string mllog[] = {
      TS_MLLOG(MllogEvent::kIntervalStart, "staging_start", nullptr, r.start_ms, start_meta),
      TS_MLLOG(MllogEvent::kIntervalEnd, "staging_stop", nullptr, r.stop_ms, stop_meta),
      TS_MLLOG(MllogEvent::kPointInTime, "staging_duration", r.seconds, r.stop_ms,
               duration_meta),
  };
  if (args.json) {
    nlohmann::json j = r.ToJson();
    j["source"] = args.from;
    j["mllog"] = nlohmann::json::array();
    for (const auto& line : mllog) j["mllog"].push_back(line);
    for (const auto& line : mllog) std::cerr << line << "\n";
    std::cout << j.dump(2) << "\n";
    return Status::Ok();
  }
  for (const auto& line : mllog) std::cout << line << "\n";
  std::printf("staged %s (%.1f MiB, mode %s, %d ranks on %d nodes, %d node(s) per copy)\n",
              args.from.c_str(), r.store_bytes / 1048576.0, r.mode.c_str(), r.ranks, r.nodes,
              r.group);
  std::printf("%-5s %-8s %-8s %-8s %12s %12s %9s %9s  %s\n", "node", "shards", "written",
              "skipped", "MiB written", "MiB read", "seconds", "GB/s", "destination");
  for (const auto& n : r.node_reports)
    std::printf("%-5d %-8llu %-8llu %-8llu %12.1f %12.1f %9.3f %9.3f  %s%s\n", n.node,
                static_cast<unsigned long long>(n.shards_held),
                static_cast<unsigned long long>(n.shards_written),
                static_cast<unsigned long long>(n.shards_skipped), n.bytes_written / 1048576.0,
                n.bytes_read_from_source / 1048576.0, n.seconds, n.gb_per_s(), n.dest.c_str(),
                n.direct_io_write ? " (O_DIRECT)" : "");
  std::printf("aggregate: %.1f MiB written, %.1f MiB read from the source, %.3f s, %.3f GB/s\n",
              r.bytes_written() / 1048576.0, r.bytes_read_from_source() / 1048576.0, r.seconds,
              r.aggregate_gb_per_s());
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto args = std::make_shared<StageArgs>();
  CLI::App* cmd = root.add_subcommand(
      "stage", "Copy a store to node-local storage under MPI (run with mpirun -np N)");
  cmd->add_option("--from", args->from, "Source store directory")->required();
  cmd->add_option("--to", args->to,
                  "Destination directory on each node ({node} is replaced by the node number)")
      ->required();
  cmd->add_option("--mode", args->mode, "partition (disjoint share per node) or replicate")
      ->capture_default_str();
  cmd->add_option("--group", args->group,
                  "partition: nodes per full copy (default: all nodes hold one copy)");
  cmd->add_flag("--direct-io", args->direct_io, "O_DIRECT reads and writes where supported");
  cmd->add_flag("--no-sync", args->no_sync,
                "Skip fsync before publishing each shard (scratch space: shards still appear "
                "only when complete, but a power loss may drop them)");
  cmd->add_option("--threads", args->threads, "TBB threads per node (0 = all cores)");
  cmd->add_option("--chunk", args->chunk, "Bytes per node per MPI round (<= 1GiB)")
      ->capture_default_str();
  cmd->add_option("--ranks-per-node", args->ranks_per_node,
                  "Treat every N consecutive ranks as one node (testing multi-node staging on "
                  "one host); default: detect nodes with MPI_COMM_TYPE_SHARED");
  cmd->add_flag("--json", args->json, "Print the report as JSON (MLLOG lines go to stderr)");
  cmd->callback([args, exit_code] {
    const bool mpi_started_here = InitMpiIfNeeded();
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const Status status = RunStage(*args, rank);
    // Every rank has the same status; one message is enough.
    *exit_code = rank == 0                ? Report(status)
                 : status.ok()              ? 0
                 : status.code() == StatusCode::kInvalidArgument ? 2
                                                                 : 1;
    if (mpi_started_here) MPI_Finalize();
  });
});

}  // namespace
}  // namespace tilestage::cli
