#include "trainer/params.h"

#include <algorithm>
#include <cmath>

#include "tiling/synth.h"

namespace tilestage::trainer {

ParamRef ParamStore::Add(const std::string& name, std::vector<int64_t> shape, bool decay,
                         ParamInit init, int64_t fan_in, int64_t fan_out) {
  int64_t size = 1;
  for (int64_t d : shape) size *= d;
  ParamInfo info{name, std::move(shape), total_, size, decay, init, fan_in, fan_out};
  infos_.push_back(info);
  total_ += size;
  return {info.offset, size};
}

void ParamStore::Finalize() {
  params_.assign(total_, 0.0f);
  grads_.assign(total_, 0.0f);
  exp_avg_.assign(total_, 0.0f);
  exp_avg_sq_.assign(total_, 0.0f);
}

void ParamStore::Initialize(uint64_t seed) {
  constexpr uint64_t kInitStream = 0x1417;
  for (size_t t = 0; t < infos_.size(); ++t) {
    const ParamInfo& info = infos_[t];
    float* p = params_.data() + info.offset;
    const uint64_t stream = (kInitStream << 32) | t;
    switch (info.init) {
      case ParamInit::kZeros:
        std::fill(p, p + info.size, 0.0f);
        break;
      case ParamInit::kOnes:
        std::fill(p, p + info.size, 1.0f);
        break;
      case ParamInit::kXavierUniform: {
        const double bound = std::sqrt(6.0 / double(info.fan_in + info.fan_out));
        for (int64_t i = 0; i < info.size; ++i) {
          p[i] = float((2.0 * CounterUniform(seed, stream, i) - 1.0) * bound);
        }
        break;
      }
      case ParamInit::kNormal02:
        for (int64_t i = 0; i < info.size; ++i) {
          // Box-Muller from two counter draws.
          const double u1 = std::max(CounterUniform(seed, stream, 2 * i), 1e-300);
          const double u2 = CounterUniform(seed, stream, 2 * i + 1);
          p[i] = float(0.02 * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
        }
        break;
    }
  }
}

const ParamInfo* ParamStore::Find(const std::string& name) const {
  for (const ParamInfo& info : infos_) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

void ParamStore::ZeroGrads() { std::fill(grads_.begin(), grads_.end(), 0.0f); }

}  // namespace tilestage::trainer
