// The MLPerf HPC staging analysis of mllog files: for every run, how long staging took, how long
// the run took, and their ratios; for every submission (a group of runs), the medians. This is
// what `tilestage bench analyze` prints. Pure functions over parsed events; thread-safe.
//
// Definitions (the same in the table, the JSON and bench/MODEL.md):
// - A run is a run_start → run_stop pair. Events are split by instance first (metadata
//   "instance_id" plus the namespace), so a weak-scaling log holding several concurrent training
//   instances yields one run per instance. run_s = (run_stop.time_ms - run_start.time_ms) / 1000:
//   the MLPerf time-to-train of that run.
// - staging_s is the sum of the run's staging_start → staging_stop intervals (from timestamps).
//   When no interval was logged but a staging duration was (a "staging_duration" event whose
//   value is seconds, or a "staging_duration" metadata field of staging_stop as NVIDIA's
//   CosmoFlow logs it), that duration is used; `staging_source` says which. The logged duration is
//   reported beside the interval either way.
// - An epoch is an epoch_start → epoch_stop pair (matched by metadata epoch_num when present);
//   mean_epoch_s is their mean. It includes whatever the benchmark logs inside the epoch interval
//   (CosmoFlow and DeepCAM evaluate inside it).
// - staging_per_run = staging_s / run_s; staging_per_epoch = staging_s / mean_epoch_s.
// - The time-to-train split assigns every instant of the run to one category, by priority:
//   staging, then evaluation (eval_start → eval_stop), then training (inside an epoch), then other
//   (initialisation inside the run, gaps between epochs, the tail after the last epoch). The four
//   add up to run_s exactly.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/e2e/mllog.h"
#include "tiling/status.h"

namespace tilestage::bench {

struct RunAnalysis {
  std::string file;
  std::string instance;  // "" for a single-instance log; else "instance_id=3" / "ns=GPU0"
  std::string group;     // the submission this run belongs to (see GroupBy)
  int64_t run_start_line = 0;
  int64_t run_stop_line = 0;
  std::string benchmark, org, platform;  // submission_* events, when logged
  std::string status;                    // run_stop metadata "status", when logged
  std::optional<int64_t> nodes;          // number_of_nodes, when logged

  double run_s = 0;
  std::optional<double> init_s;  // init_start → init_stop, when logged
  std::optional<double> staging_s;
  std::string staging_source = "none";  // "interval", "staging_duration" or "none"
  std::optional<double> staging_logged_duration_s;
  bool staging_within_run = true;  // false when a staging interval lies outside the run

  int epochs = 0;
  std::vector<double> epoch_s;  // each closed epoch's duration, in log order
  std::optional<double> mean_epoch_s;
  std::optional<double> staging_per_run;
  std::optional<double> staging_per_epoch;

  // The time-to-train split; sums to run_s.
  double split_staging_s = 0, split_eval_s = 0, split_training_s = 0, split_other_s = 0;
  std::vector<std::string> warnings;  // tolerated oddities, e.g. an epoch left open at run_stop
};

struct GroupSummary {
  std::string group;
  int runs = 0;
  int runs_with_staging = 0;
  // Medians over the group's runs (over those that have the value, for the optional ones).
  double median_run_s = 0;
  std::optional<double> median_staging_s, median_staging_per_run, median_mean_epoch_s,
      median_staging_per_epoch;
  double median_split_staging_s = 0, median_split_eval_s = 0, median_split_training_s = 0,
         median_split_other_s = 0;
};

struct StagingAnalysis {
  std::vector<RunAnalysis> runs;
  std::vector<GroupSummary> groups;  // in order of first appearance
};

// How runs are grouped into submissions: by the log's directory (MLPerf result trees hold one
// submission per directory), one group per file, by the logged benchmark + org + platform, or
// everything in one group.
enum class GroupBy { kDirectory, kFile, kPlatform, kAll };
Result<GroupBy> ParseGroupBy(const std::string& name);  // "dir", "file", "platform", "all"

// The runs in one parsed log. InvalidArgument "<path>:<line>: ..." when the events contradict
// themselves (run_stop without run_start, a staging_stop without staging_start, an interval that
// ends before it starts, an unclosed staging interval) and "<path>: no run_start ..." when the
// log holds no run at all.
Result<std::vector<RunAnalysis>> AnalyzeMlLog(const std::vector<MlLogRecord>& records,
                                              const std::string& path);

// Expands directories (recursively) into the MLPerf log files they hold: "result_*.txt" as in
// the MLPerf result trees, and "*.log" / "*.mllog" files. Files given directly are kept as they
// are. Paths come out in natural order (result_2 before result_10). NotFound for a path that does
// not exist; InvalidArgument for a directory without log files.
Result<std::vector<std::string>> ExpandMlLogPaths(const std::vector<std::string>& paths);

// Reads, analyzes and groups several logs; the first bad file stops the analysis.
Result<StagingAnalysis> AnalyzeMlLogFiles(const std::vector<std::string>& paths, GroupBy group_by);

// Median of the values (mean of the two middle ones for an even count). Requires a non-empty list.
double Median(std::vector<double> values);

// Human-readable tables (per run, then per submission).
std::string FormatStagingAnalysis(const StagingAnalysis& analysis);
Json StagingAnalysisToJson(const StagingAnalysis& analysis);

}  // namespace tilestage::bench
