// tilestage stage: copy a store to node-local storage under MPI (partition or replicate), with
// verification, resume and MLPerf-style :::MLLOG staging events.
#include <cstdio>
#include <iostream>

#include "loaders/stager.h"
#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_env.h"
#include "tiling/mllog.h"
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

// The MLPerf HPC staging events of a finished staging, as lines.
Result<std::vector<std::string>> StagingMllog(const StageReport& r, const std::string& source) {
  TS_ASSIGN_OR_RETURN(const std::vector<MlEvent> events, StagingMlEvents(r, source));
  std::vector<std::string> lines;
  for (const MlEvent& event : events) {
    TS_ASSIGN_OR_RETURN(std::string line, FormatMlLogLine(event));
    lines.push_back(std::move(line));
  }
  return lines;
}

Status RunStage(const StageArgs& args, Communicator& comm) {
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
  TS_ASSIGN_OR_RETURN(StageReport r, StageStore(comm, o));
  if (comm.rank() != 0) return Status::Ok();

  TS_ASSIGN_OR_RETURN(const std::vector<std::string> mllog, StagingMllog(r, args.from));
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
                "Skip fsync before publishing each shard and the manifest (scratch space: "
                "files still appear only when complete, but a power loss may drop them)");
  cmd->add_option("--threads", args->threads, "TBB threads per node (0 = all cores)");
  cmd->add_option("--chunk", args->chunk, "Bytes per node per MPI round (<= 1GiB)")
      ->capture_default_str();
  cmd->add_option("--ranks-per-node", args->ranks_per_node,
                  "Treat every N consecutive ranks as one node (testing multi-node staging on "
                  "one host); default: detect nodes with MPI_COMM_TYPE_SHARED");
  cmd->add_flag("--json", args->json, "Print the report as JSON (MLLOG lines go to stderr)");
  cmd->callback([args, exit_code] {
    // Outside a launcher one process needs no MPI: starting it would cost ~0.03 s of a command
    // that stages a 100 MB store in 0.06 s.
    auto mpi = MpiSession::Start(MpiSession::When::kUnderLauncher);
    if (!mpi.ok()) {
      *exit_code = Report(mpi.status());
      return;
    }
    auto comm = NewWorldCommunicator();
    if (!comm.ok()) {
      *exit_code = Report(comm.status());
      return;
    }
    const Status status = RunStage(*args, **comm);
    // Every rank has the same status; one message is enough.
    *exit_code = (*comm)->rank() == 0                        ? Report(status)
                 : status.ok()                               ? 0
                 : status.code() == StatusCode::kInvalidArgument ? 2
                                                                 : 1;
  });
});

}  // namespace
}  // namespace tilestage::cli
