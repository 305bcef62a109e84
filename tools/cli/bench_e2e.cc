// tilestage bench e2e: the whole path on real data in one run, as the MLPerf HPC data-staging
// analysis measures it, beside the tools users run today and the machine's limits.
//
//   tilestage bench e2e [--preset tiny|small|medium|demo] [--config FILE] [--out DIR] [--np 2]
//                       [--no-peers]
//
// The run itself is bench/e2e/e2e_run.h (phases, limits, results document, report); this file
// parses the arguments, finds the binary and the source tree, and prints the summary table.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "bench/e2e/e2e_config.h"
#include "bench/e2e/e2e_results.h"
#include "bench/e2e/e2e_run.h"
#include "bench/e2e/system_info.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

namespace fs = std::filesystem;

struct E2eArgs {
  std::string preset = "small";
  std::string config;
  std::string out = "build/e2e";
  int np = 0;  // 0: the preset's
  bool no_peers = false;
};

Status RunE2e(const E2eArgs& args) {
  TS_ASSIGN_OR_RETURN(bench::E2eConfig config, bench::PresetE2eConfig(args.preset));
  if (!args.config.empty()) TS_RETURN_IF_ERROR(bench::ApplyE2eConfigFile(args.config, &config));
  if (args.np > 0) config.np = args.np;
  if (args.no_peers) config.peers = false;
  bench::E2eRunPaths paths;
  std::error_code ec;
  paths.exe = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) return Internal("cannot read /proc/self/exe: ", ec.message());
  TS_ASSIGN_OR_RETURN(paths.root, bench::FindSourceRoot(paths.exe));
  paths.out = fs::absolute(args.out).lexically_normal().string();
  for (const auto& a : CommandLine()) paths.command += (paths.command.empty() ? "" : " ") + a;
  TS_ASSIGN_OR_RETURN(bench::E2eResults results, bench::RunE2eBenchmark(config, paths));
  std::fputs(bench::FormatE2eTable(results, config.preset, paths.out).c_str(), stdout);
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<E2eArgs>();
  CLI::App* cmd = group->add_subcommand(
      "e2e",
      "End to end on real data: ingest, stage (mpirun), train + eval (mpirun), peers, "
      "limits, data stalls; writes mllog.txt, results.json and the report");
  cmd->add_option("--preset", args->preset, "tiny, small, medium or demo")->capture_default_str();
  cmd->add_option("--config", args->config, "JSON object overriding the preset's settings");
  cmd->add_option("--out", args->out, "Output directory (its earlier e2e outputs are replaced)")
      ->capture_default_str();
  cmd->add_option("--np", args->np, "MPI ranks for staging and training (default: 2)");
  cmd->add_flag("--no-peers", args->no_peers, "Skip the Python peers");
  cmd->callback([args, exit_code] { *exit_code = Report(RunE2e(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
