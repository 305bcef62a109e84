// The end-to-end benchmark report: from the measured results of one `tilestage bench e2e` run (a
// JSON document, schema below) to report.json (inputs plus every derived figure), report.md and
// SVG bar charts. Pure functions plus one writer; no shared state, thread-safe.
//
// Results schema "tilestage-e2e-results/1" (all times in seconds):
// {
//   "schema": "tilestage-e2e-results/1",
//   "system": {...},      // free-form facts: host, cpu, cores, memory_bytes, os, compiler, mpi...
//   "provenance": {...},  // free-form: tilestage_version, command, config, time_utc, ...
//   "stages": [           // one row per stage and unit; rates are amount / seconds
//     {"name": "staging", "unit": "GB/s",
//      "tilestage": {"amount": 4.0, "seconds": 2.0},           // or {"rate": 2.0}
//      "peer":  {"name": "cp", "amount": 4.0, "seconds": 5.0},  // optional
//      "limit": {"name": "raw read bandwidth", "rate": 3.0}},   // optional
//     ...],
//   "time_to_train": {"run_s": 100, "staging_s": 10, "training_s": 70, "evaluation_s": 5,
//                     "epoch_s": [25, 25, 25]},                // per-epoch times, as logged
//   "data_stalls": {"samples": 4096,         // the same samples in each of the three runs
//                   "synthetic_s": 10,       // synthetic data in memory: compute only
//                   "cached_s": 12,          // dataset in the page cache: compute + preprocessing
//                   "cold_s": 15,            // caches dropped: compute + preprocessing + fetch
//                   "rounds": [{"synthetic_s": 10, "cached_s": 12, "cold_s": 15}, ...]}
//                                            // optional: every round measured; the three figures
//                                            // above are then their medians (data_stalls.h)
// }
// Derived (DS-Analyzer's differential method): prep_stall_s = cached_s - synthetic_s,
// fetch_stall_s = cold_s - cached_s, au_percent = 100 * synthetic_s / cold_s (the share of the
// cold run's wall time the trainer computes). other_s = run_s - staging_s - training_s -
// evaluation_s; staging_per_run = staging_s / run_s; staging_per_epoch = staging_s / mean(epoch_s).
// A stall is never below zero: where a run came out faster than the run it contains, the
// report's data_stalls.derived.noise says so (and how often over the rounds) and the stall is 0.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/e2e/data_stalls.h"
#include "bench/e2e/mllog.h"  // Json
#include "bench/e2e/staging_analysis.h"
#include "tiling/status.h"
#include "tiling/storage.h"

namespace tilestage::bench {

struct Measure {
  std::string name;  // who was measured: "tilestage", "cp", "raw read bandwidth"...
  std::optional<double> amount;
  std::optional<double> seconds;
  double rate = 0;  // amount / seconds, or as given
};

// A stage whose tilestage measurement took less than this ran at fixed-cost scale: process
// start-up, file opening and the like dominate its rate, so its ratios to peer and limit say
// little about the stage (the demo's tiny stores), and the report says so instead of presenting
// them as findings.
inline constexpr double kFixedCostScaleS = 1.0;

struct StageResult {
  std::string name;
  std::string unit;
  Measure tilestage;
  std::optional<Measure> peer;
  std::optional<Measure> limit;
  std::optional<double> vs_peer;   // tilestage rate / peer rate
  std::optional<double> of_limit;  // tilestage rate / limit rate
  bool fixed_cost_scale = false;   // tilestage.seconds < kFixedCostScaleS
};

struct TimeToTrain {
  double run_s = 0, staging_s = 0, training_s = 0, evaluation_s = 0;
  std::vector<double> epoch_s;
  // Derived.
  double other_s = 0;
  double staging_per_run = 0;
  std::optional<double> mean_epoch_s;
  std::optional<double> staging_per_epoch;
};

struct DataStalls {
  double samples = 0, synthetic_s = 0, cached_s = 0, cold_s = 0;
  // Derived.
  double compute_s = 0, prep_stall_s = 0, fetch_stall_s = 0, au_percent = 0;
  double prep_stall_share = 0, fetch_stall_share = 0;  // of the cold run's wall time
  std::vector<StallRound> rounds;  // as measured; one round when the document gives none
  StallSummary summary;            // range over the rounds and the noise flags
};

struct E2eResults {
  Json system = Json::object();
  Json provenance = Json::object();
  std::vector<StageResult> stages;
  std::optional<TimeToTrain> time_to_train;
  std::optional<DataStalls> data_stalls;
};

// Parses and checks a results document and computes every derived figure. InvalidArgument names
// `where` and the JSON path of the bad field ("results.json: stages[1].peer.seconds must be a
// positive number"); inconsistent timings (staging + training + evaluation > run) are an error.
Result<E2eResults> E2eResultsFromJson(const Json& j, const std::string& where);
Result<E2eResults> ReadE2eResults(const std::string& path);

// The "time_to_train" part of a results document from a run analysed in the run's mllog file (so
// the e2e driver reports exactly what `tilestage bench analyze` measures): the priority split of
// the run (staging, evaluation, training; other is what remains) and the epoch durations.
Json TimeToTrainResultsJson(const RunAnalysis& run);

Json E2eReportJson(const E2eResults& results);  // the inputs plus a "derived" section per part
std::string E2eReportMarkdown(const E2eResults& results);
// Self-contained SVG documents (no scripts, no external references).
std::string StagesSvg(const std::vector<StageResult>& stages);
std::string TimeToTrainSvg(const TimeToTrain& ttt);
std::string DataStallsSvg(const DataStalls& stalls);

// One horizontal bar of StackedBarsSvg: its parts (seconds, or the chart's unit), named alike in
// every bar.
struct TimeBar {
  std::string label;
  std::vector<std::pair<std::string, double>> parts;
};
// Bars on one time axis (the longest fills the width), each part coloured by its name's place in
// the legend, its seconds in its tooltip and each bar's total at its end; the label column is as
// wide as the longest label, so no label is clipped.
std::string StackedBarsSvg(const std::string& title, const std::vector<TimeBar>& bars,
                           const std::string& unit = "s");

// The staging share of time to train (median per group) of every group with a staging time, one
// bar each, the --compare groups (tilestage runs) coloured apart from the published submissions.
std::string StagingShareSvg(const StagingAnalysis& analysis);

// Writes report.md, the SVG charts (stages.svg, time_to_train.svg, data_stalls.svg, each when its
// part is present) and last report.json into `dir` (created if needed), each atomically.
Status WriteE2eReport(Storage& storage, const std::string& dir, const E2eResults& results);

// "<" "&" etc. escaped for XML text and attributes.
std::string XmlEscape(const std::string& text);

}  // namespace tilestage::bench
