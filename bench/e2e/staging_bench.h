// `tilestage bench staging`: "should I stage?" answered on the user's own store and file systems.
// One run measures, in this order,
//   1. an epoch read in place from the source store (the shared file system), its pages evicted
//      first (posix_fadvise DONTNEED: a dataset at scale does not fit in client memory);
//   2. staging with the stager (loaders/stager.h, partition mode) to node-local storage, the
//      source evicted again first (a cold source);
//   3. an epoch from the node-local copy, evicted first as well (what NVMe gives; on tmpfs such as
//      /dev/shm nothing can be evicted, and the residency figures say so);
//   4. the loader alone over the (now cached) node-local copy, and a raw read of it cold: the
//      loader and node-local rates `bench model` takes;
// each epoch with a compute stand-in of compute_ms per batch (a sleep, as DLIO emulates a step)
// or with the real training step (`train`: the trainer's job, one epoch, its step records), and
// the data stall of each (DS-Analyzer style: the step's wait for its batch against the rest). From
// these parts it answers, for the requested epochs: time to train with and without staging, the
// staging share, staging/epoch and the break-even epoch count (StagingAnswer), plus `bench model`'s
// prediction at N nodes (model.h) when node counts are asked for. Two mllog files (staged.mllog,
// in_place.mllog) hold a run per strategy for `bench analyze --compare`: staging at its real time
// (staged only), the measured epoch right after it (in place: at its real start), then the other
// requested epochs projected from it (their events carry "projected": true in their metadata).
//
// Thread-safety: RunStagingBench is collective over the communicator (every rank calls it, from
// one thread per process); ComputeStagingAnswer and the *Json/Format functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/e2e/mllog.h"  // Json
#include "bench/e2e/model.h"
#include "bench/e2e/report.h"
#include "tiling/comm/communicator.h"
#include "tiling/status.h"
#include "trainer/train_job.h"

namespace tilestage::bench {

struct StagingBenchOptions {
  std::string store;  // the source store on the shared file system
  // Node-local directory ("{node}" is replaced by the node number). The staged copy goes to a
  // fresh subdirectory of it, removed at the end unless keep_staged.
  std::string node_local;
  std::string out;        // results.json, time.svg and the two mllog files (written by rank 0)
  uint64_t epochs = 1;    // epochs of the training run the answer is for (>= 1)
  double compute_ms = 0;  // compute stand-in per batch and rank (>= 0)
  // The real training step instead of the stand-in: `tilestage train`'s options (store, epochs,
  // outputs and checkpoints are set per measured epoch). Its global batch sets the loader's.
  std::optional<trainer::TrainJobOptions> train;
  int64_t batch = 32;  // samples per batch per rank (with train: its global batch / ranks)
  int threads = 0;     // loader and stager TBB threads per rank (0 = TBB default)
  uint64_t seed = 0;
  bool keep_staged = false;
  // `bench model` at these node counts (empty: no prediction). Bandwidths of 0 default to what
  // this run measured (see StagingBench::model_params).
  std::vector<int> model_nodes;
  double fs_aggregate_bytes_per_s = 0;
  double fs_node_bytes_per_s = 0;
  double local_read_bytes_per_s = 0;
  double local_write_bytes_per_s = 0;
};

// A page-cache eviction and what it left: mincore residency of the files just before and after.
struct EvictionRecord {
  std::string what;  // "source before the in-place epoch", ...
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t resident_before_bytes = 0;  // world rank 0's view of its node
  uint64_t resident_after_bytes = 0;
};

// One epoch under the compute stand-in (times the slowest rank's, the stall the largest per-rank
// wait for batches in Loader::Next) or of the real training step (rank 0's step records: the
// stall is the steps' wait for their batches, the compute the rest of each step, allreduce
// included; stored_bytes_read is then not known and 0).
struct EpochMeasurement {
  std::string strategy;               // "in_place" or "node_local"
  std::string store;                  // world rank 0's store
  uint64_t samples = 0, batches = 0;  // all ranks together
  uint64_t stored_bytes_read = 0;     // all ranks together
  double wall_s = 0;
  double compute_s = 0;  // the slowest rank's emulated compute
  double stall_s = 0;
  int64_t start_ms = 0, stop_ms = 0;  // wall clock, for the mllog
  double stall_share() const { return wall_s > 0 ? stall_s / wall_s : 0; }
  Json ToJson() const;
};

// The answer, from the measured parts alone.
struct StagingAnswer {
  uint64_t epochs = 0;
  double staging_s = 0, in_place_epoch_s = 0, node_local_epoch_s = 0;
  double time_with_staging_s = 0;  // staging_s + epochs * node_local_epoch_s
  double time_in_place_s = 0;      // epochs * in_place_epoch_s
  double staging_share = 0;        // staging_s / time_with_staging_s
  double staging_per_epoch = 0;    // staging_s / node_local_epoch_s
  // staging_s / (in_place_epoch_s - node_local_epoch_s): the epochs at which both take equally
  // long; none when a node-local epoch is not faster than one in place (staging never pays).
  std::optional<double> breakeven_epochs;
  // The smallest whole epoch count at which staging is strictly faster.
  std::optional<uint64_t> first_winning_epochs;
  bool staging_pays_off = false;  // for the requested epochs
  Json ToJson() const;
};

// InvalidArgument for epochs == 0 or a time that is negative or not finite (naming it).
Result<StagingAnswer> ComputeStagingAnswer(double staging_s, double in_place_epoch_s,
                                           double node_local_epoch_s, uint64_t epochs);

struct StagingBench {
  StagingBenchOptions options;
  int ranks = 0, nodes = 0;
  uint64_t store_bytes = 0, records = 0;
  double staging_s = 0;       // the stager's barrier-to-barrier time
  uint64_t staged_bytes = 0;  // written, all nodes
  int64_t staging_start_ms = 0, staging_stop_ms = 0;
  std::string staged_store;  // world rank 0's node-local copy
  EpochMeasurement in_place, node_local;
  std::string step;                       // the training step, in words
  double train_samples_per_s = 0;         // the step's rate without stalls, all ranks
  double loader_samples_per_s = 0;        // the loader alone, node-local and cached, all ranks
  double local_raw_read_bytes_per_s = 0;  // raw cold read of rank 0's node-local copy
  std::vector<EvictionRecord> evictions;
  StagingAnswer answer;
  std::optional<ModelParams> model_params;  // with options.model_nodes
  std::vector<ModelPoint> model;
  std::string staged_mllog, in_place_mllog;  // paths under options.out
  std::string chart;                         // options.out/time.svg (StagingBenchSvg)
  Json ToJson() const;
};

// Collective. Runs the measurements above on every rank; world rank 0 returns the full result,
// the other ranks what they know (no answer, no model). Errors: InvalidArgument for bad options
// (naming the option and value), the stager's and the loader's errors (naming the store), IOError
// naming the path when the output folder, an eviction or a residency query fails. Every rank
// returns the same status.
Result<StagingBench> RunStagingBench(Communicator& world, const StagingBenchOptions& options);

// Where the time of the requested epochs goes with staging and in place: staging, compute, data
// stall and the rest of each epoch, as stacked bars on one axis (an SVG document).
std::string StagingBenchSvg(const StagingBench& bench);

// The table a person reads: the measured parts, the stall per strategy, the answer, the model.
std::string FormatStagingBench(const StagingBench& bench);

}  // namespace tilestage::bench
