#include "bench/e2e/staging_bench.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "bench/e2e/page_cache.h"
#include "bench/e2e/progress.h"
#include "loaders/load_job.h"
#include "loaders/stager.h"
#include "tiling/manifest.h"
#include "tiling/storage.h"
#include "trainer/train_job.h"

namespace tilestage::bench {

namespace fs = std::filesystem;

namespace {

// The staged copy's folder under --node-local: fixed, so that a rerun replaces its own copy
// instead of resuming from it (a resumed staging would time nothing).
constexpr char kStagedDirName[] = "tilestage_bench_staging";

// Whether `inner` is `outer` or lies below it (after resolving both as far as they exist).
bool Within(const std::string& inner, const std::string& outer) {
  std::error_code ec;
  const fs::path in = fs::weakly_canonical(fs::absolute(inner), ec);
  const fs::path out = fs::weakly_canonical(fs::absolute(outer), ec);
  auto [out_end, in_at] = std::mismatch(out.begin(), out.end(), in.begin(), in.end());
  return out_end == out.end() || (std::next(out_end) == out.end() && out_end->empty());
}

Status CheckOptions(const StagingBenchOptions& o) {
  if (o.store.empty()) return InvalidArgument("bench staging needs a source store (--store)");
  if (o.node_local.empty())
    return InvalidArgument("bench staging needs a node-local directory (--node-local)");
  if (o.out.empty()) return InvalidArgument("bench staging needs an output folder (--out)");
  if (Within(o.node_local, o.store))
    return InvalidArgument("--node-local ", o.node_local, " lies inside the store ", o.store,
                           ": the staged copy would become part of what it copies");
  if (o.epochs == 0) return InvalidArgument("--epochs must be at least 1, got 0");
  if (!(o.compute_ms >= 0) || !std::isfinite(o.compute_ms))
    return InvalidArgument("--compute-ms must be a number >= 0, got ", o.compute_ms);
  if (o.batch < 1) return InvalidArgument("--batch must be at least 1, got ", o.batch);
  if (o.train && o.compute_ms > 0)
    return InvalidArgument("--compute-ms ", o.compute_ms,
                           " and --train are exclusive: the step is emulated or real");
  for (int n : o.model_nodes)
    if (n < 1) return InvalidArgument("--nodes: node counts must be >= 1, got ", n);
  if (!o.model_nodes.empty() && !o.train && !(o.compute_ms > 0))
    return InvalidArgument("--nodes needs the training rate: --train or --compute-ms > 0, got ",
                           o.compute_ms);
  for (double bw : {o.fs_aggregate_bytes_per_s, o.fs_node_bytes_per_s, o.local_read_bytes_per_s,
                    o.local_write_bytes_per_s})
    if (!(bw >= 0) || !std::isfinite(bw))
      return InvalidArgument("bandwidths must be >= 0 (0: measured), got ", bw);
  return Status::Ok();
}

// This rank's node: the node communicator, the node's number as the stager numbers it (by its
// leader's rank among the leaders) and the node count.
struct NodeLayout {
  std::unique_ptr<Communicator> node;
  int index = 0, count = 0;
  bool leader() const { return node->rank() == 0; }
};

Result<NodeLayout> FindNodes(Communicator& world) {
  NodeLayout layout;
  TS_ASSIGN_OR_RETURN(layout.node, world.SplitByNode());
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> leaders,
                      world.Split(layout.leader() ? 0 : -1, world.rank()));
  std::string ids = leaders ? StrCat(leaders->rank(), " ", leaders->size()) : std::string();
  TS_RETURN_IF_ERROR(layout.node->BroadcastBytes(&ids, 0));
  std::istringstream(ids) >> layout.index >> layout.count;
  return layout;
}

// Node leaders drop `files` (their node's) from the page cache; world rank 0 records what mincore
// saw in its node's cache just before and after.
Result<EvictionRecord> Evict(Communicator& world, const NodeLayout& layout, const std::string& what,
                             const std::vector<std::string>& files) {
  EvictionRecord record{what, files.size(), TotalBytes(files)};
  Status status;
  if (world.rank() == 0) {
    auto before = ResidentBytes(files);
    status = before.status();
    if (before.ok()) record.resident_before_bytes = *before;
  }
  if (status.ok() && layout.leader()) status = EvictFromPageCache(files);
  if (status.ok() && world.rank() == 0) {
    auto after = ResidentBytes(files);
    status = after.status();
    if (after.ok()) record.resident_after_bytes = *after;
  }
  TS_RETURN_IF_ERROR(AgreeStatus(world, status));
  return record;
}

// One epoch of `store` through the loader job with the compute stand-in; the figures on world
// rank 0.
Result<EpochMeasurement> MeasureEpoch(Communicator& world, const StagingBenchOptions& o,
                                      const std::string& strategy, const std::string& store,
                                      bool node_local, double compute_ms) {
  LoadJobOptions job;
  job.store = store;
  job.epochs = 1;
  job.compute_ms = compute_ms;
  job.node_local = node_local;
  job.loader.batch_size = o.batch;
  job.loader.seed = o.seed;
  job.loader.threads = o.threads;
  auto loaded = RunLoadJob(world, job);
  // A loading error comes back on the rank that met it only.
  TS_RETURN_IF_ERROR(AgreeStatus(world, loaded.status()));
  EpochMeasurement m;
  m.strategy = strategy;
  m.store = store;
  if (world.rank() != 0) return m;
  const nlohmann::json& report = loaded->report;
  m.samples = report.at("samples").get<uint64_t>();
  m.wall_s = report.at("wall_s").get<double>();
  for (const auto& r : report.at("per_rank")) {
    m.batches += r.at("batches").get<uint64_t>();
    m.stored_bytes_read += r.at("stored_bytes_read").get<uint64_t>();
    m.compute_s = std::max(m.compute_s, r.at("compute_s").get<double>());
    m.stall_s = std::max(m.stall_s, r.at("wait_s_total").get<double>());
  }
  m.start_ms = loaded->start_ms;
  m.stop_ms = m.start_ms + std::llround(m.wall_s * 1e3);
  return m;
}

// One epoch of `store` with the real training step (the trainer's job, no checkpoints or logs of
// its own); the figures from rank 0's JSONL records: the epoch runs from its first step's start to
// its epoch record (evaluation included, as MLPerf's epochs do), model set-up left out.
Result<EpochMeasurement> MeasureTrainEpoch(Communicator& world, const StagingBenchOptions& o,
                                           const std::string& strategy, const std::string& store) {
  trainer::TrainJobOptions job = *o.train;
  job.store = store;
  job.epochs = 1;
  job.max_steps = -1;
  job.json = "-";
  job.mllog.clear();
  job.checkpoint_dir.clear();
  job.checkpoint_every = 0;
  job.resume = false;
  job.log_every = 0;
  std::ostringstream records, progress;
  TS_RETURN_IF_ERROR(AgreeStatus(world, trainer::RunTrainJob(job, world, records, progress)));
  EpochMeasurement m;
  m.strategy = strategy;
  m.store = store;
  if (world.rank() != 0) return m;
  std::istringstream lines(records.str());
  for (std::string line; std::getline(lines, line);) {
    const Json r = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!r.is_object()) continue;
    const std::string type = r.value("type", "");
    const int64_t time_ms = r.value("time_ms", int64_t(0));
    if (type == "step") {
      const double step_ms = r.value("step_ms", 0.0), stall_ms = r.value("stall_ms", 0.0);
      if (m.batches++ == 0) m.start_ms = time_ms - std::llround(step_ms);
      m.samples += uint64_t(job.batch);
      m.stall_s += stall_ms / 1e3;
      m.compute_s += (step_ms - stall_ms) / 1e3;
    } else if (type == "epoch") {
      m.stop_ms = time_ms;
    }
  }
  if (m.batches == 0 || m.stop_ms == 0)
    return DataLoss("training on ", store, " wrote no step or epoch record");
  m.wall_s = double(m.stop_ms - m.start_ms) / 1e3;
  return m;
}

// Node leaders remove their node's staged copy (ours: kStagedDirName).
Status RemoveStagedCopy(Communicator& world, const NodeLayout& layout, const std::string& dest) {
  Status status;
  if (layout.leader()) {
    std::error_code ec;
    fs::remove_all(dest, ec);
    if (ec) status = IOError("cannot remove the staged copy ", dest, ": ", ec.message());
  }
  return AgreeStatus(world, status);
}

// `bench model`'s inputs: the sizes and rates measured here, per node, and the bandwidths given
// (or else measured here: the stager's source read rate as one node's file-system bandwidth, the
// aggregate as that times the nodes measured, the stager's write rate and the raw cold read of
// the node-local copy as node-local bandwidths).
ModelParams MeasuredModelParams(const StagingBench& b) {
  const StagingBenchOptions& o = b.options;
  const double nodes = b.nodes;
  const double stager_node_rate = b.staging_s > 0 ? b.staged_bytes / nodes / b.staging_s : 0;
  ModelParams p;
  p.dataset_bytes = double(b.store_bytes);
  p.samples = double(b.records);
  p.epochs = double(o.epochs);
  p.mode = StagingMode::kPartition;
  p.staging_read_bytes_per_s = stager_node_rate;
  p.staging_write_bytes_per_s = stager_node_rate;
  p.loader_samples_per_s = b.loader_samples_per_s / nodes;
  p.train_samples_per_s = b.train_samples_per_s / nodes;
  p.fs_node_bytes_per_s = o.fs_node_bytes_per_s > 0 ? o.fs_node_bytes_per_s : stager_node_rate;
  p.fs_aggregate_bytes_per_s =
      o.fs_aggregate_bytes_per_s > 0 ? o.fs_aggregate_bytes_per_s : p.fs_node_bytes_per_s * nodes;
  p.local_write_bytes_per_s =
      o.local_write_bytes_per_s > 0 ? o.local_write_bytes_per_s : stager_node_rate;
  p.local_read_bytes_per_s =
      o.local_read_bytes_per_s > 0 ? o.local_read_bytes_per_s : b.local_raw_read_bytes_per_s;
  return p;
}

// One strategy's run as MLPerf logs a training run: run_start, the staging events (staged only),
// the measured epoch right after (staging, or the run's start), then the remaining epochs
// projected from it, run_stop. Written through the one MLLOG writer (tiling/mllog.h).
Status WriteStrategyLog(const std::string& path, const StagingBench& b,
                        const EpochMeasurement& epoch, const std::vector<MlEvent>& staging) {
  std::error_code ec;
  fs::remove(path, ec);  // OpenFile appends; one run per file
  TS_ASSIGN_OR_RETURN(std::unique_ptr<MlLogger> log, MlLogger::OpenFile(path));
  const bool staged = !staging.empty();
  const int64_t run_start_ms = staged ? b.staging_start_ms : epoch.start_ms;
  const Json run_meta = {{"strategy", epoch.strategy}, {"source", b.options.store}};
  std::vector<Result<MlEvent>> events;
  events.push_back(
      MakeMlEvent(MlEventType::kIntervalStart, mlkey::kRunStart, nullptr, run_start_ms, run_meta));
  events.push_back(
      MakeMlEvent(MlEventType::kPointInTime, mlkey::kNumberOfNodes, b.nodes, run_start_ms));
  events.push_back(
      MakeMlEvent(MlEventType::kPointInTime, mlkey::kTrainSamples, b.records, run_start_ms));
  for (const MlEvent& e : staging) events.push_back(e);
  const int64_t epoch_ms = epoch.stop_ms - epoch.start_ms;
  int64_t t = staged ? b.staging_stop_ms : epoch.start_ms;
  for (uint64_t k = 1; k <= b.options.epochs; ++k, t += epoch_ms) {
    Json meta = {{mlkey::kEpochNum, k}};
    meta[k == 1 ? "measured" : "projected"] = true;
    events.push_back(
        MakeMlEvent(MlEventType::kIntervalStart, mlkey::kEpochStart, nullptr, t, meta));
    events.push_back(
        MakeMlEvent(MlEventType::kIntervalEnd, mlkey::kEpochStop, nullptr, t + epoch_ms, meta));
  }
  events.push_back(MakeMlEvent(MlEventType::kIntervalEnd, mlkey::kRunStop, nullptr, t,
                               {{"status", "success"}, {"strategy", epoch.strategy}}));
  for (const auto& event : events) {
    TS_RETURN_IF_ERROR(event.status());
    TS_RETURN_IF_ERROR(log->Log(*event));
  }
  return Status::Ok();
}

// Whole or not at all, as the e2e report's files are written.
Status WriteText(const std::string& path, const std::string& text) {
  return LocalStorage()->WriteAtomic(
      path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

std::string Seconds(double s) { return FormatFixed(s, s < 10 ? 3 : 1) + " s"; }
std::string Percent(double share) { return FormatFixed(100 * share, 1) + "%"; }

}  // namespace

Result<StagingAnswer> ComputeStagingAnswer(double staging_s, double in_place_epoch_s,
                                           double node_local_epoch_s, uint64_t epochs) {
  if (epochs == 0) return InvalidArgument("epochs must be at least 1, got 0");
  for (auto [name, v] : {std::pair{"staging_s", staging_s},
                         {"in_place_epoch_s", in_place_epoch_s},
                         {"node_local_epoch_s", node_local_epoch_s}})
    if (!(v >= 0) || !std::isfinite(v))
      return InvalidArgument(name, " must be a number >= 0, got ", v);
  StagingAnswer a;
  a.epochs = epochs;
  a.staging_s = staging_s;
  a.in_place_epoch_s = in_place_epoch_s;
  a.node_local_epoch_s = node_local_epoch_s;
  a.time_with_staging_s = staging_s + double(epochs) * node_local_epoch_s;
  a.time_in_place_s = double(epochs) * in_place_epoch_s;
  a.staging_share = a.time_with_staging_s > 0 ? staging_s / a.time_with_staging_s : 0;
  a.staging_per_epoch = node_local_epoch_s > 0 ? staging_s / node_local_epoch_s : 0;
  const double saved_per_epoch_s = in_place_epoch_s - node_local_epoch_s;
  if (saved_per_epoch_s > 0) {
    a.breakeven_epochs = staging_s / saved_per_epoch_s;
    // Strictly faster: the first whole epoch count past the break-even point.
    a.first_winning_epochs = uint64_t(std::floor(*a.breakeven_epochs)) + 1;
  }
  a.staging_pays_off = a.time_with_staging_s < a.time_in_place_s;
  return a;
}

Json EpochMeasurement::ToJson() const {
  return Json{{"strategy", strategy},
              {"store", store},
              {"samples", samples},
              {"batches", batches},
              {"stored_bytes_read", stored_bytes_read},
              {"wall_s", wall_s},
              {"compute_s", compute_s},
              {"stall_s", stall_s},
              {"stall_share", stall_share()},
              {"start_ms", start_ms},
              {"stop_ms", stop_ms}};
}

Json StagingAnswer::ToJson() const {
  Json j = {{"epochs", epochs},
            {"staging_s", staging_s},
            {"in_place_epoch_s", in_place_epoch_s},
            {"node_local_epoch_s", node_local_epoch_s},
            {"time_with_staging_s", time_with_staging_s},
            {"time_in_place_s", time_in_place_s},
            {"staging_share", staging_share},
            {"staging_per_epoch", staging_per_epoch},
            {"breakeven_epochs", nullptr},
            {"first_winning_epochs", nullptr},
            {"staging_pays_off", staging_pays_off}};
  if (breakeven_epochs) j["breakeven_epochs"] = *breakeven_epochs;
  if (first_winning_epochs) j["first_winning_epochs"] = *first_winning_epochs;
  return j;
}

Json StagingBench::ToJson() const {
  Json evictions_json = Json::array();
  for (const EvictionRecord& e : evictions) {
    evictions_json.push_back({{"what", e.what},
                              {"files", e.files},
                              {"bytes", e.bytes},
                              {"resident_before_bytes", e.resident_before_bytes},
                              {"resident_after_bytes", e.resident_after_bytes}});
  }
  Json j = {{"store", options.store},
            {"node_local", options.node_local},
            {"ranks", ranks},
            {"nodes", nodes},
            {"store_bytes", store_bytes},
            {"records", records},
            {"batch", options.batch},
            {"compute_ms", options.compute_ms},
            {"step", step},
            {"train_samples_per_s", train_samples_per_s},
            {"staging",
             {{"seconds", staging_s},
              {"staged_bytes", staged_bytes},
              {"start_ms", staging_start_ms},
              {"stop_ms", staging_stop_ms},
              {"staged_store", staged_store}}},
            {"in_place", in_place.ToJson()},
            {"node_local_epoch", node_local.ToJson()},
            {"loader_samples_per_s", loader_samples_per_s},
            {"local_raw_read_bytes_per_s", local_raw_read_bytes_per_s},
            {"evictions", evictions_json},
            {"answer", answer.ToJson()},
            {"mllog", {{"staged", staged_mllog}, {"in_place", in_place_mllog}}},
            {"chart", chart}};
  if (model_params) j["model"] = ModelToJson(*model_params, model);
  return j;
}

Result<StagingBench> RunStagingBench(Communicator& world, const StagingBenchOptions& options) {
  TS_RETURN_IF_ERROR(AgreeStatus(world, CheckOptions(options)));
  const bool root = world.rank() == 0;
  const Progress progress("bench staging");
  auto say = [&](const std::string& text) {
    if (root) progress.Line(text);
  };
  TS_ASSIGN_OR_RETURN(NodeLayout layout, FindNodes(world));
  StagingBench b;
  b.options = options;
  if (options.train) b.options.batch = std::max<int64_t>(1, options.train->batch / world.size());
  const StagingBenchOptions& o = b.options;
  b.ranks = world.size();
  b.nodes = layout.count;
  b.step = o.train ? StrCat("the training step of tilestage train --model ", o.train->model,
                            ", global batch ", o.train->batch)
                   : StrCat(FormatFixed(o.compute_ms, 1), " ms compute per batch of ", o.batch,
                            " per rank (emulated)");
  auto manifest = ReadManifest(*LocalStorage(), o.store);
  TS_RETURN_IF_ERROR(AgreeStatus(world, manifest.status()));
  b.store_bytes = manifest->TotalBytes();
  b.records = manifest->TotalRecords();
  if (root) {
    std::error_code ec;
    fs::create_directories(o.out, ec);
    Status status;
    if (ec) status = IOError("cannot create the output folder ", o.out, ": ", ec.message());
    TS_RETURN_IF_ERROR(AgreeStatus(world, status));
  } else {
    TS_RETURN_IF_ERROR(AgreeStatus(world, Status::Ok()));
  }
  const std::vector<std::string> source_files = FilesUnder(o.store);
  say(StrCat(FormatFixed(b.store_bytes / 1e6, 1), " MB, ", b.records, " records, ", b.ranks,
             " rank(s) on ", b.nodes, " node(s), ", b.step));
  // An epoch with the step asked for: the real one, or the stand-in.
  auto epoch = [&](const std::string& strategy, const std::string& store, bool node_local) {
    return o.train ? MeasureTrainEpoch(world, o, strategy, store)
                   : MeasureEpoch(world, o, strategy, store, node_local, o.compute_ms);
  };

  say("epoch read in place from " + o.store + " (cold)");
  TS_ASSIGN_OR_RETURN(b.evictions.emplace_back(),
                      Evict(world, layout, "source before the in-place epoch", source_files));
  TS_ASSIGN_OR_RETURN(b.in_place, epoch("in_place", o.store, /*node_local=*/false));

  say("staging to " + o.node_local + " (cold source)");
  const std::string pattern = o.node_local + "/" + kStagedDirName;
  const std::string dest = StageDestination(pattern, layout.index);
  TS_RETURN_IF_ERROR(RemoveStagedCopy(world, layout, dest));
  TS_ASSIGN_OR_RETURN(b.evictions.emplace_back(),
                      Evict(world, layout, "source before staging", source_files));
  StageOptions stage;
  stage.from = o.store;
  stage.to = pattern;
  stage.threads = o.threads;
  TS_ASSIGN_OR_RETURN(const StageReport staged, StageStore(world, stage));
  b.staging_s = staged.seconds;
  b.staged_bytes = staged.bytes_written();
  b.staging_start_ms = int64_t(staged.start_ms);
  b.staging_stop_ms = int64_t(staged.stop_ms);
  b.staged_store = dest;

  say("epoch from the node-local copy " + dest + " (cold)");
  const std::vector<std::string> local_files = FilesUnder(dest);
  TS_ASSIGN_OR_RETURN(b.evictions.emplace_back(),
                      Evict(world, layout, "node-local copy before its epoch", local_files));
  TS_ASSIGN_OR_RETURN(b.node_local, epoch("node_local", dest, /*node_local=*/true));

  say("the loader alone and a raw read of the node-local copy (the model's rates)");
  TS_ASSIGN_OR_RETURN(const EpochMeasurement loader_only,
                      MeasureEpoch(world, o, "loader", dest, /*node_local=*/true, 0));
  if (loader_only.wall_s > 0) b.loader_samples_per_s = loader_only.samples / loader_only.wall_s;
  TS_ASSIGN_OR_RETURN(b.evictions.emplace_back(),
                      Evict(world, layout, "node-local copy before the raw read", local_files));
  Result<double> raw_s = 0.0;
  if (layout.leader()) raw_s = ReadAllSeconds(local_files);
  TS_RETURN_IF_ERROR(AgreeStatus(world, raw_s.status()));
  if (*raw_s > 0) b.local_raw_read_bytes_per_s = TotalBytes(local_files) / *raw_s;
  if (!o.keep_staged) TS_RETURN_IF_ERROR(RemoveStagedCopy(world, layout, dest));
  if (!root) return b;

  if (o.train && b.node_local.compute_s > 0) {
    b.train_samples_per_s = b.node_local.samples / b.node_local.compute_s;
  } else if (o.compute_ms > 0) {
    b.train_samples_per_s = double(b.ranks) * double(o.batch) * 1e3 / o.compute_ms;
  }
  TS_ASSIGN_OR_RETURN(b.answer, ComputeStagingAnswer(b.staging_s, b.in_place.wall_s,
                                                     b.node_local.wall_s, o.epochs));
  if (!o.model_nodes.empty()) {
    b.model_params = MeasuredModelParams(b);
    TS_ASSIGN_OR_RETURN(b.model, Predict(*b.model_params, o.model_nodes));
  }
  b.staged_mllog = o.out + "/staged.mllog";
  b.in_place_mllog = o.out + "/in_place.mllog";
  TS_ASSIGN_OR_RETURN(const std::vector<MlEvent> staging_events, StagingMlEvents(staged, o.store));
  TS_RETURN_IF_ERROR(WriteStrategyLog(b.staged_mllog, b, b.node_local, staging_events));
  TS_RETURN_IF_ERROR(WriteStrategyLog(b.in_place_mllog, b, b.in_place, {}));
  b.chart = o.out + "/time.svg";
  TS_RETURN_IF_ERROR(WriteText(b.chart, StagingBenchSvg(b)));
  TS_RETURN_IF_ERROR(WriteText(o.out + "/results.json", b.ToJson().dump(2) + "\n"));
  return b;
}

std::string StagingBenchSvg(const StagingBench& b) {
  const StagingAnswer& a = b.answer;
  const double n = double(a.epochs);
  auto epochs = [&](const EpochMeasurement& m) {
    return std::vector<std::pair<std::string, double>>{
        {"compute", n * m.compute_s},
        {"data stall", n * m.stall_s},
        {"rest of the epoch", n * std::max(0.0, m.wall_s - m.compute_s - m.stall_s)}};
  };
  TimeBar staged{"with staging", {{"staging", b.staging_s}}};
  for (auto& part : epochs(b.node_local)) staged.parts.push_back(part);
  const TimeBar in_place{"read in place", epochs(b.in_place)};
  const std::string breakeven =
      a.breakeven_epochs ? "break-even " + FormatFixed(*a.breakeven_epochs, 1) + " epochs"
                         : "staging never breaks even";
  return StackedBarsSvg(StrCat("Where the time goes: ", a.epochs, " epoch(s), ", breakeven),
                        {staged, in_place});
}

std::string FormatStagingBench(const StagingBench& b) {
  const StagingAnswer& a = b.answer;
  std::ostringstream os;
  os << "Should I stage? " << b.options.store << " (" << FormatFixed(b.store_bytes / 1e6, 1)
     << " MB, " << b.records << " records) to " << b.options.node_local << ", " << b.ranks
     << " rank(s) on " << b.nodes << " node(s), " << b.step << "\n\n";
  os << std::left << std::setw(26) << "measured" << std::right << std::setw(10) << "time"
     << std::setw(10) << "compute" << std::setw(10) << "stall" << std::setw(13) << "stall share"
     << "\n";
  os << std::left << std::setw(26) << "  staging (cold source)" << std::right << std::setw(10)
     << Seconds(b.staging_s) << "\n";
  for (const EpochMeasurement* m : {&b.in_place, &b.node_local}) {
    os << std::left << std::setw(26)
       << (m == &b.in_place ? "  epoch in place (cold)" : "  epoch node-local (cold)") << std::right
       << std::setw(10) << Seconds(m->wall_s) << std::setw(10) << Seconds(m->compute_s)
       << std::setw(10) << Seconds(m->stall_s) << std::setw(13) << Percent(m->stall_share())
       << "\n";
  }
  os << "\nfor " << a.epochs << " epoch(s):\n";
  os << "  time to train with staging:     " << Seconds(a.time_with_staging_s) << " (staging "
     << Percent(a.staging_share) << " of it, staging/epoch " << FormatFixed(a.staging_per_epoch, 2)
     << ")\n";
  os << "  time to train reading in place: " << Seconds(a.time_in_place_s) << "\n";
  if (a.first_winning_epochs) {
    os << "  break-even: " << FormatFixed(*a.breakeven_epochs, 2) << " epochs; staging wins from "
       << *a.first_winning_epochs << " epoch(s) on\n";
  } else {
    os << "  break-even: never (an epoch from node-local storage is not faster than in place)\n";
  }
  os << "  answer: " << (a.staging_pays_off ? "stage" : "read in place") << " for " << a.epochs
     << " epoch(s)\n";
  os << "\nmllog: " << b.staged_mllog << ", " << b.in_place_mllog
     << " (tilestage bench analyze <published logs> --compare <each>)\n"
     << "chart: " << b.chart << "\n";
  if (b.model_params) {
    os << "\nbench model at N nodes (inputs measured here unless given):\n"
       << FormatModelTable(*b.model_params, b.model);
  }
  return os.str();
}

}  // namespace tilestage::bench
