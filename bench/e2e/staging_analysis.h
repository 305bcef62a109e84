// The MLPerf HPC staging analysis of mllog files: for every run, how long staging took, how long
// the run took, and their ratios; for every submission (a group of runs), medians with min–max.
// This is what `tilestage bench analyze` prints. Pure functions over parsed events; thread-safe.
//
// Published result trees are read to the end: an aborted run, unmatched interval events, a
// malformed line or an implausible value become warnings naming the file and line, and the run is
// listed with its state and left out of the medians it would distort. Only a tree from which no
// run at all can be read is an error.
//
// Definitions (the same in the table, the JSON, the CSV and bench/MODEL.md):
// - A run is a run_start → run_stop pair. Events are split by instance first (metadata
//   "instance_id" plus the namespace), so a log holding several concurrent training instances
//   yields one run per instance. run_s = (run_stop.time_ms - run_start.time_ms) / 1000: the MLPerf
//   time-to-train. A run without run_stop is "aborted"; its run_s runs to its last event.
// - staging_s is the sum of the run's staging_start → staging_stop intervals (from timestamps).
//   When no interval was logged but a staging duration was (a "staging_duration" event whose
//   value is seconds, or a "staging_duration" metadata field of staging_stop as NVIDIA's
//   CosmoFlow logs it), that duration is used; `staging_source` says which.
// - An epoch is an epoch_start → epoch_stop pair (matched by metadata epoch_num when present);
//   mean_epoch_s is their mean. It includes whatever the benchmark logs inside the epoch interval
//   (CosmoFlow and DeepCAM evaluate inside it). A run with unmatched epoch events (OpenFold counts
//   epochs in samples and logs epoch_stop alone) reports no epoch figures.
// - staging_per_run = staging_s / run_s; staging_per_epoch = staging_s / mean_epoch_s.
// - The time-to-train split assigns every instant of the run to one category, by priority:
//   staging, then evaluation (eval_start → eval_stop), then training (inside an epoch), then other.
//   The four add up to run_s exactly.
// - Weak scaling (a `weak` result folder, or a log with several instances): every counted run is
//   one model instance; time_to_train_all_s = last run_stop − first run_start over the instances
//   and models_per_min = instances / time_to_train_all in minutes (MLPerf HPC's throughput metric).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/e2e/mllog.h"
#include "tiling/status.h"

namespace tilestage::bench {

// Plausibility bounds: a time_ms outside [0, kMaxPlausibleTimeMs] (year 2286) or a logged staging
// duration outside [0, kMaxPlausibleStagingS] is a warning and the value is ignored.
inline constexpr int64_t kMaxPlausibleTimeMs = 10'000'000'000'000;
inline constexpr double kMaxPlausibleStagingS = 1e7;

// What a run contributes to its submission's figures.
enum class RunState {
  kOk,               // everything
  kNoStaging,        // no staging events: run and epoch figures only
  kStagingUnusable,  // staging events that do not pair up, or an implausible logged duration
  kAborted,          // no run_stop, or run_stop status other than "success": nothing
  kPruned,           // in a pruned_results/ folder (left out of the score by the submitter)
};
const char* RunStateName(RunState state);  // "ok", "no staging events", "staging unusable", ...
// Whether the run's time-to-train and epoch figures enter the medians.
inline bool Counted(RunState state) {
  return state != RunState::kAborted && state != RunState::kPruned;
}

struct RunAnalysis {
  std::string file;
  std::string instance;  // "" for a single-instance log; else "instance_id=3" / "ns=GPU0"
  std::string group;     // the submission this run belongs to (see GroupBy)
  // The submission, from the path (<submitter>/results/<system>/<strong|weak>/<benchmark>/, the
  // round from a component such as hpc_results_v1.0) or else from the log's submission_* events.
  std::string round, submitter, system, scale;
  int64_t run_start_line = 0;
  int64_t run_stop_line = 0;  // 0 when the run has no run_stop
  int64_t run_start_ms = 0, run_stop_ms = 0;
  std::string benchmark, org, platform;  // submission_* events, when logged (benchmark lowercased)
  std::string status;                    // run_stop metadata "status", when logged
  std::optional<int64_t> nodes;          // number_of_nodes, when logged
  std::optional<int64_t> accelerators_per_node;
  RunState state = RunState::kOk;

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
  std::vector<std::string> warnings;  // "<file>:<line>: <problem>"
};

// Median and range of one figure over a submission's runs.
struct Spread {
  double median = 0, min = 0, max = 0;
  int count = 0;
};
std::optional<Spread> SpreadOf(const std::vector<double>& values);  // nullopt when empty

struct GroupSummary {
  std::string group;  // the label
  std::string round, submitter, system, scale, benchmark;
  bool compare = false;  // a tilestage run given with --compare
  std::optional<int64_t> nodes_min, nodes_max, accelerators_per_node;
  int runs = 0;          // listed
  int runs_counted = 0;  // in the medians (not aborted, not pruned)
  int runs_aborted = 0, runs_pruned = 0, runs_with_staging = 0;
  // Over the counted runs (the staging figures over those with a usable staging time).
  std::optional<Spread> staging_s, run_s, staging_per_run, epochs, mean_epoch_s, staging_per_epoch;
  double median_split_staging_s = 0, median_split_eval_s = 0, median_split_training_s = 0,
         median_split_other_s = 0;
  // Weak scaling only.
  std::optional<int> instances;
  std::optional<double> time_to_train_all_s, models_per_min;
};

struct StagingAnalysis {
  std::vector<RunAnalysis> runs;
  std::vector<GroupSummary> groups;  // in order of first appearance; --compare groups last
  // Problems that belong to no run: malformed lines, unreadable files, logs without a run.
  std::vector<std::string> warnings;
  int files_read = 0, files_without_runs = 0;
};

// How runs are grouped: by submission (path or metadata, see RunAnalysis; the default), by the
// log's directory, one group per file, by the logged benchmark + org + platform, or all in one.
enum class GroupBy { kSubmission, kDirectory, kFile, kPlatform, kAll };
// "submission", "dir", "file", "platform", "all"
Result<GroupBy> ParseGroupBy(const std::string& name);

// The runs in one parsed log, with their states and warnings. InvalidArgument only when the log
// holds no :::MLLOG line or no run_start at all ("<path>: no run_start ...").
Result<std::vector<RunAnalysis>> AnalyzeMlLog(const std::vector<MlLogRecord>& records,
                                              const std::string& path);

// Expands directories (recursively) into the MLPerf log files they hold: "result_*.txt" as in
// the MLPerf result trees, and "*.log" / "*.mllog" files. Files given directly are kept as they
// are. Paths come out in natural order (result_2 before result_10). NotFound for a path that does
// not exist; InvalidArgument for a directory without log files.
Result<std::vector<std::string>> ExpandMlLogPaths(const std::vector<std::string>& paths);

struct AnalyzeOptions {
  GroupBy group_by = GroupBy::kSubmission;
  // tilestage logs shown beside the published submissions, one group per file.
  std::vector<std::string> compare;
};

// Reads, analyzes and groups the logs, going on past bad files and runs (see the top of this
// file). InvalidArgument naming the first problem when not a single run could be read, or when a
// --compare log holds no run.
Result<StagingAnalysis> AnalyzeMlLogFiles(const std::vector<std::string>& paths,
                                          const AnalyzeOptions& options);
Result<StagingAnalysis> AnalyzeMlLogFiles(const std::vector<std::string>& paths, GroupBy group_by);

// Median of the values (mean of the two middle ones for an even count); 0 for an empty list.
double Median(std::vector<double> values);

// The submission table (per run too when `per_run`), the runs left out of the medians with their
// states, and for --compare groups where their staging share ranks among the others.
std::string FormatStagingAnalysis(const StagingAnalysis& analysis, bool per_run = false);
Json StagingAnalysisToJson(const StagingAnalysis& analysis);
// One row per submission (or per run when `per_run`), with a header; RFC 4180 quoting.
std::string StagingAnalysisToCsv(const StagingAnalysis& analysis, bool per_run = false);

}  // namespace tilestage::bench
