// The `tilestage` command registry: each tools/cli/<name>.cc file registers its subcommand with
// a static TS_REGISTER_COMMAND, so adding a subcommand touches no other file. Registration runs
// before main(); the registry is not meant for use from other threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tiling/status.h"

namespace tilestage::cli {

// Adds the subcommand(s) to `root`; the callbacks set *exit_code.
using CommandSetup = std::function<void(CLI::App& root, int* exit_code)>;
bool RegisterCommand(CommandSetup setup);
const std::vector<CommandSetup>& RegisteredCommands();

// The parent subcommand `name` (e.g. "ingest", "bench"), created on first use.
CLI::App* GetOrAddGroup(CLI::App& root, const std::string& name, const std::string& description);

// Prints "tilestage: <code>: <message>" to stderr and returns the process exit code (0 if ok).
int Report(const Status& status);
// The full command line, for provenance.
const std::vector<std::string>& CommandLine();
void SetCommandLine(int argc, char** argv);

// "256MiB", "4M", "1GiB", "4096" -> bytes.
Result<uint64_t> ParseByteSize(const std::string& text);
// "3,64,64" -> {3, 64, 64}
Result<std::vector<int64_t>> ParseShape(const std::string& text);
// True when stderr is a terminal (progress lines are shown only then).
bool StderrIsTerminal();

}  // namespace tilestage::cli

#define TS_REGISTER_COMMAND(fn) \
  static const bool TS_CONCAT(ts_registered_, __LINE__) = ::tilestage::cli::RegisterCommand(fn)
