// tilestage bench staging: "should I stage?" on the user's own store and file systems. Measures
// staging (cold source), an epoch in place and one from node-local storage with their data
// stalls, and answers for the requested epochs (bench/e2e/staging_bench.h); optionally under
// mpirun, and with `bench model`'s prediction at N nodes.
#include <tbb/global_control.h>

#include <iostream>
#include <memory>

#include "bench/e2e/model.h"
#include "bench/e2e/staging_bench.h"
#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_env.h"
#include "tools/cli/command.h"
#include "tools/cli/train_options.h"

namespace tilestage::cli {
namespace {

struct StagingArgs {
  bench::StagingBenchOptions options;
  std::string nodes;  // "1,8,64" or "1..1024"
  std::string fs_aggregate, fs_node, local_read, local_write;
  std::string train;  // tilestage train's options, as one string
  bool json = false;
};

// A bandwidth flag: empty keeps 0 (measured).
Status ParseBandwidth(const std::string& flag, const std::string& text, double* bytes_per_s) {
  if (text.empty()) return Status::Ok();
  auto parsed = bench::ParseBytes(text);
  if (!parsed.ok() || !(*parsed > 0))
    return InvalidArgument(flag, " '", text, "' must be a positive rate such as 2.5GB/s");
  *bytes_per_s = *parsed;
  return Status::Ok();
}

Status RunStaging(StagingArgs args, Communicator& world) {
  bench::StagingBenchOptions& o = args.options;
  if (!args.train.empty()) {
    TS_ASSIGN_OR_RETURN(o.train, ParseTrainArgs("--train", args.train));
  }
  if (!args.nodes.empty()) {
    TS_ASSIGN_OR_RETURN(o.model_nodes, bench::ParseNodeList(args.nodes));
  }
  TS_RETURN_IF_ERROR(
      ParseBandwidth("--fs-aggregate", args.fs_aggregate, &o.fs_aggregate_bytes_per_s));
  TS_RETURN_IF_ERROR(ParseBandwidth("--fs-node", args.fs_node, &o.fs_node_bytes_per_s));
  TS_RETURN_IF_ERROR(ParseBandwidth("--local-read", args.local_read, &o.local_read_bytes_per_s));
  TS_RETURN_IF_ERROR(ParseBandwidth("--local-write", args.local_write, &o.local_write_bytes_per_s));
  TS_ASSIGN_OR_RETURN(const bench::StagingBench result, bench::RunStagingBench(world, o));
  if (world.rank() != 0) return Status::Ok();
  if (args.json) {
    std::cout << result.ToJson().dump(2) << "\n";
  } else {
    std::cout << bench::FormatStagingBench(result);
  }
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<StagingArgs>();
  bench::StagingBenchOptions& o = args->options;
  o.out = "bench_staging";
  CLI::App* cmd = group->add_subcommand(
      "staging",
      "Should I stage? Measures staging, an epoch in place (cold) and one from node-local "
      "storage with their data stalls, and answers for the requested epochs (under mpirun too)");
  cmd->add_option("--store", o.store, "Source store on the shared file system")->required();
  cmd->add_option("--node-local", o.node_local,
                  "Node-local directory ({node} is replaced by the node number); the copy goes "
                  "to its subfolder tilestage_bench_staging, replaced on each run")
      ->required();
  cmd->add_option("--out", o.out, "Folder for results.json, staged.mllog and in_place.mllog")
      ->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "Epochs of the training run to answer for")
      ->capture_default_str();
  cmd->add_option("--compute-ms", o.compute_ms,
                  "Training step per batch on each rank, emulated by a sleep (as DLIO does)")
      ->capture_default_str();
  cmd->add_option("--train", args->train,
                  "The real training step instead of --compute-ms: tilestage train's options as "
                  "one string, e.g. \"--model vit-mae --preset tiny --batch 256\" (the store, "
                  "epochs and outputs are set by bench staging)");
  cmd->add_option("--batch", o.batch,
                  "Samples per batch on each rank (with --train: its batch "
                  "over the ranks)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "Loader and stager TBB threads per rank (0 = all)");
  cmd->add_option("--seed", o.seed, "Shuffle seed")->capture_default_str();
  cmd->add_flag("--keep-staged", o.keep_staged, "Keep the staged copy after the run");
  cmd->add_option("--nodes", args->nodes,
                  "Also predict with bench model at these node counts (\"1,8,64\" or \"1..1024\"; "
                  "needs --compute-ms or --train)");
  cmd->add_option("--fs-aggregate", args->fs_aggregate,
                  "Model: file-system aggregate bandwidth (default: the per-node rate measured "
                  "here times the nodes of this run)");
  cmd->add_option("--fs-node", args->fs_node,
                  "Model: one node's file-system bandwidth (default: the stager's rate here)");
  cmd->add_option("--local-read", args->local_read,
                  "Model: node-local read bandwidth (default: a raw cold read here)");
  cmd->add_option("--local-write", args->local_write,
                  "Model: node-local write bandwidth (default: the stager's rate here)");
  cmd->add_flag("--json", args->json, "Print the results document instead of the table");
  cmd->callback([args, exit_code] {
    auto mpi = MpiSession::Start(MpiSession::When::kUnderLauncher);
    if (!mpi.ok()) {
      *exit_code = Report(mpi.status());
      return;
    }
    std::unique_ptr<tbb::global_control> threads;
    if (args->options.threads > 0) {
      threads = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      args->options.threads);
    }
    auto world = NewWorldCommunicator();
    if (!world.ok()) {
      *exit_code = Report(world.status());
      return;
    }
    const Status status = RunStaging(*args, **world);
    // Every rank has the same status; one message is enough.
    *exit_code = (*world)->rank() == 0 ? Report(status) : status.ok() ? 0 : 1;
  });
});

}  // namespace
}  // namespace tilestage::cli
