// The staging and epoch-time model behind `tilestage bench model` (documented in bench/MODEL.md):
// measured per-stage rates plus file-system, node-local and interconnect bandwidths in, predicted
// staging time, epoch time and time-to-train at N nodes out. A bottleneck (roofline-style) model:
// each phase runs at the slowest of the rates that bound it, phases that tilestage pipelines
// overlap, and the limiting resource is named. Pure arithmetic; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/e2e/mllog.h"  // Json
#include "bench/e2e/staging_analysis.h"
#include "tiling/status.h"

namespace tilestage::bench {

enum class StagingMode {
  kNone,              // no staging: every epoch reads the dataset in place from the file system
  kPartition,         // each node stages a disjoint 1/N share (each byte read from the FS once)
  kReplicate,         // every node gets everything; each byte read once, shared over MPI allgather
  kReplicateFromFs,   // every node reads the whole dataset from the file system itself
};
Result<StagingMode> ParseStagingMode(const std::string& name);  // none, partition, replicate, ...
const char* StagingModeName(StagingMode mode);

// Rates are bytes/s or samples/s; every "per node" rate is what one node sustains alone.
struct ModelParams {
  // Dataset and run.
  double dataset_bytes = 0;    // staged bytes (the tile store as it sits on the file system)
  double samples = 0;          // samples per epoch
  double epochs = 1;
  StagingMode mode = StagingMode::kPartition;
  // Measured tilestage rates, per node.
  double staging_read_bytes_per_s = 0;   // stager's read rate when the FS is not the limit
  double staging_write_bytes_per_s = 0;  // stager's write rate to node-local storage
  double loader_samples_per_s = 0;       // loader from node-local storage (decode, augment, batch)
  double train_samples_per_s = 0;        // trainer on synthetic data (pure compute)
  std::optional<double> ingest_bytes_per_s;  // optional: ingest rate per node (output bytes)
  // System.
  double fs_aggregate_bytes_per_s = 0;  // parallel file system, all clients together
  double fs_node_bytes_per_s = 0;       // one client node's file-system bandwidth
  double local_write_bytes_per_s = 0;   // node-local storage (NVMe, /dev/shm)
  double local_read_bytes_per_s = 0;
  double interconnect_bytes_per_s = 0;  // per-node injection bandwidth (needed for replicate)
  // Optional terms.
  double staging_overhead_s = 0;        // fixed cost per staging (job launch, file listing, ...)
  double gradient_bytes = 0;            // per step, for a ring allreduce cost (0: ignored)
  double batch_per_node = 0;            // samples per node per step (needed with gradient_bytes)

  Json ToJson() const;
  // Reads the keys ToJson writes (units in the names: *_bytes, *_per_s); unknown keys are an
  // error naming `where`, so a typo in a config file does not silently keep a default.
  static Result<ModelParams> FromJson(const Json& j, const std::string& where);
  // InvalidArgument naming the first missing or non-positive required input.
  Status Validate() const;
};

struct ModelPoint {
  int nodes = 0;
  // Staging.
  double staging_s = 0;
  double staging_fs_read_s = 0;     // reading the FS at the rate the FS and stager allow
  double staging_exchange_s = 0;    // MPI redistribution (replicate)
  double staging_local_write_s = 0; // writing node-local copies
  double staging_fs_bytes_per_s = 0;  // aggregate FS read rate achieved
  std::string staging_bound;        // "fs_aggregate", "fs_node", "stager_read", "interconnect",
                                    // "local_write", "stager_write" or "none"
  double bytes_per_node = 0;        // bytes each node holds after staging
  // Epochs.
  double epoch_s = 0;
  double node_samples_per_s = 0;    // achieved per node
  std::string epoch_bound;          // "train", "loader", "local_read", "fs_node", "fs_aggregate"
  double allreduce_s_per_epoch = 0;
  double inplace_epoch_s = 0;       // the same epoch read in place from the FS (no staging)
  // Totals.
  double time_to_train_s = 0;       // staging + epochs × epoch
  double staging_per_run = 0;
  double staging_per_epoch = 0;
  std::optional<double> breakeven_epochs;  // epochs after which staging beats reading in place
  std::optional<double> ingest_s;   // ingest of the dataset at this node count, when modelled
};

// Predicts one node count. Requires Validate() to pass and nodes >= 1.
ModelPoint PredictAt(const ModelParams& params, int nodes);
Result<std::vector<ModelPoint>> Predict(const ModelParams& params, const std::vector<int>& nodes);

// "1.5GB", "2GiB/s", "800MB", "1e9" -> bytes (or bytes/s: a trailing "/s" is accepted). Decimal
// units are powers of 1000, binary (KiB, MiB, GiB, TiB) powers of 1024.
Result<double> ParseBytes(const std::string& text);

// "1,2,8" or "1..1024" (powers of two from the first to the last) -> node counts.
Result<std::vector<int>> ParseNodeList(const std::string& text);

std::string FormatModelTable(const ModelParams& params, const std::vector<ModelPoint>& points);
Json ModelToJson(const ModelParams& params, const std::vector<ModelPoint>& points);


// --- Out-of-sample check against published runs (`tilestage bench model --validate`) ---
//
// A scaling series is one system (the submitter's system folder with its node count taken out,
// e.g. dgxa100_n16_ngc21.09_mxnet and dgxa100_n128_ngc21.09_mxnet), one benchmark, one scale and
// round, measured at two or more node counts. Weak scaling counts all nodes of all instances and
// stages the dataset once per instance. The model is calibrated on one point of a series and
// predicts the others; nothing is fitted to the point predicted.

struct SeriesPoint {
  std::string submission;  // the group label of the analysis
  int64_t nodes = 0;       // all nodes staging at once (instances × nodes per instance)
  int instances = 1;
  double staging_s = 0;    // published: the submission's median staging time
};
struct ScalingSeries {
  std::string system, benchmark, scale, round;
  std::vector<SeriesPoint> points;  // by node count
};
// "dgxa100_n16_ngc21.09_mxnet" -> "dgxa100_ngc21.09_mxnet";
// "fugaku_512xA64FX_x" -> "fugaku_A64FX_x"
std::string SystemFamily(const std::string& system);
// Every series with at least two node counts, from the submissions that have a staging median and
// one node count. Compare groups are ignored.
std::vector<ScalingSeries> FindScalingSeries(const StagingAnalysis& analysis);

// What the calibration point is taken to be bound by, which decides the one parameter it sets:
// kFileSystem: the shared file system, B = D / T (the per-node limit is the documented link
//   bandwidth); kNode: each node's stager, r = D / (N T) (the file system unlimited).
enum class Calibration { kFileSystem, kNode };
Result<Calibration> ParseCalibration(const std::string& name);  // "fs", "node"
const char* CalibrationName(Calibration calibration);

struct ValidationOptions {
  Calibration calibration = Calibration::kFileSystem;
  // One node's bandwidth to the file system (default: one InfiniBand HDR200 link, 25 GB/s).
  double node_bytes_per_s = 25e9;
  // Bytes staged per instance, by benchmark (lowercase).
  std::map<std::string, double> dataset_bytes = {{"cosmoflow", 5.1e12}, {"deepcam", 8.8e12}};
};

struct ValidationRow {
  std::string system, benchmark, scale, round;
  int64_t calibration_nodes = 0;
  double calibration_staging_s = 0;
  int64_t nodes = 0;
  double published_s = 0, predicted_s = 0;
  double ratio = 0;  // predicted / published
  std::string bound;  // the model's limiting resource at the predicted point
  bool within_2x = false;
};
struct Validation {
  Calibration calibration = Calibration::kFileSystem;
  std::vector<ValidationRow> rows;
  int within_2x = 0;
  std::vector<std::string> skipped;  // series that could not be used, and why
  double Fraction() const {
    return rows.empty() ? 0 : static_cast<double>(within_2x) / static_cast<double>(rows.size());
  }
};
// Every (calibration point, predicted point) pair of every series.
Validation ValidateStagingModel(const std::vector<ScalingSeries>& series,
                                const ValidationOptions& options);
std::string FormatValidation(const Validation& validation);
Json ValidationToJson(const Validation& validation);

}  // namespace tilestage::bench
