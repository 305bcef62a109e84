// tilestage bench analyze: the MLPerf HPC staging analysis of mllog files (staging time, run time,
// staging/run, staging/epoch per run; medians per submission). Definitions in
// bench/e2e/staging_analysis.h and bench/MODEL.md.
#include <iostream>

#include "bench/e2e/staging_analysis.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct AnalyzeArgs {
  std::vector<std::string> logs;
  std::string group_by = "dir";
  bool json = false;
};

Status RunAnalyze(const AnalyzeArgs& args) {
  TS_ASSIGN_OR_RETURN(bench::GroupBy group_by, bench::ParseGroupBy(args.group_by));
  TS_ASSIGN_OR_RETURN(std::vector<std::string> logs, bench::ExpandMlLogPaths(args.logs));
  TS_ASSIGN_OR_RETURN(bench::StagingAnalysis analysis, bench::AnalyzeMlLogFiles(logs, group_by));
  if (args.json) {
    std::cout << bench::StagingAnalysisToJson(analysis).dump(2) << "\n";
  } else {
    std::cout << bench::FormatStagingAnalysis(analysis);
  }
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<AnalyzeArgs>();
  CLI::App* cmd = group->add_subcommand(
      "analyze", "Staging analysis of MLPerf logging files (:::MLLOG lines): per run and per "
                 "submission");
  cmd->add_option("logs", args->logs,
                  "mllog files, or directories searched for result_*.txt, *.log and *.mllog "
                  "(other lines in the files are ignored)")
      ->required();
  cmd->add_option("--group-by", args->group_by,
                  "Group runs into submissions by: dir (the log's directory), file, platform "
                  "(logged benchmark, org and platform) or all")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print JSON instead of tables");
  cmd->callback([args, exit_code] { *exit_code = Report(RunAnalyze(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
