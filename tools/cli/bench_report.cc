// tilestage bench report: turns the measured results of an end-to-end run (schema in
// bench/e2e/report.h) into report.json, report.md and SVG charts.
#include <iostream>

#include "bench/e2e/report.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct ReportArgs {
  std::string in;
  std::string out;
};

Status RunReport(const ReportArgs& args) {
  TS_ASSIGN_OR_RETURN(bench::E2eResults results, bench::ReadE2eResults(args.in));
  TS_RETURN_IF_ERROR(bench::WriteE2eReport(*LocalStorage(), args.out, results));
  std::cout << bench::E2eReportMarkdown(results) << "wrote " << args.out << "/report.json, "
            << args.out << "/report.md and SVG charts\n";
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = group->add_subcommand(
      "report", "Write the end-to-end report (JSON, Markdown, SVG charts) from a results JSON");
  cmd->add_option("--in", args->in, "Results JSON (schema tilestage-e2e-results/1)")->required();
  cmd->add_option("--out", args->out, "Directory for report.json, report.md and *.svg")
      ->required();
  cmd->callback([args, exit_code] { *exit_code = Report(RunReport(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
