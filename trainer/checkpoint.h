// Checkpoints: one directory per save under the checkpoint root,
//   <root>/step-00000120/model.safetensors      weights (PyTorch-style names and shapes)
//   <root>/step-00000120/optimizer.safetensors  AdamW moments ("exp_avg.<name>",
//   "exp_avg_sq.<name>") <root>/step-00000120/state.json             step, configuration, loader
//   position, RNG state,
//                                               and the size and XXH3 of both tensor files
//   <root>/latest.json                          {"checkpoint": "step-00000120"}
// Each file is written atomically (Storage::WriteAtomic) and state.json after the tensors, then
// latest.json, so a checkpoint is complete exactly when latest.json names it: a crash mid-save
// leaves the previous checkpoint current. Reading checks sizes and hashes (truncated or corrupt
// files are DataLoss naming the file) and that the configuration matches this run's
// (FailedPrecondition naming the first differing key).
//
// The loader position is global, (epoch, samples consumed by all ranks), and state.json records
// it with what fixes the order of the data (config "data": global batch, seed, shuffle, store
// identity), not the number of ranks: a checkpoint written by N ranks resumes on any M ranks that
// divide the global batch, and a run whose data settings differ is refused with the setting
// named as the train command spells it (`--batch 32`, not a per-rank size).
// Thread-safety: plain functions; callers serialize writes to one root (rank 0 only).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tiling/status.h"
#include "tiling/storage.h"
#include "trainer/batch_source.h"
#include "trainer/params.h"

namespace tilestage::trainer {

struct CheckpointState {
  int64_t step = 0;         // optimizer updates done
  SourcePosition position;  // where the training source continues (global)
  uint64_t seed = 0;        // the counter-based RNG's key (init, masks, shuffles)
  nlohmann::json config;    // model + optimizer + data-parallel configuration
};

// Writes a checkpoint; returns its directory path.
Result<std::string> WriteCheckpoint(Storage& storage, const std::string& root,
                                    const ParamStore& params, const CheckpointState& state);

// The directory latest.json names; NotFound when the root holds no complete checkpoint.
Result<std::string> FindLatestCheckpoint(Storage& storage, const std::string& root);

// Loads `dir` into params (weights and moments) after checking that its configuration equals
// `expected_config` on every key of expected_config["model"] and ["data"] (then the tensor
// names and shapes). Data keys are named by their train flag: global_batch (--batch), seed
// (--seed), shuffle (--shuffle), store (--store: {"path", "fingerprint", "records"}, compared on
// fingerprint and records, so a staged copy of the store is the same store).
Result<CheckpointState> ReadCheckpoint(Storage& storage, const std::string& dir,
                                       const nlohmann::json& expected_config, ParamStore* params);

}  // namespace tilestage::trainer
