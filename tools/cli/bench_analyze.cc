// tilestage bench analyze: the MLPerf HPC staging analysis of mllog files (staging time, time to
// train, staging share, epochs per run; medians with min-max per submission). Definitions in
// bench/e2e/staging_analysis.h and bench/MODEL.md. Tables, JSON or CSV go to stdout, warnings
// about odd runs and lines to stderr, so the output stays parseable.
#include <fstream>
#include <iostream>

#include "bench/e2e/report.h"
#include "bench/e2e/staging_analysis.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct AnalyzeArgs {
  std::vector<std::string> logs;
  std::vector<std::string> compare;
  std::string group_by = "submission";
  bool json = false;
  bool csv = false;
  bool runs = false;
  std::string svg;  // the staging-share chart, when given
};

Status RunAnalyze(const AnalyzeArgs& args) {
  if (args.json && args.csv) return InvalidArgument("--json and --csv are exclusive");
  bench::AnalyzeOptions options;
  TS_ASSIGN_OR_RETURN(options.group_by, bench::ParseGroupBy(args.group_by));
  options.compare = args.compare;
  TS_ASSIGN_OR_RETURN(std::vector<std::string> logs, bench::ExpandMlLogPaths(args.logs));
  TS_ASSIGN_OR_RETURN(bench::StagingAnalysis analysis, bench::AnalyzeMlLogFiles(logs, options));
  if (!args.svg.empty()) {
    std::ofstream out(args.svg, std::ios::trunc);
    out << bench::StagingShareSvg(analysis);
    out.close();
    if (!out) return IOError("--svg: cannot write ", args.svg);
  }
  for (const std::string& w : analysis.warnings) std::cerr << "warning: " << w << "\n";
  for (const bench::RunAnalysis& run : analysis.runs)
    for (const std::string& w : run.warnings) std::cerr << "warning: " << w << "\n";
  if (args.json) {
    std::cout << bench::StagingAnalysisToJson(analysis).dump(2) << "\n";
  } else if (args.csv) {
    std::cout << bench::StagingAnalysisToCsv(analysis, args.runs);
  } else {
    std::cout << bench::FormatStagingAnalysis(analysis, args.runs);
  }
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<AnalyzeArgs>();
  CLI::App* cmd = group->add_subcommand(
      "analyze", "Staging analysis of MLPerf logging files (:::MLLOG lines): per submission, "
                 "medians with min-max; odd runs are warnings, not errors");
  cmd->add_option("logs", args->logs,
                  "mllog files, or directories searched for result_*.txt, *.log and *.mllog "
                  "(other lines in the files are ignored)")
      ->required();
  cmd->add_option("--compare", args->compare,
                  "A tilestage run's mllog.txt to show beside the published submissions "
                  "(repeatable)");
  cmd->add_option("--group-by", args->group_by,
                  "Group runs by: submission (submitter, system, strong/weak, benchmark, round "
                  "from the path or the log), dir, file, platform (logged) or all")
      ->capture_default_str();
  cmd->add_option("--svg", args->svg,
                  "Also write a chart of each submission's staging share (tilestage runs "
                  "coloured apart) to this SVG file");
  cmd->add_flag("--runs", args->runs, "Also print (or, with --csv, print instead) one row per run");
  cmd->add_flag("--json", args->json, "Print JSON (runs and submissions) instead of tables");
  cmd->add_flag("--csv", args->csv, "Print CSV, one row per submission (per run with --runs)");
  cmd->callback([args, exit_code] { *exit_code = Report(RunAnalyze(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
