// AdamW over a ParamStore's flat buffers, the learning-rate schedule (linear warm-up, then
// cosine decay to min_lr) and global-norm gradient clipping.
//
// Weight decay applies only to tensors whose ParamInfo::decay is set (weights of Linear layers
// and the patch embedding), not to biases, norms or embeddings. Thread-safety: one caller at a
// time; the update runs TBB tasks over disjoint tensors.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "trainer/params.h"

namespace tilestage::trainer {

struct AdamWConfig {
  double lr = 1e-3;  // peak learning rate
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.05;
  double min_lr = 1e-5;
  int64_t warmup_steps = 0;
  double clip_norm = 1.0;  // <= 0: no clipping
  nlohmann::json ToJson() const;
};

// Learning rate for 0-based `step` of `total_steps`.
double ScheduledLearningRate(const AdamWConfig& config, int64_t step, int64_t total_steps);

// L2 norm of all gradients (accumulated in double, in a fixed order).
double GlobalGradNorm(const ParamStore& store);
// Scales the gradients so their global norm is at most max_norm; returns the norm before.
double ClipGradNorm(ParamStore& store, double max_norm);

// One AdamW update with bias correction; `step` is 1-based (the count of updates so far
// including this one).
void AdamWStep(ParamStore& store, const AdamWConfig& config, double lr, int64_t step);

}  // namespace tilestage::trainer
