// tilestage load: stream a store through the TBB loader (optionally under mpirun, one share per
// rank) and report throughput, per-stage busy time, queue occupancy, the data stall and, with
// --compute-ms emulating a training step, AU% = compute time / wall time.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "loaders/loader.h"
#include "loaders/mllog.h"
#include "loaders/mpi_env.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

using Clock = std::chrono::steady_clock;

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

Status RunLoad(const LoadArgs& args, MPI_Comm comm, int* rank_out) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  *rank_out = rank;
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);

  LoaderOptions o;
  o.batch_size = args.batch;
  TS_ASSIGN_OR_RETURN(o.shuffle, ParseShuffleMode(args.shuffle));
  o.seed = args.seed;
  o.rank = rank;
  o.world_size = world;
  o.nodes = CountNodes(MPI_COMM_WORLD);  // the job's nodes, also under --node-local
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
  if (args.epochs == 0) return InvalidArgument("--epochs must be at least 1");
  if (args.compute_ms < 0) return InvalidArgument("--compute-ms must be >= 0");

  auto opened = Loader::Open(LocalStorage(), args.store, o);
  // All ranks fail alike on bad options; a rank-specific failure must not leave others waiting.
  int ok = opened.ok() ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!opened.ok()) return opened.status();
  if (!all_ok) return Internal("another rank failed to open ", args.store);
  Loader& loader = **opened;

  MPI_Barrier(MPI_COMM_WORLD);
  const uint64_t start_ms = WallClockMs();
  const auto t0 = Clock::now();
  double compute_s = 0;
  uint64_t batches = 0, samples = 0;
  Batch batch;
  Status status;
  for (uint64_t e = 0; e < args.epochs && status.ok(); ++e) {
    while (true) {
      auto more = loader.Next(&batch);
      if (!more.ok()) {
        status = more.status();
        break;
      }
      if (!*more) break;
      ++batches;
      samples += static_cast<uint64_t>(batch.size);
      if (args.compute_ms > 0) {
        const auto c0 = Clock::now();
        std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(args.compute_ms));
        compute_s += std::chrono::duration<double>(Clock::now() - c0).count();
      }
    }
  }
  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const LoaderStats st = loader.stats();

  nlohmann::json mine = {
      {"rank", rank},
      {"world_rank", world_rank},
      {"batches", batches},
      {"samples", samples},
      {"wall_s", wall_s},
      {"compute_s", compute_s},
      {"au_percent", wall_s > 0 ? 100.0 * compute_s / wall_s : 0.0},
      {"samples_per_s", wall_s > 0 ? samples / wall_s : 0.0},
      {"stored_bytes_read", st.bytes_read},
      {"stored_mb_per_s", wall_s > 0 ? st.bytes_read / wall_s / 1e6 : 0.0},
      {"corrupt_skipped", st.corrupt_skipped},
      {"corrupt_examples", st.corrupt_examples},
      {"wait_s_total", st.wait_s_total},
      {"wait_ms_per_batch", batches ? 1e3 * st.wait_s_total / batches : 0.0},
      {"wait_ms_max", 1e3 * st.wait_s_max},
      {"queue_occupancy_mean", st.queue_occupancy_mean},
      {"queue_capacity", st.queue_capacity},
      {"tokens_in_flight", st.tokens_in_flight},
      {"memory_bound_bytes", st.memory_bound_bytes},
      {"threads", st.threads},
      {"position", {{"epoch", loader.position().epoch},
                    {"samples_consumed", loader.position().samples_consumed}}},
  };
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& s : st.stages) stages[s.name] = {{"busy_s", s.busy_s}, {"items", s.items}};
  mine["stages"] = stages;
  if (!status.ok()) mine["error"] = status.ToString();

  // Gather every rank's report on world rank 0.
  const std::string text = mine.dump();
  int length = static_cast<int>(text.size()), size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<int> lengths(size), displs(size);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < size; ++r) {
    displs[r] = total;
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(world_rank == 0 ? total : 0), '\0');
  MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), displs.data(), MPI_CHAR,
              0, MPI_COMM_WORLD);
  if (!status.ok()) return status;
  if (world_rank != 0) return Status::Ok();

  nlohmann::json ranks = nlohmann::json::array();
  uint64_t total_samples = 0;
  double max_wall = 0, total_compute = 0;
  for (int r = 0; r < size; ++r) {
    ranks.push_back(nlohmann::json::parse(all.substr(displs[r], lengths[r])));
    total_samples += ranks.back()["samples"].get<uint64_t>();
    max_wall = std::max(max_wall, ranks.back()["wall_s"].get<double>());
    total_compute += ranks.back()["compute_s"].get<double>();
  }
  const double throughput = max_wall > 0 ? total_samples / max_wall : 0.0;
  const nlohmann::json throughput_value = {{"throughput", throughput}};
  const nlohmann::json throughput_meta = {{"unit", "samples/s"}};
  nlohmann::json report = {
      {"store", args.store},
      {"batch", args.batch},
      {"epochs", args.epochs},
      {"shuffle", args.shuffle},
      {"ranks", size},
      {"samples", total_samples},
      {"wall_s", max_wall},
      {"samples_per_s", max_wall > 0 ? total_samples / max_wall : 0.0},
      {"au_percent", max_wall > 0 ? 100.0 * total_compute / (size * max_wall) : 0.0},
      {"per_rank", ranks},
      {"mllog", {TS_MLLOG(MllogEvent::kPointInTime, "tracked_stats", throughput_value,
                          start_ms, throughput_meta)}},
  };
  if (args.json) {
    std::cout << report.dump(2) << "\n";
    return Status::Ok();
  }
  std::printf("loaded %s: %llu samples in %.3f s over %d rank(s): %.1f samples/s",
              args.store.c_str(), static_cast<unsigned long long>(total_samples), max_wall, size,
              report["samples_per_s"].get<double>());
  // AU (compute time / wall time) only means something with an emulated step to measure.
  if (args.compute_ms > 0)
    std::printf(", AU %.1f%%\n", report["au_percent"].get<double>());
  else
    std::printf(" (no AU: pass --compute-ms to emulate a training step)\n");
  for (const auto& r : ranks) {
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
    const bool mpi_started_here = InitMpiIfNeeded();
    MPI_Comm comm = MPI_COMM_WORLD;
    if (args->node_local) {
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &comm);
    }
    int rank = 0;
    const Status status = RunLoad(*args, comm, &rank);
    *exit_code = Report(status);
    if (comm != MPI_COMM_WORLD) MPI_Comm_free(&comm);
    if (mpi_started_here) MPI_Finalize();
  });
});

}  // namespace
}  // namespace tilestage::cli
