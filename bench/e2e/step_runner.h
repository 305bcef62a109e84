// Runs one step of the end-to-end benchmark as a child process: argv executed directly (no
// shell), its stdout captured (and handed line by line to a callback as it arrives), its stderr
// and command line kept as files beside the other steps' for a reader of the run afterwards.
//
// Thread-safety: RunStep may be called from several threads at once (each call owns its pipes,
// child and files; steps in one logs_dir need distinct names). The other functions are pure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/e2e/mllog.h"  // Json
#include "tiling/status.h"

namespace tilestage::bench {

struct StepOutput {
  double wall_s = 0;        // fork to exit, steady clock
  std::string out;          // everything the step wrote to stdout
  std::string stderr_path;  // <logs_dir>/<step>.stderr
};

// Called for each stdout line (without its newline) with its arrival time in wall-clock ms
// since the Unix epoch (MlLogger::NowMs), so a caller can place the line's events in an mllog.
using StepLineFn = std::function<void(const std::string& line, int64_t arrival_ms)>;

// Runs argv[0] (looked up on PATH) with argv, stderr to <logs_dir>/<step>.stderr and the command
// line to <logs_dir>/<step>.cmd (logs_dir must exist). Errors name the step and the command:
// InvalidArgument for an empty argv, NotFound when argv[0] cannot be executed (naming it and
// why), Internal for a non-zero exit or a signal (with the exit code and the tail of stderr),
// IOError when the log files cannot be created.
Result<StepOutput> RunStep(const std::string& step, const std::vector<std::string>& argv,
                           const std::string& logs_dir, const StepLineFn& on_line = {});

// The JSON document a `--json` step printed: it starts at the first line that opens with '{'
// (tools may print lines before it, such as `:::MLLOG {...}`). DataLoss names the step.
Result<Json> ParseStepJson(const std::string& step, const std::string& stdout_text);

// "mpirun [--allow-run-as-root] --oversubscribe --bind-to none -np N": the prefix MPI steps
// run under (root needs the flag in containers).
std::vector<std::string> MpirunPrefix(int np);

// argv as one shell-readable line (arguments with spaces quoted), for logs and errors.
std::string JoinArgs(const std::vector<std::string>& argv);

}  // namespace tilestage::bench
