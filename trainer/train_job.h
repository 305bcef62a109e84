// TrainJob: the whole `tilestage train` run on a communicator. It reads the store's manifest,
// builds the model from the store's geometry and the options, opens the training (and held-out)
// sources on the staging loader, starts or resumes the Trainer, and runs it. Rank 0 writes the
// human progress lines, the JSONL records (--json) and the MLLOG events (--mllog).
//
// --batch is the global batch (split evenly across ranks), so a run gives the same updates
// whatever the rank count.
//
// Thread-safety: RunTrainJob is collective over `comm` and called from one thread per process.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "tiling/comm/communicator.h"
#include "tiling/status.h"

namespace tilestage::trainer {

// The command's options, as `tilestage train --help` describes them.
struct TrainJobOptions {
  std::string store, eval_store, model = "vit-mae", preset = "tiny";
  double eval_fraction = 0.0;
  int64_t dim = 0, depth = 0, heads = 0, patch = 8;
  double mlp_ratio = 4.0;
  bool learned_pos = false;
  double mask_ratio = 0.75;
  int64_t decoder_dim = 128, decoder_depth = 1, decoder_heads = 4;
  int64_t classes = 0;
  int64_t epochs = 1, batch = 32, max_steps = -1;
  double lr = 1e-3, min_lr = 1e-5, weight_decay = 0.05, clip_norm = 1.0;
  int64_t warmup_steps = 0;
  uint64_t seed = 0;
  std::string checkpoint_dir;
  int64_t checkpoint_every = 0;
  bool resume = false;
  std::string allreduce = "auto";
  double bucket_mib = 4.0;
  int64_t checksum_every = 50;
  std::string json;   // JSONL records appended to this file; "-": `out`
  std::string mllog;  // MLLOG events appended to this file; "-": `out`; empty: none
  int64_t log_every = 10;
  int threads = 0;
  std::string shuffle = "global";
  uint64_t block_parts = 64;
  int prefetch = 4;
  uint64_t mem_budget_bytes = uint64_t{1} << 30;  // the loader's, per source
  bool augment = false;
  int64_t crop_h = 0, crop_w = 0;  // random crops of each training tile; 0: whole tiles
};

// InvalidArgument for options that do not fit the store or each other (naming the option and the
// value); the Trainer's errors otherwise. `out` takes "-" outputs, `progress` the human lines.
Status RunTrainJob(const TrainJobOptions& options, Communicator& comm, std::ostream& out,
                   std::ostream& progress);

}  // namespace tilestage::trainer
