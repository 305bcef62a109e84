#include "bench/e2e/e2e_run.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench/e2e/e2e_results.h"
#include "bench/e2e/limits.h"
#include "bench/e2e/page_cache.h"
#include "bench/e2e/phases.h"
#include "bench/e2e/staging_analysis.h"
#include "bench/e2e/system_info.h"
#include "tiling/storage.h"

namespace tilestage::bench {
namespace {

namespace fs = std::filesystem;

// Removes only what an earlier run wrote, so a mistaken --out loses nothing else.
Status PrepareOutDir(const std::string& out, const std::string& steps_dir) {
  std::error_code ec;
  for (const char* name : {"steps", "inputs", "stores", "node_local", "peers", "checkpoints",
                           "report", "mllog.txt", "results.json"}) {
    fs::remove_all(fs::path(out) / name, ec);
    if (ec) return IOError("--out ", out, ": cannot remove ", name, ": ", ec.message());
  }
  fs::create_directories(steps_dir, ec);
  if (ec) return IOError("--out ", out, ": cannot create: ", ec.message());
  return Status::Ok();
}

// init_start … init_stop: the limits and ingest. run_start … run_stop: staging and training.
// The log is closed before the caller analyses it.
Status RunLoggedPhases(E2eRunContext& ctx, const Json& system, E2ePhaseResults* r) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<MlLogger> log, MlLogger::OpenFile(ctx.MlLogPath()));
  TS_RETURN_IF_ERROR(log->Event(mlkey::kSubmissionBenchmark, "tilestage-e2e"));
  TS_RETURN_IF_ERROR(log->Event(mlkey::kSubmissionOrg, "tilestage"));
  TS_RETURN_IF_ERROR(log->Event(mlkey::kSubmissionPlatform, system["host"]));
  TS_RETURN_IF_ERROR(log->Event(mlkey::kNumberOfNodes, 1));
  TS_RETURN_IF_ERROR(log->Start(mlkey::kInitStart));

  ctx.progress.Line("limits: memcpy and the trainer's sgemm");
  r->limits.memcpy_gb_per_s = MemcpyGbPerS();
  r->limits.sgemm_gflop_per_s = SgemmGflops();
  ctx.progress.Line("  memcpy " + FormatFixed(r->limits.memcpy_gb_per_s, 2) + " GB/s, sgemm " +
                    FormatFixed(r->limits.sgemm_gflop_per_s, 1) + " GFLOP/s");
  TS_ASSIGN_OR_RETURN(r->ingest, RunIngestPhase(ctx));
  TS_RETURN_IF_ERROR(log->End(mlkey::kInitStop));

  TS_RETURN_IF_ERROR(log->Start(mlkey::kRunStart));
  TS_ASSIGN_OR_RETURN(r->staging, RunStagingPhase(ctx, *log));
  TS_ASSIGN_OR_RETURN(r->train, RunTrainPhase(ctx, r->staging, *log));
  TS_RETURN_IF_ERROR(log->End(mlkey::kRunStop, nullptr, Json{{"status", "success"}}));
  return Status::Ok();
}

Json Provenance(const E2eRunContext& ctx, const E2eRunPaths& paths, const IngestResult& ingest) {
  Json p = Json::object();
  p["command"] = paths.command;
  p["config"] = ctx.config.ToJson();
  p["time_utc"] = NowUtc();
  p["tilestage_binary"] = ctx.exe;
  p["source_root"] = ctx.root;
  p["git"] = CommandFirstLine({"git", "-C", ctx.root, "describe", "--always", "--dirty"});
  p["inputs"] = ingest.AllInputs();
  p["mllog"] = ctx.MlLogPath();
  p["steps_dir"] = ctx.StepsDir();
  return p;
}

}  // namespace

Result<E2eResults> RunE2eBenchmark(const E2eConfig& config, const E2eRunPaths& paths) {
  if (paths.out.empty() || paths.out == "/") {
    return InvalidArgument("--out ", paths.out, ": refusing to use /");
  }
  E2eRunContext ctx{config, paths.out, paths.root, paths.exe, Progress()};
  const CoreUseWatch watch;
  TS_RETURN_IF_ERROR(PrepareOutDir(ctx.out, ctx.StepsDir()));
  ctx.progress.Line("tilestage bench e2e --preset " + config.preset + " -> " + ctx.out + " (np " +
                    std::to_string(config.np) + (config.peers ? ", with peers" : ", no peers") +
                    ")");
  const Json system = SystemInfo();
  E2ePhaseResults r;
  TS_RETURN_IF_ERROR(RunLoggedPhases(ctx, system, &r));
  TS_ASSIGN_OR_RETURN(r.peer_staging, RunStagingPeerPhase(ctx));
  TS_ASSIGN_OR_RETURN(r.limits.read,
                      MeasureReadLimits(FilesUnder(r.staging.staged), r.ingest.AllInputs()));
  TS_ASSIGN_OR_RETURN(r.loader, RunLoaderPhase(ctx, r.staging, r.train));
  if (config.peers) {
    TS_ASSIGN_OR_RETURN(r.peer_ingest, RunPeerIngestPhase(ctx, r.ingest));
  }
  TS_ASSIGN_OR_RETURN(r.stalls, RunDataStallPhase(ctx, r.staging, r.train));

  const std::string mllog = ctx.MlLogPath();
  TS_ASSIGN_OR_RETURN(StagingAnalysis analysis, AnalyzeMlLogFiles({mllog}, GroupBy::kFile));
  if (analysis.runs.size() != 1) {
    return DataLoss(mllog, ": expected one run, found ", analysis.runs.size());
  }
  Json end_system = SystemInfo();
  const Json& core_use = end_system["core_use"] = watch.Finish();
  char load[200];
  std::snprintf(load, sizeof(load),
                "load average before %s, after %s; other processes used %.1f CPU s in %.0f s "
                "(%.2f cores)",
                core_use["load_average_before"].get<std::string>().c_str(),
                core_use["load_average_after"].get<std::string>().c_str(),
                core_use["others_cpu_s"].get<double>(), core_use["wall_s"].get<double>(),
                core_use["others_cores"].get<double>());
  ctx.progress.Line(load);
  if (!core_use["warning"].is_null()) {
    ctx.progress.Line("WARNING: " + core_use["warning"].get<std::string>());
  }
  const Json results = E2eResultsJson(r, end_system, Provenance(ctx, paths, r.ingest),
                                      TimeToTrainResultsJson(analysis.runs[0]), config.peers);
  const std::string results_path = ctx.out + "/results.json";
  {
    std::ofstream f(results_path);
    f << results.dump(2) << "\n";
    if (!f) return IOError("cannot write ", results_path);
  }
  TS_ASSIGN_OR_RETURN(E2eResults parsed, E2eResultsFromJson(results, results_path));
  TS_RETURN_IF_ERROR(WriteE2eReport(*LocalStorage(), ctx.out + "/report", parsed));
  return parsed;
}

}  // namespace tilestage::bench
