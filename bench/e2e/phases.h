// The phases of one `tilestage bench e2e` run. Each runs its tools as steps (step_runner.h) of the
// tilestage binary, under mpirun where they are MPI programs, or of the Python peers, and returns
// a typed result that the results document (e2e_results.h) is built from:
//   init:  ingest of a GeoTIFF scene, NetCDF and HDF5 files (examples/data/; copies for bigger
//          presets) [RunIngestPhase];
//   run:   staging under mpirun to <out>/node_local/node{node} [RunStagingPhase], then training
//          with evaluation (vit-mae) under mpirun on the staged store [RunTrainPhase]; both log
//          their events into the run's mllog;
//   after: staging again beside cp of the store (staging peer) [RunStagingPeerPhase], loader
//          throughput beside PyTorch [RunLoaderPhase], the Python ingest peers
//          [RunPeerIngestPhase] and the DS-Analyzer differential runs, repeated
//          [RunDataStallPhase].
//
// Thread-safety: the phases of one run are sequential (each reads earlier results and they
// measure the same machine); E2eRunContext is read-only during a phase apart from its progress
// lines.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "bench/e2e/data_stalls.h"
#include "bench/e2e/e2e_config.h"
#include "bench/e2e/limits.h"
#include "bench/e2e/mllog.h"
#include "bench/e2e/progress.h"
#include "bench/e2e/train_records.h"
#include "tiling/status.h"

namespace tilestage::bench {

// What every phase of one run needs: the settings and where things are.
struct E2eRunContext {
  E2eConfig config;
  std::string out;   // the run's output directory (absolute)
  std::string root;  // the source tree: examples/data, bench/e2e_run/peers.py
  std::string exe;   // the tilestage binary the steps run
  Progress progress;

  std::string StepsDir() const { return out + "/steps"; }
  std::string MlLogPath() const { return out + "/mllog.txt"; }
  std::string PeersScript() const { return root + "/bench/e2e_run/peers.py"; }
};

inline constexpr std::array<const char*, 3> kIngestModalities = {"geotiff", "netcdf", "hdf5"};

struct IngestFigures {
  std::vector<std::string> inputs;
  // GeoTIFF: the whole process (like gdal_retile.py, a command); NetCDF and HDF5: the ingest's
  // own elapsed_s (like xarray and h5py, timed after their imports).
  double seconds = 0;
  double input_bytes = 0;
  double tiles = 0;  // tiles_written
  Json step;         // the ingest's --json output plus process_wall_s
};

struct IngestResult {
  std::array<IngestFigures, 3> modality;  // in kIngestModalities' order
  std::vector<std::string> AllInputs() const;
};
// The ingest command of modality i (kIngestModalities' order) without its input files, writing
// <out>/stores/<modality> with the config's tile, dtype and codec.
std::vector<std::string> IngestArgv(const E2eRunContext& ctx, size_t modality);
// The real files of examples/data each modality ingests (copies of them for bigger presets).
std::vector<std::string> IngestSources(const E2eRunContext& ctx);
Result<IngestResult> RunIngestPhase(const E2eRunContext& ctx);

// The Python peers' --json outputs, in kIngestModalities' order.
struct PeerIngestResult {
  std::array<Json, 3> modality;
};
Result<PeerIngestResult> RunPeerIngestPhase(const E2eRunContext& ctx, const IngestResult& ingest);

struct StagingResult {
  std::string staged;  // node 0's staged store
  double seconds = 0;  // the stager's barrier-to-barrier time
  double bytes = 0;    // bytes_written
  Json step;
};
// The stager's own mllog events are copied into `log` as it wrote them.
Result<StagingResult> RunStagingPhase(const E2eRunContext& ctx, MlLogger& log);

struct TrainResult {
  TrainFigures figures;
  double flops_per_sample = 0;  // 3x the model's forward FLOPs; 0 when the shape is unknown
  double allreduce_bytes = 0;   // fp32 gradients, every step
  Json step;                    // {"records": [...]} every JSON record training printed
};
// The forward FLOPs per sample of the vit-mae model the run trains, on tiles of x_shape (C, H, W).
Result<double> ForwardFlopsPerSample(const E2eConfig& config, const std::vector<int64_t>& x_shape);
Result<TrainResult> RunTrainPhase(const E2eRunContext& ctx, const StagingResult& staging,
                                  MlLogger& log);

// The staging peer, cp -r of the ingested GeoTIFF store to the same file system and then sync
// (the stager syncs its shards before publishing them), against the stager run again the same
// way as in the timed run: the timed staging follows the ingest's writes, whose writeback the
// disk may still be doing, and cp would meet a quieter disk after training. Each contender
// starts after a sync, the two alternate which goes first and each copy is removed after it;
// best of kStagingPeerRounds each. {"stage_s" (the stager's own seconds), "seconds" (cp + sync),
// "cp_s", "sync_s", "rounds", "bytes"}.
inline constexpr int kStagingPeerRounds = 2;
Result<Json> RunStagingPeerPhase(const E2eRunContext& ctx);

struct LoaderResult {
  Json load;  // `tilestage load --json` on the staged store, no compute
  std::optional<Json> peer_loader, peer_train;  // with peers only
  std::optional<Json> python_loader;            // with peers: the tilestage Python package's Loader
};
// The loader's throughput, and with peers the same loader through the Python package, PyTorch's
// DataLoader on the same store and PyTorch training the same MAE (on OpenBLAS).
Result<LoaderResult> RunLoaderPhase(const E2eRunContext& ctx, const StagingResult& staging,
                                    const TrainResult& train);

struct DataStallResult {
  double samples = 0;
  double compute_ms = 0;  // the stand-in compute per batch
  std::vector<StallRound> rounds;
  StallSummary summary;
  double staged_bytes = 0;
  // Per round, the staged bytes still in the page cache after eviction, before the cold run
  // (0 on a disk file system; all of them on tmpfs, where nothing can be evicted).
  std::vector<double> resident_after_evict_bytes;
  Json cold_step, cached_step;  // round 1's `tilestage load --json` outputs

  // The results document's data_stalls: the medians, every round and what eviction left cached
  // (the report flags noise).
  Json ToJson() const;
};
Result<DataStallResult> RunDataStallPhase(const E2eRunContext& ctx, const StagingResult& staging,
                                          const TrainResult& train);

}  // namespace tilestage::bench
