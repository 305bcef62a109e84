#include "bench/e2e/phases.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "bench/e2e/inputs.h"
#include "bench/e2e/page_cache.h"
#include "bench/e2e/step_runner.h"
#include "trainer/model.h"

namespace tilestage::bench {

namespace fs = std::filesystem;

namespace {

// Runs a step whose stdout is a --json document and returns it.
Result<Json> RunJsonStep(const E2eRunContext& ctx, const std::string& step,
                         const std::vector<std::string>& argv, StepOutput* output = nullptr) {
  TS_ASSIGN_OR_RETURN(StepOutput p, RunStep(step, argv, ctx.StepsDir()));
  TS_ASSIGN_OR_RETURN(Json j, ParseStepJson(step, p.out));
  if (output != nullptr) *output = std::move(p);
  return j;
}

// Debian's OpenBLAS (libopenblas0-pthread, tools/setup.sh --bench): its libblas.so.3, which a
// PyTorch peer loads first through LD_LIBRARY_PATH, whatever the system's BLAS alternative.
std::string OpenBlasDir() {
#if defined(__aarch64__)
  return "/usr/lib/aarch64-linux-gnu/openblas-pthread";
#else
  return "/usr/lib/x86_64-linux-gnu/openblas-pthread";
#endif
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

std::vector<std::string> IngestResult::AllInputs() const {
  std::vector<std::string> all;
  for (const IngestFigures& m : modality) all = Concat(std::move(all), m.inputs);
  return all;
}

std::vector<std::string> IngestArgv(const E2eRunContext& ctx, size_t modality) {
  const E2eConfig& c = ctx.config;
  const std::string threads = std::to_string(c.threads);
  const std::string tile = std::to_string(c.geotiff_tile);
  const std::string store = ctx.out + "/stores/" + kIngestModalities[modality];
  std::vector<std::string> argv = {ctx.exe, "ingest", kIngestModalities[modality], "--out", store};
  if (modality == 0) {
    argv = Concat(std::move(argv), {"--tile", tile + "," + tile, "--min-valid", "0.5"});
    if (!c.geotiff_dtype.empty()) argv = Concat(std::move(argv), {"--dtype", c.geotiff_dtype});
  } else if (modality == 1) {
    argv = Concat(std::move(argv), {"--vars", c.netcdf_vars});
  } else {
    argv = Concat(std::move(argv), {"--dataset", "/entry/data/data", "--tile", c.hdf5_tile});
  }
  return Concat(std::move(argv), {"--codec", c.codec, "--threads", threads, "--json"});
}

std::vector<std::string> IngestSources(const E2eRunContext& ctx) {
  const std::string data = ctx.root + "/examples/data";
  return {data + "/geotiff/RGB.byte.tif", data + "/netcdf/era5_1995-07-14T12.nc",
          data + "/hdf5/bitshuffle.h5"};
}

Result<IngestResult> RunIngestPhase(const E2eRunContext& ctx) {
  const E2eConfig& c = ctx.config;
  const std::vector<std::string> sources = IngestSources(ctx);
  std::array<std::vector<std::string>, 3> args;
  for (size_t i = 0; i < args.size(); ++i) args[i] = IngestArgv(ctx, i);
  IngestResult result;
  for (size_t i = 0; i < kIngestModalities.size(); ++i) {
    const std::string name = kIngestModalities[i];
    IngestFigures& fig = result.modality[i];
    const int copies = i == 0 ? c.GeotiffCopies() : c.copies;
    TS_ASSIGN_OR_RETURN(fig.inputs, CopyInputs({sources[i]}, copies, ctx.out + "/inputs/" + name,
                                               fs::path(ctx.exe).parent_path().string()));
  }
  for (size_t i = 0; i < kIngestModalities.size(); ++i) {
    const std::string name = kIngestModalities[i];
    IngestFigures& fig = result.modality[i];
    ctx.progress.Line("ingest " + name + ": " + std::to_string(fig.inputs.size()) + " file(s)");
    StepOutput p;
    TS_ASSIGN_OR_RETURN(fig.step,
                        RunJsonStep(ctx, "ingest_" + name, Concat(args[i], fig.inputs), &p));
    fig.seconds = i == 0 ? p.wall_s : fig.step.value("elapsed_s", p.wall_s);
    fig.step["process_wall_s"] = p.wall_s;
    fig.input_bytes = double(TotalBytes(fig.inputs));
    fig.tiles = fig.step.value("tiles_written", 0.0);
    ctx.progress.Line("  " + std::to_string(int64_t(fig.tiles)) + " tiles in " +
                      FormatFixed(p.wall_s, 2) + " s");
  }
  return result;
}

Result<PeerIngestResult> RunPeerIngestPhase(const E2eRunContext& ctx, const IngestResult& ingest) {
  const E2eConfig& c = ctx.config;
  const std::array<std::vector<std::string>, 3> options = {{
      {"--tile", std::to_string(c.geotiff_tile), "--workdir", ctx.out + "/peers/gdal_retile"},
      {"--vars", c.netcdf_vars},
      {"--dataset", "/entry/data/data"},
  }};
  PeerIngestResult result;
  for (size_t i = 0; i < kIngestModalities.size(); ++i) {
    const std::string name = kIngestModalities[i];
    ctx.progress.Line("peer: ingest " + name);
    std::vector<std::string> argv = {"/usr/bin/python3", ctx.PeersScript(), name};
    std::vector<std::string> inputs = ingest.modality[i].inputs;
    if (c.peer_copies > 0 && inputs.size() > size_t(c.peer_copies)) inputs.resize(c.peer_copies);
    argv = Concat(Concat(std::move(argv), options[i]), inputs);
    TS_ASSIGN_OR_RETURN(result.modality[i], RunJsonStep(ctx, "peer_ingest_" + name, argv));
  }
  return result;
}

Result<StagingResult> RunStagingPhase(const E2eRunContext& ctx, MlLogger& log) {
  const int np = ctx.config.np;
  StagingResult result;
  result.staged = ctx.out + "/node_local/node0";
  const std::vector<std::string> argv =
      Concat(MpirunPrefix(np), {ctx.exe, "stage", "--from", ctx.out + "/stores/geotiff", "--to",
                                ctx.out + "/node_local/node{node}", "--threads",
                                std::to_string(ctx.config.threads), "--json"});
  ctx.progress.Line("stage the GeoTIFF store under mpirun -np " + std::to_string(np));
  StepOutput p;
  TS_ASSIGN_OR_RETURN(result.step, RunJsonStep(ctx, "stage", argv, &p));
  // The stager's own MLLOG events (barrier to barrier) go into the run's log as it wrote them.
  if (result.step.contains("mllog")) {
    for (const auto& line : result.step["mllog"]) {
      TS_ASSIGN_OR_RETURN(std::optional<MlEvent> e, ParseMlLogLine(line.get<std::string>()));
      if (e) TS_RETURN_IF_ERROR(log.Log(*e));
    }
  }
  result.seconds = result.step.value("seconds", 0.0);
  result.bytes = result.step.value("bytes_written", 0.0);
  if (!fs::exists(result.staged + "/manifest.json")) {
    return DataLoss("stage: no manifest.json in ", result.staged, " after staging");
  }
  ctx.progress.Line("  " + FormatFixed(result.bytes / 1e6, 3) + " MB in " +
                    FormatFixed(result.seconds, 4) + " s (stager), " + FormatFixed(p.wall_s, 2) +
                    " s with mpirun start-up");
  return result;
}

Result<double> ForwardFlopsPerSample(const E2eConfig& c, const std::vector<int64_t>& x_shape) {
  if (x_shape.size() != 3) return InvalidArgument("expected a C,H,W tile shape");
  trainer::ModelConfig mc;
  mc.objective = trainer::Objective::kMae;
  mc.dim = c.dim;
  mc.depth = c.depth;
  mc.heads = c.heads;
  mc.patch = c.patch;
  mc.in_channels = x_shape[0];
  mc.height = x_shape[1];
  mc.width = x_shape[2];
  TS_ASSIGN_OR_RETURN(auto model, trainer::VitModel::Create(mc));
  return model->ForwardFlopsPerSample();
}

Result<TrainResult> RunTrainPhase(const E2eRunContext& ctx, const StagingResult& staging,
                                  MlLogger& log) {
  const E2eConfig& c = ctx.config;
  // Option and value side by side.
  // clang-format off
  const std::vector<std::string> argv = Concat(MpirunPrefix(c.np), {
      ctx.exe, "train", "--store", staging.staged, "--model", "vit-mae",
      "--eval-fraction", std::to_string(c.eval_fraction), "--epochs", std::to_string(c.epochs),
      "--batch", std::to_string(c.batch), "--dim", std::to_string(c.dim),
      "--depth", std::to_string(c.depth), "--heads", std::to_string(c.heads),
      "--patch", std::to_string(c.patch), "--threads", std::to_string(c.threads),
      "--json", "-", "--checkpoint-dir", ctx.out + "/checkpoints"});
  // clang-format on
  ctx.progress.Line("train vit-mae under mpirun -np " + std::to_string(c.np) + ": " +
                    std::to_string(c.epochs) + " epochs, batch " + std::to_string(c.batch) +
                    ", eval on " + std::to_string(int(c.eval_fraction * 100)) + "% held out");
  TrainRecordFollower follower(&log, c.epochs, &ctx.progress);
  TS_ASSIGN_OR_RETURN(StepOutput p, RunStep("train", argv, ctx.StepsDir(),
                                            [&](const std::string& line, int64_t arrival_ms) {
                                              follower.OnLine(line, arrival_ms);
                                            }));
  TrainResult result;
  TS_ASSIGN_OR_RETURN(result.figures, follower.Finish(p.stderr_path));
  Json records = Json::array();
  std::istringstream in(p.out);
  std::string line;
  while (std::getline(in, line)) {
    try {
      records.push_back(Json::parse(line));
    } catch (...) {
    }
  }
  result.step = Json{{"records", records}};
  const TrainFigures& f = result.figures;
  result.allreduce_bytes = double(f.steps) * double(f.params) * 4.0;
  if (f.x_shape.size() == 3) {
    auto forward = ForwardFlopsPerSample(c, f.x_shape);
    if (forward.ok()) result.flops_per_sample = 3.0 * *forward;
  }
  return result;
}

Result<Json> RunStagingPeerPhase(const E2eRunContext& ctx) {
  const std::string src = ctx.out + "/stores/geotiff";
  const std::string peers = ctx.out + "/peers";
  const std::string stage_copy = peers + "/stage_copy", cp_copy = peers + "/cp_copy";
  std::error_code ec;
  fs::create_directories(peers, ec);
  if (ec) return IOError("cannot create ", peers, ": ", ec.message());
  const std::vector<std::string> stage_argv =
      Concat(MpirunPrefix(ctx.config.np),
             {ctx.exe, "stage", "--from", src, "--to", stage_copy + "/node{node}", "--threads",
              std::to_string(ctx.config.threads), "--json"});
  ctx.progress.Line("peer: staging again beside cp -r of the store, then sync (best of " +
                    std::to_string(kStagingPeerRounds) + " alternating rounds)");
  // Each contender starts after a sync, so that writeback left by earlier steps lands on neither,
  // and its copy is removed after it (one copy on the disk at a time).
  auto settled = [&](const std::string& step, const std::string& copy) -> Status {
    fs::remove_all(copy, ec);
    if (ec) return IOError("cannot remove ", copy, ": ", ec.message());
    return RunStep(step, {"sync"}, ctx.StepsDir()).status();
  };
  double stage_s = 0, cp_s = 0, sync_s = 0;
  auto stage = [&](const std::string& suffix) -> Status {
    TS_RETURN_IF_ERROR(settled("peer_settle_stage" + suffix, stage_copy));
    TS_ASSIGN_OR_RETURN(Json step, RunJsonStep(ctx, "peer_stage" + suffix, stage_argv));
    const double seconds = step.value("seconds", 0.0);
    if (stage_s == 0 || seconds < stage_s) stage_s = seconds;
    return settled("peer_clean_stage" + suffix, stage_copy);
  };
  auto copy = [&](const std::string& suffix) -> Status {
    TS_RETURN_IF_ERROR(settled("peer_settle_cp" + suffix, cp_copy));
    TS_ASSIGN_OR_RETURN(StepOutput cp,
                        RunStep("peer_cp" + suffix, {"cp", "-r", src, cp_copy}, ctx.StepsDir()));
    TS_ASSIGN_OR_RETURN(StepOutput sync, RunStep("peer_sync" + suffix, {"sync"}, ctx.StepsDir()));
    if (cp_s == 0 || cp.wall_s + sync.wall_s < cp_s + sync_s) {
      cp_s = cp.wall_s;
      sync_s = sync.wall_s;
    }
    return settled("peer_clean_cp" + suffix, cp_copy);
  };
  for (int round = 0; round < kStagingPeerRounds; ++round) {
    const std::string suffix = "_" + std::to_string(round);
    if (round % 2 == 0) {
      TS_RETURN_IF_ERROR(stage(suffix));
      TS_RETURN_IF_ERROR(copy(suffix));
    } else {
      TS_RETURN_IF_ERROR(copy(suffix));
      TS_RETURN_IF_ERROR(stage(suffix));
    }
  }
  return Json{
      {"stage_s", stage_s}, {"seconds", cp_s + sync_s},     {"cp_s", cp_s},
      {"sync_s", sync_s},   {"rounds", kStagingPeerRounds}, {"bytes", TotalBytes(FilesUnder(src))}};
}

Result<LoaderResult> RunLoaderPhase(const E2eRunContext& ctx, const StagingResult& staging,
                                    const TrainResult& train) {
  const E2eConfig& c = ctx.config;
  LoaderResult result;
  // Loader throughput (no compute), cached, beside PyTorch's DataLoader on the same store.
  ctx.progress.Line("loader: tilestage load vs PyTorch DataLoader on the staged store");
  TS_ASSIGN_OR_RETURN(result.load, RunJsonStep(ctx, "load",
                                               {ctx.exe, "load", staging.staged, "--batch",
                                                std::to_string(c.loader_batch), "--epochs", "1",
                                                "--threads", std::to_string(c.threads), "--json"}));
  if (!c.peers) return result;
  TS_ASSIGN_OR_RETURN(
      result.peer_loader,
      RunJsonStep(ctx, "peer_loader",
                  {"/usr/bin/python3", ctx.PeersScript(), "loader", "--store", staging.staged,
                   "--batch", std::to_string(c.loader_batch), "--workers",
                   std::to_string(c.threads), "--reader-dir", ctx.root + "/tools/python"}));
  // The Python package sits beside the binary's tools/ folder in the build tree.
  const fs::path package_dir = fs::path(ctx.exe).parent_path().parent_path() / "python";
  bool built = false;  // the extension, tilestage/_native.<python tag>.so
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(package_dir / "tilestage", ec)) {
    const std::string name = e.path().filename().string();
    built = built || (name.starts_with("_native") && e.path().extension() == ".so");
  }
  if (!built) {
    ctx.progress.Line("loader (Python): not measured, the package is not built at " +
                      package_dir.string() + " (build target tilestage_python)");
  } else {
    TS_ASSIGN_OR_RETURN(
        result.python_loader,
        RunJsonStep(ctx, "python_loader",
                    {"/usr/bin/python3", ctx.PeersScript(), "tilestage-python", "--store",
                     staging.staged, "--batch", std::to_string(c.loader_batch), "--threads",
                     std::to_string(c.threads), "--package-dir", package_dir.string()}));
  }
  // PyTorch's training step on the same MAE (bench/trainer/torch_vit.py: same parameters and
  // FLOPs, checked below), on OpenBLAS chosen for its process only, same ranks (DDP over gloo), threads per rank and global batch.
  const std::vector<int64_t>& x = train.figures.x_shape;
  if (x.size() == 3 && x[1] == x[2]) {
    ctx.progress.Line("peer: PyTorch+OpenBLAS training step (same MAE, " + std::to_string(c.np) +
                      " rank(s))");
    std::vector<std::string> argv = {
        "/usr/bin/env", "LD_LIBRARY_PATH=" + OpenBlasDir(),
        "OPENBLAS_NUM_THREADS=" + std::to_string(c.threads), "/usr/bin/python3"};
    // Option and value side by side.
    // clang-format off
    argv.insert(argv.end(), {
        ctx.root + "/bench/trainer/torch_vit.py", "bench", "--objective", "mae",
        "--dim", std::to_string(c.dim), "--depth", std::to_string(c.depth),
        "--heads", std::to_string(c.heads), "--patch", std::to_string(c.patch),
        "--size", std::to_string(x[1]), "--channels", std::to_string(x[0]),
        "--batch", std::to_string(c.batch), "--steps", "4", "--warmup", "1",
        "--threads", std::to_string(c.threads), "--ranks", std::to_string(c.np)});
    // clang-format on
    TS_ASSIGN_OR_RETURN(result.peer_train, RunJsonStep(ctx, "peer_train", argv));
    const int64_t peer_params = result.peer_train->value("parameters", int64_t{0});
    const double peer_flops = result.peer_train->value("forward_flops_per_sample", 0.0);
    if (peer_params != train.figures.params || 3.0 * peer_flops != train.flops_per_sample) {
      return Internal("peer_train: the PyTorch model has ", peer_params, " parameters and ",
                      peer_flops, " forward FLOPs per sample, the trained one ",
                      train.figures.params, " and ", train.flops_per_sample / 3.0,
                      ": not the same model, no ratio");
    }
  }
  return result;
}

// DS-Analyzer's differential runs over the staged store with the trainer's measured compute per
// step as the stand-in (a sleep, as DLIO does). Each round: evict, cold run, cached run (the
// shards are now in the page cache), synthetic run (the same number of batches, compute only).
Result<DataStallResult> RunDataStallPhase(const E2eRunContext& ctx, const StagingResult& staging,
                                          const TrainResult& train) {
  const E2eConfig& c = ctx.config;
  DataStallResult result;
  // The trainer's compute per step is for its per-rank batch; scale it to the loader's batch.
  const double per_rank_batch = double(c.batch) / double(c.np);
  result.compute_ms =
      std::max(1.0, train.figures.compute_ms_mean * double(c.loader_batch) / per_rank_batch);
  const std::vector<std::string> files = FilesUnder(staging.staged);
  auto load_run = [&](const std::string& step) {
    return RunJsonStep(ctx, step,
                       {ctx.exe, "load", staging.staged, "--batch", std::to_string(c.loader_batch),
                        "--epochs", "1", "--threads", std::to_string(c.threads), "--compute-ms",
                        std::to_string(result.compute_ms), "--json"});
  };
  ctx.progress.Line("data stalls (DS-Analyzer): " + std::to_string(c.stall_rounds) +
                    " round(s) of cold, cached and synthetic runs, " +
                    FormatFixed(result.compute_ms, 2) + " ms compute per batch");
  for (int round = 1; round <= c.stall_rounds; ++round) {
    const std::string suffix = "_r" + std::to_string(round);
    TS_RETURN_IF_ERROR(EvictFromPageCache(files));
    // What eviction left in the cache: a cold run is only as cold as this says.
    TS_ASSIGN_OR_RETURN(const uint64_t resident, ResidentBytes(files));
    result.resident_after_evict_bytes.push_back(double(resident));
    TS_ASSIGN_OR_RETURN(Json cold, load_run("stalls_cold" + suffix));
    TS_ASSIGN_OR_RETURN(Json cached, load_run("stalls_cached" + suffix));
    int64_t batches = 0;
    for (const auto& r : cached.value("per_rank", Json::array())) {
      batches += r.value("batches", int64_t(0));
    }
    const double t0 = SteadySeconds();
    for (int64_t b = 0; b < batches; ++b) {
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(result.compute_ms));
    }
    result.rounds.push_back(
        {SteadySeconds() - t0, cached.value("wall_s", 0.0), cold.value("wall_s", 0.0)});
    if (round == 1) {
      result.samples = cached.value("samples", 0.0);
      result.cold_step = std::move(cold);
      result.cached_step = std::move(cached);
    }
  }
  TS_ASSIGN_OR_RETURN(result.summary, SummarizeStallRounds(result.rounds));
  result.staged_bytes = double(TotalBytes(files));
  for (const std::string& n : result.summary.noise) ctx.progress.Line("  noise: " + n);
  return result;
}

Json DataStallResult::ToJson() const {
  Json rounds_json = Json::array();
  for (const StallRound& r : rounds) rounds_json.push_back(StallRoundJson(r));
  return Json{{"samples", samples},
              {"compute_ms", compute_ms},
              {"synthetic_s", summary.median.synthetic_s},
              {"cached_s", summary.median.cached_s},
              {"cold_s", summary.median.cold_s},
              {"rounds", rounds_json},
              {"staged_bytes", staged_bytes},
              {"resident_after_evict_bytes", resident_after_evict_bytes}};
}

}  // namespace tilestage::bench
