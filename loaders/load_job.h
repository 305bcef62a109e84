// LoadJob: what `tilestage load` measures. Every rank streams its share of a store through a
// Loader for some epochs (optionally sleeping compute_ms per batch to emulate a training step);
// then the ranks' reports (throughput, per-stage busy time, queue occupancy, the data stall, AU%
// = compute time / wall time) are gathered on world rank 0 through the communicator.
//
// Thread-safety: RunLoadJob is collective over `world` and called from one thread per process.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "loaders/loader.h"
#include "tiling/comm/communicator.h"
#include "tiling/status.h"

namespace tilestage {

struct LoadJobOptions {
  std::string store;
  // rank, world_size and nodes are set by RunLoadJob from the communicator.
  LoaderOptions loader;
  uint64_t epochs = 1;
  double compute_ms = 0;    // emulated training step per batch (a sleep); 0: none
  // Each batch's x is summed, as a training step reads it: comparable with consumers that read
  // their batches (a PyTorch loop's torch.sum). The sum is part of wall time, not compute time.
  bool read_batches = false;
  bool node_local = false;  // split samples over the ranks of each node only (partition staging)
};

struct LoadJobResult {
  // World rank 0: {"ranks", "samples", "wall_s", "samples_per_s", "au_percent", "per_rank"}, with
  // every rank's report in per_rank. Null on other ranks.
  nlohmann::json report;
  int64_t start_ms = 0;  // wall clock (Unix ms) when the ranks started loading together
  // All ranks' samples over the slowest rank's wall time.
  double samples_per_s = 0;
};

// InvalidArgument for zero epochs or a negative compute_ms; a rank that cannot open the store
// returns its error and the others Internal "another rank failed to open <store>"; a loading
// error is returned by the rank that met it after the reports are gathered.
Result<LoadJobResult> RunLoadJob(Communicator& world, const LoadJobOptions& options);

}  // namespace tilestage
