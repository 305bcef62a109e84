// tilestage load: stream a store through the TBB loader (optionally under mpirun, one share per
// rank) and report throughput, per-stage busy time, queue occupancy, the data stall and, with
// --compute-ms emulating a training step, AU% = compute time / wall time.
#include <cstdio>
#include <iostream>

#include "loaders/load_job.h"
#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_env.h"
#include "tiling/mllog.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct LoadArgs {
  std::string store;
  int64_t batch = 32;
  uint64_t epochs = 1;
  std::string shuffle = "global";
  uint64_t seed = 0;
  int threads = 0;
  int prefetch = 4;
  std::string mem_budget = "1GiB";
  double compute_ms = 0;
  bool read_batches = false;
  std::string on_corrupt = "fail";
  bool augment = false;
  int64_t crop = 0;
  uint64_t block_shards = 4;
  uint64_t block_parts = 64;
  bool drop_last = false;
  bool node_local = false;
  uint64_t start_epoch = 0, start_sample = 0;
  bool json = false;
};

Result<LoadJobOptions> MakeOptions(const LoadArgs& args) {
  LoadJobOptions job;
  job.store = args.store;
  job.epochs = args.epochs;
  job.compute_ms = args.compute_ms;
  job.read_batches = args.read_batches;
  job.node_local = args.node_local;
  LoaderOptions& o = job.loader;
  o.batch_size = args.batch;
  TS_ASSIGN_OR_RETURN(o.shuffle, ParseShuffleMode(args.shuffle));
  o.seed = args.seed;
  o.threads = args.threads;
  o.prefetch = args.prefetch;
  TS_ASSIGN_OR_RETURN(o.mem_budget_bytes, ParseByteSize(args.mem_budget));
  if (args.on_corrupt != "fail" && args.on_corrupt != "skip")
    return InvalidArgument("--on-corrupt '", args.on_corrupt, "' is not one of fail, skip");
  o.skip_corrupt = args.on_corrupt == "skip";
  o.augment = args.augment;
  o.crop_h = o.crop_w = args.crop;
  o.block_shards = args.block_shards;
  o.block_parts = args.block_parts;
  o.drop_last = args.drop_last;
  o.start = {args.start_epoch, args.start_sample};
  return job;
}

void PrintText(const LoadArgs& args, const nlohmann::json& report) {
  std::printf("loaded %s: %llu samples in %.3f s over %d rank(s): %.1f samples/s",
              args.store.c_str(), static_cast<unsigned long long>(report["samples"].get<uint64_t>()),
              report["wall_s"].get<double>(), report["ranks"].get<int>(),
              report["samples_per_s"].get<double>());
  // AU (compute time / wall time) only means something with an emulated step to measure.
  if (args.compute_ms > 0)
    std::printf(", AU %.1f%%\n", report["au_percent"].get<double>());
  else
    std::printf(" (no AU: pass --compute-ms to emulate a training step)\n");
  for (const auto& r : report["per_rank"]) {
    std::printf("rank %d: %llu batches, %.1f samples/s, %.1f MB/s stored, stall %.3f ms/batch "
                "(max %.3f), queue %.2f/%d, %llu in flight, <= %.1f MiB, %d threads",
                r["rank"].get<int>(), static_cast<unsigned long long>(r["batches"].get<uint64_t>()),
                r["samples_per_s"].get<double>(), r["stored_mb_per_s"].get<double>(),
                r["wait_ms_per_batch"].get<double>(), r["wait_ms_max"].get<double>(),
                r["queue_occupancy_mean"].get<double>(), r["queue_capacity"].get<int>(),
                static_cast<unsigned long long>(r["tokens_in_flight"].get<uint64_t>()),
                r["memory_bound_bytes"].get<uint64_t>() / 1048576.0, r["threads"].get<int>());
    if (r["corrupt_skipped"].get<uint64_t>() > 0)
      std::printf(", %llu corrupt skipped",
                  static_cast<unsigned long long>(r["corrupt_skipped"].get<uint64_t>()));
    std::printf("\n  busy s:");
    for (auto it = r["stages"].begin(); it != r["stages"].end(); ++it)
      std::printf(" %s %.3f", it.key().c_str(), (*it)["busy_s"].get<double>());
    std::printf("\n");
    for (const auto& e : r["corrupt_examples"])
      std::printf("  skipped: %s\n", e.get<std::string>().c_str());
  }
}

Status RunLoad(const LoadArgs& args, Communicator& world) {
  TS_ASSIGN_OR_RETURN(const LoadJobOptions options, MakeOptions(args));
  TS_ASSIGN_OR_RETURN(LoadJobResult result, RunLoadJob(world, options));
  if (world.rank() != 0) return Status::Ok();
  nlohmann::json report = result.report;
  report["store"] = args.store;
  report["batch"] = args.batch;
  report["epochs"] = args.epochs;
  report["shuffle"] = args.shuffle;
  TS_ASSIGN_OR_RETURN(MlEvent event, MakeMlEvent(MlEventType::kPointInTime, "tracked_stats",
                                                 {{"throughput", result.samples_per_s}},
                                                 result.start_ms, {{"unit", "samples/s"}}));
  TS_ASSIGN_OR_RETURN(std::string line, FormatMlLogLine(event));
  report["mllog"] = {line};
  if (args.json) {
    std::cout << report.dump(2) << "\n";
    return Status::Ok();
  }
  PrintText(args, report);
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto args = std::make_shared<LoadArgs>();
  CLI::App* cmd = root.add_subcommand(
      "load", "Stream batches through the TBB loader and report throughput and data stalls");
  cmd->add_option("store", args->store, "Store directory")->required();
  cmd->add_option("--batch", args->batch,
                  "Samples per batch on each rank (the global batch is this times the ranks)")
      ->capture_default_str();
  cmd->add_option("--epochs", args->epochs, "Epochs to run")->capture_default_str();
  cmd->add_option("--shuffle", args->shuffle, "none, global or block")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Shuffle and augmentation seed")->capture_default_str();
  cmd->add_option("--threads", args->threads, "TBB threads per rank (0 = all cores)");
  cmd->add_option("--prefetch", args->prefetch, "Batches queued ahead of the consumer")
      ->capture_default_str();
  cmd->add_option("--mem-budget", args->mem_budget, "Loader memory budget per rank")
      ->capture_default_str();
  cmd->add_option("--compute-ms", args->compute_ms, "Emulated training step per batch (sleep)");
  cmd->add_flag("--read-batches", args->read_batches,
                "Sum each batch's x, as a training step reads it (to compare with consumers that "
                "read their batches, such as a PyTorch loop)");
  cmd->add_option("--on-corrupt", args->on_corrupt, "fail or skip")->capture_default_str();
  cmd->add_flag("--augment", args->augment, "Random flips and quarter turns, seeded per sample");
  cmd->add_option("--crop", args->crop, "Random square crop of this size (0 = none)");
  cmd->add_option("--block-shards", args->block_shards, "Shards per window for --shuffle block")
      ->capture_default_str();
  cmd->add_option("--block-parts", args->block_parts,
                  "Canonical parts for --shuffle block: a rank reads max(1, parts/ranks) parts "
                  "at once (see README)")
      ->capture_default_str();
  cmd->add_flag("--drop-last", args->drop_last,
                "Drop each epoch's tail instead of padding the last global batch");
  cmd->add_flag("--node-local", args->node_local,
                "Split samples over the ranks of each node only (a partition-staged store)");
  cmd->add_option("--start-epoch", args->start_epoch, "Resume: epoch");
  cmd->add_option("--start-sample", args->start_sample,
                  "Resume: samples of the epoch consumed by all ranks (whole global batches)");
  cmd->add_flag("--json", args->json, "Print the report as JSON");
  cmd->callback([args, exit_code] {
    // Outside a launcher one process needs no MPI: starting it would cost ~0.03 s of a command
    // that stages a 100 MB store in 0.06 s.
    auto mpi = MpiSession::Start(MpiSession::When::kUnderLauncher);
    if (!mpi.ok()) {
      *exit_code = Report(mpi.status());
      return;
    }
    auto world = NewWorldCommunicator();
    *exit_code = Report(world.ok() ? RunLoad(*args, **world) : world.status());
  });
});

}  // namespace
}  // namespace tilestage::cli
