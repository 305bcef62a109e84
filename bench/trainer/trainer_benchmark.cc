// Trainer benchmark: training throughput of a ViT (the MAE by default, or the classifier), its
// achieved GFLOP/s next to the GEMM rate measured in the same process, the share of the step
// spent in attention's token-by-token products (QK^T, softmax, PV and their backward, timed on
// the layer alone at the step's shapes), the share of the gradient allreduce hidden behind
// backward (under mpirun -np N: the same steps with each --allreduce mode), and, with --store,
// the data stall when the staging loader feeds the trainer. Prints a table and one JSON line.
// Measures only: no assertions. Run through bench/trainer/run_trainer_bench.py for the PyTorch
// comparison.
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tiling/comm/mpi_env.h"
#include "tiling/synth.h"
#include "trainer/gemm.h"
#include "trainer/layers.h"
#include "trainer/loader_source.h"
#include "trainer/trainer.h"

namespace {

using namespace tilestage;
using namespace tilestage::trainer;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Args {
  int threads = 2;
  int64_t batch = 32, steps = 8, warmup = 2;
  int64_t dim = 192, depth = 12, heads = 3, patch = 8, size = 64, channels = 3, classes = 10;
  Objective objective = Objective::kMae;
  std::string store;
  std::string modes = "overlap,blocking,auto";
  int repeats = 1;
  int64_t bucket_floats = int64_t{1} << 20;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads")
      a.threads = std::stoi(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--steps")
      a.steps = std::stoll(v);
    else if (k == "--warmup")
      a.warmup = std::stoll(v);
    else if (k == "--dim")
      a.dim = std::stoll(v);
    else if (k == "--depth")
      a.depth = std::stoll(v);
    else if (k == "--heads")
      a.heads = std::stoll(v);
    else if (k == "--patch")
      a.patch = std::stoll(v);
    else if (k == "--size")
      a.size = std::stoll(v);
    else if (k == "--channels")
      a.channels = std::stoll(v);
    else if (k == "--classes")
      a.classes = std::stoll(v);
    else if (k == "--objective") {
      auto objective = ParseObjective("vit-" + v);
      if (!objective.ok()) {
        std::cerr << objective.status().ToString() << "\n";
        std::exit(2);
      }
      a.objective = *objective;
    }
    else if (k == "--store")
      a.store = v;
    else if (k == "--repeats")
      a.repeats = std::stoi(v);
    else if (k == "--bucket-floats")
      a.bucket_floats = std::stoll(v);
    else if (k == "--modes")
      a.modes = v;
    else {
      std::cerr << "unknown option " << k << "\n";
      std::exit(2);
    }
  }
  return a;
}

// GFLOP/s of C = A B^T (the Linear forward layout): the best of five 0.3 s windows, so that the
// limit the trainer is compared with is the machine at its best, not a dip.
double MeasureGemm(int64_t m, int64_t n, int64_t k) {
  std::vector<float> a(m * k), b(n * k), c(m * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i % 13) * 0.01f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = float(i % 7) * 0.01f;
  Gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
  double best = 0;
  for (int window = 0; window < 5; ++window) {
    int reps = 0;
    const double t0 = Now();
    double t1 = t0;
    while (t1 - t0 < 0.3) {
      Gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
      ++reps;
      t1 = Now();
    }
    best = std::max(best, 2.0 * double(m) * double(n) * double(k) * reps / (t1 - t0) / 1e9);
  }
  return best;
}

// Milliseconds of attention's token-by-token part (QK^T, softmax, PV and their backward) for
// `layers` attention layers over [batch, tokens, dim]: the whole layer's forward and backward,
// less those of its qkv and output projections alone. Best of 5.
double AttentionCoreMs(int64_t batch, int64_t tokens, int64_t dim, int64_t heads, int64_t layers) {
  ParamStore store;
  Attention attention;
  attention.Init(store, "attn", dim, heads);
  Linear qkv, proj;
  qkv.Init(store, "qkv", dim, 3 * dim);
  proj.Init(store, "proj", dim, dim);
  store.Finalize();
  store.Initialize(1);
  const int64_t rows = batch * tokens;
  std::vector<float> x(rows * dim), y(rows * dim), dx(rows * dim), q(rows * 3 * dim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(2.0 * CounterUniform(3, 4, i) - 1.0);
  auto best_of_5 = [](const auto& fn) {
    double best = 1e300;
    for (int i = 0; i < 5; ++i) {
      const double t0 = Now();
      fn();
      best = std::min(best, Now() - t0);
    }
    return best;
  };
  const double whole = best_of_5([&] {
    attention.Forward(store, x.data(), batch, tokens, y.data());
    attention.Backward(store, x.data(), x.data(), batch, tokens, dx.data());
  });
  const double projections = best_of_5([&] {
    qkv.Forward(store, x.data(), rows, q.data());
    proj.Forward(store, x.data(), rows, y.data());
    qkv.Backward(store, x.data(), q.data(), rows, dx.data());
    proj.Backward(store, x.data(), x.data(), rows, dx.data());
  });
  return std::max(0.0, whole - projections) * 1e3 * double(layers);
}

std::shared_ptr<InMemoryData> RandomData(const Args& a, int64_t count) {
  auto d = std::make_shared<InMemoryData>();
  d->x_shape = {a.channels, a.size, a.size};
  d->y_shape = {1};
  d->classes = a.classes;
  d->x.resize(count * a.channels * a.size * a.size);
  for (size_t i = 0; i < d->x.size(); ++i) d->x[i] = float(2.0 * CounterUniform(1, 2, i) - 1.0);
  for (int64_t i = 0; i < count; ++i) d->y.push_back(float(i % a.classes));
  return d;
}

TrainerConfig Config(const Args& a, AllreduceMode mode, int64_t local_batch) {
  TrainerConfig c;
  c.model.objective = a.objective;
  c.model.dim = a.dim;
  c.model.depth = a.depth;
  c.model.heads = a.heads;
  c.model.patch = a.patch;
  c.model.in_channels = a.channels;
  c.model.height = c.model.width = a.size;
  if (a.objective == Objective::kClassify) {
    c.model.classes = a.classes;
    c.model.y_shape = {1};
  }
  c.adamw.lr = 1e-4;
  c.epochs = 1;
  c.allreduce = mode;
  c.bucket_floats = a.bucket_floats;
  c.batch_size = local_batch;
  c.checksum_every = 0;
  return c;
}

struct RunResult {
  double samples_per_s = 0, step_ms = 0, compute_ms = 0, allreduce_ms = 0, exposed_ms = 0,
         stall_ms = 0;
  std::string mode_used;    // the mode of the last step (auto: the one it kept)
  std::string auto_choice;  // auto: what the choice rested on (rank 0)
};

RunResult RunSteps(const Args& a, Communicator& comm, AllreduceMode mode, BatchSource* source) {
  const int64_t local = a.batch / comm.size();
  // Auto's trial (steps 2-7) is part of its warm-up: the timed steps run the mode it kept.
  const int64_t warmup = mode == AllreduceMode::kAuto ? std::max<int64_t>(a.warmup, 7) : a.warmup;
  const int64_t total = warmup + a.steps;
  std::unique_ptr<BatchSource> owned;
  if (source == nullptr) {
    owned = NewInMemoryBatchSource(RandomData(a, a.batch * total), local, comm.rank(), comm.size(),
                                   0, false);
    source = owned.get();
  }
  TrainerConfig config = Config(a, mode, local);
  config.max_steps = total;
  config.log_every = 0;
  std::stringstream progress;  // keeps auto's choice line
  config.progress = &progress;
  auto trainer = Trainer::Create(config, &comm, LocalStorage());
  if (!trainer.ok() || !(*trainer)->InitializeWeights().ok()) std::exit(1);
  comm.Barrier().ok();
  Status s = (*trainer)->Run(*source, nullptr);
  if (!s.ok()) {
    std::cerr << s.ToString() << "\n";
    std::exit(1);
  }
  // Medians over the timed steps: one slow step (a page-fault burst, a neighbour on the host)
  // does not move them.
  const auto& steps = (*trainer)->steps();
  auto median = [&](double StepRecord::*field) {
    std::vector<double> v;
    for (size_t i = warmup; i < steps.size(); ++i) v.push_back(steps[i].*field);
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  RunResult r;
  r.compute_ms = median(&StepRecord::compute_ms);
  r.allreduce_ms = median(&StepRecord::allreduce_ms);
  r.exposed_ms = median(&StepRecord::allreduce_exposed_ms);
  r.stall_ms = median(&StepRecord::stall_ms);
  // The slowest rank sets the pace.
  std::vector<double> all(comm.size(), 0.0);
  all[comm.rank()] = median(&StepRecord::step_ms);
  comm.AllreduceSum(std::span<double>(all)).ok();
  r.step_ms = *std::max_element(all.begin(), all.end());
  r.samples_per_s = double(a.batch) / (r.step_ms / 1e3);
  r.mode_used = steps.back().allreduce_mode;
  for (std::string line; std::getline(progress, line);) {
    if (line.starts_with("allreduce auto:")) r.auto_choice = line;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = MpiSession::Start();
  if (!mpi.ok()) return 1;
  Args a = Parse(argc, argv);
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, a.threads);
  auto comm_or = NewMpiCommunicator();
  if (!comm_or.ok()) return 1;
  Communicator& comm = **comm_or;
  const int rank = comm.rank(), world = comm.size();
  nlohmann::json out = {{"bench", "trainer"},
                        {"ranks", world},
                        {"threads_per_rank", a.threads},
                        {"global_batch", a.batch},
                        {"gemm_kernel", GemmKernelName()},
                        {"model",
                         {{"dim", a.dim},
                          {"depth", a.depth},
                          {"heads", a.heads},
                          {"patch", a.patch},
                          {"tile", {a.channels, a.size, a.size}}}}};

  const ModelConfig model_config = Config(a, AllreduceMode::kOverlap, 1).model;
  auto model = VitModel::Create(model_config);
  if (!model.ok()) {
    std::cerr << model.status().ToString() << "\n";
    return 2;
  }
  const double train_flops_per_sample = 3.0 * (*model)->ForwardFlopsPerSample();
  out["train_gflop_per_sample"] = train_flops_per_sample / 1e9;
  out["forward_flops_per_sample"] = (*model)->ForwardFlopsPerSample();
  out["parameters"] = (*model)->params().total();
  out["objective"] = ObjectiveName(a.objective);
  const int64_t tokens = (a.size / a.patch) * (a.size / a.patch);
  out["tokens"] = tokens;
  // The encoder sees MAE's kept tokens only; the decoder sees them all.
  const int64_t local_batch = a.batch / world;
  const bool mae = a.objective == Objective::kMae;
  const int64_t encoder_tokens = mae ? int64_t(tokens * (1.0 - model_config.mask_ratio)) : tokens;
  // GEMM reference rate at the encoder MLP's shape on one rank's batch, measured by one rank at
  // a time so that ranks do not share cores while measuring.
  const std::vector<int64_t> gemm_shape = {local_batch * encoder_tokens, 4 * a.dim, a.dim};
  double gemm = 0, gemm_square = 0;
  if (rank == 0) {
    gemm = MeasureGemm(gemm_shape[0], gemm_shape[1], gemm_shape[2]);
    gemm_square = MeasureGemm(1024, 1024, 1024);
  }
  out["sgemm_gflops_mlp_shape"] = gemm;
  out["sgemm_gflops_1024"] = gemm_square;
  out["sgemm_shape"] = gemm_shape;
  double attention_ms = 0;
  if (rank == 0) {
    attention_ms = AttentionCoreMs(local_batch, encoder_tokens, a.dim, a.heads, a.depth);
    if (mae) {
      attention_ms += AttentionCoreMs(local_batch, tokens, model_config.decoder_dim,
                                      model_config.decoder_heads, model_config.decoder_depth);
    }
  }
  comm.Barrier().ok();

  std::vector<std::string> modes;
  if (world == 1) {
    modes = {"overlap"};
  } else {
    std::stringstream ss(a.modes);
    for (std::string m; std::getline(ss, m, ',');) modes.push_back(m);
  }
  // Each mode --repeats times, the order reversed every other round (the machine drifts), and
  // the best run of each kept.
  std::map<std::string, RunResult> best;
  for (int round = 0; round < a.repeats; ++round) {
    std::vector<std::string> order = modes;
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (const std::string& m : order) {
      RunResult r = RunSteps(a, comm, *ParseAllreduceMode(m), nullptr);
      if (r.samples_per_s > best[m].samples_per_s) best[m] = r;
    }
  }
  for (const std::string& m : modes) {
    const RunResult& r = best[m];
    out[m] = {{"samples_per_s", r.samples_per_s},
              {"mode_used", r.mode_used},
              {"auto_choice", r.auto_choice},
              {"attention_core_ms", attention_ms},
              {"attention_share", attention_ms / r.compute_ms},
              {"step_ms", r.step_ms},
              {"compute_ms", r.compute_ms},
              {"allreduce_ms", r.allreduce_ms},
              {"allreduce_exposed_ms", r.exposed_ms},
              {"achieved_gflops", r.samples_per_s * train_flops_per_sample / 1e9}};
    if (rank == 0) {
      std::printf(
          "%-9s ranks %d: %7.2f samples/s  step %8.1f ms  compute %8.1f ms  allreduce "
          "%6.1f ms (exposed %6.1f)  %6.1f GFLOP/s  attention %4.1f%% of compute\n",
          m.c_str(), world, r.samples_per_s, r.step_ms, r.compute_ms, r.allreduce_ms, r.exposed_ms,
          r.samples_per_s * train_flops_per_sample / 1e9, 100.0 * attention_ms / r.compute_ms);
    }
  }
  if (world > 1 && out.contains("overlap") && out.contains("blocking")) {
    const double blocking = out["blocking"]["allreduce_exposed_ms"];
    const double overlap = out["overlap"]["allreduce_exposed_ms"];
    out["allreduce_hidden_fraction"] = blocking > 0 ? 1.0 - overlap / blocking : 0.0;
  }
  if (!a.store.empty()) {
    LoaderOptions o;
    o.batch_size = a.batch / world;
    o.rank = rank;
    o.world_size = world;
    o.drop_last = true;
    auto source = LoaderBatchSource::Open(LocalStorage(), a.store, o);
    if (!source.ok()) {
      std::cerr << source.status().ToString() << "\n";
      return 1;
    }
    RunResult r = RunSteps(a, comm, AllreduceMode::kOverlap, source->get());
    out["loader_fed"] = {{"samples_per_s", r.samples_per_s},
                         {"stall_ms", r.stall_ms},
                         {"stall_fraction", r.stall_ms / r.step_ms},
                         {"store", a.store}};
    if (rank == 0) {
      std::printf("loader-fed ranks %d: %7.2f samples/s  stall %.2f ms/step (%.2f%% of the step)\n",
                  world, r.samples_per_s, r.stall_ms, 100.0 * r.stall_ms / r.step_ms);
    }
  }
  if (rank == 0) {
    std::printf("sgemm (Eigen, %s, %d threads): %.1f GFLOP/s at %lldx%lldx%lld, %.1f at 1024^3\n",
                GemmKernelName().c_str(), a.threads, gemm, static_cast<long long>(gemm_shape[0]),
                static_cast<long long>(gemm_shape[1]), static_cast<long long>(gemm_shape[2]),
                gemm_square);
    std::cout << out.dump() << std::endl;
  }
  return 0;
}
