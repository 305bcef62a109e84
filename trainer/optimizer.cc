#include "trainer/optimizer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

namespace tilestage::trainer {

nlohmann::json AdamWConfig::ToJson() const {
  return {{"lr", lr},
          {"beta1", beta1},
          {"beta2", beta2},
          {"eps", eps},
          {"weight_decay", weight_decay},
          {"min_lr", min_lr},
          {"warmup_steps", warmup_steps},
          {"clip_norm", clip_norm}};
}

double ScheduledLearningRate(const AdamWConfig& config, int64_t step, int64_t total_steps) {
  if (config.warmup_steps > 0 && step < config.warmup_steps) {
    return config.lr * double(step + 1) / double(config.warmup_steps);
  }
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - config.warmup_steps);
  const double progress =
      std::clamp(double(step - config.warmup_steps) / double(decay_steps), 0.0, 1.0);
  return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + std::cos(M_PI * progress));
}

double GlobalGradNorm(const ParamStore& store) {
  const std::vector<float>& g = const_cast<ParamStore&>(store).grads();
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n = int64_t(g.size()), chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
  tbb::parallel_for(int64_t{0}, chunks, [&](int64_t c) {
    double s = 0.0;
    for (int64_t i = c * kChunk, e = std::min(n, (c + 1) * kChunk); i < e; ++i) {
      s += double(g[i]) * double(g[i]);
    }
    partial[c] = s;
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

double ClipGradNorm(ParamStore& store, double max_norm) {
  const double norm = GlobalGradNorm(store);
  if (max_norm > 0.0 && norm > max_norm) {
    const float scale = float(max_norm / (norm + 1e-6));
    std::vector<float>& g = store.grads();
    tbb::parallel_for(size_t{0}, g.size(), size_t{1} << 16, [&](size_t i0) {
      for (size_t i = i0, e = std::min(g.size(), i0 + (size_t{1} << 16)); i < e; ++i) g[i] *= scale;
    });
  }
  return norm;
}

void AdamWStep(ParamStore& store, const AdamWConfig& config, double lr, int64_t step) {
  const float b1 = float(config.beta1), b2 = float(config.beta2), eps = float(config.eps);
  const float correction1 = float(1.0 - std::pow(config.beta1, double(step)));
  const float correction2 = float(1.0 - std::pow(config.beta2, double(step)));
  const float step_size = float(lr) / correction1;
  const float inv_sqrt_c2 = 1.0f / std::sqrt(correction2);
  const std::vector<ParamInfo>& infos = store.infos();
  float* p = store.params().data();
  const float* g = store.grads().data();
  float* m = store.exp_avg().data();
  float* v = store.exp_avg_sq().data();
  tbb::parallel_for(size_t{0}, infos.size(), [&](size_t t) {
    const ParamInfo& info = infos[t];
    const float decay = info.decay ? float(1.0 - lr * config.weight_decay) : 1.0f;
    for (int64_t i = info.offset, e = info.offset + info.size; i < e; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      // PyTorch's AdamW: decoupled decay first, then the Adam step.
      p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
    }
  });
}

}  // namespace tilestage::trainer
