// The `tilestage train` options, shared by `train` (which adds them to its command) and
// `bench staging --train` (which parses a training configuration from one string), so that both
// read a training configuration the same way.
//
// Thread-safety: the functions are called from the main thread while the CLI is set up or parses.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "tiling/status.h"
#include "trainer/train_job.h"

namespace tilestage::cli {

struct TrainArgs {
  trainer::TrainJobOptions job;
  std::string mem_budget = "1GiB";
  std::string crop;  // "H,W"
};

// Adds every training option to `cmd`, bound to *args (which must outlive the parse), and
// returns the --store option (the caller decides whether it is required).
CLI::Option* AddTrainOptions(CLI::App* cmd, TrainArgs* args);

// After parsing: the byte and shape options into the job. InvalidArgument naming the option.
Status FinishTrainArgs(TrainArgs* args);

// The job that `tilestage train <text>` would run (text holds options only; --store may be left
// out). InvalidArgument naming `flag` and CLI11's message for options that do not parse.
Result<trainer::TrainJobOptions> ParseTrainArgs(const std::string& flag, const std::string& text);

}  // namespace tilestage::cli
