// ParamStore: every trainable tensor of a model in one flat float buffer, llm.c style, with the
// gradients and the AdamW moments in parallel flat buffers of the same layout.
//
// Flat buffers make the optimizer one loop, the gradient allreduce a few large contiguous buckets,
// a checkpoint a handful of memcpys, and the parameter order identical on every rank (it is the
// registration order, which is the forward order of the layers). Layers keep a ParamRef (an
// offset) and map it with Eigen when they run, so the buffers may be reallocated freely until
// Finalize().
//
// Thread-safety: registration is single-threaded; after Finalize() the buffers are plain memory
// that layers write from TBB tasks on disjoint ranges.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::trainer {

// How a tensor is initialized by ParamStore::Initialize.
enum class ParamInit { kZeros, kOnes, kXavierUniform, kNormal02 };

struct ParamInfo {
  std::string name;            // "blocks.0.attn.qkv.weight" (PyTorch-like naming)
  std::vector<int64_t> shape;  // row-major
  int64_t offset = 0;          // into the flat buffers, in floats
  int64_t size = 0;            // product of shape
  bool decay = true;           // AdamW weight decay applies (false: biases, norms, embeddings)
  ParamInit init = ParamInit::kZeros;
  int64_t fan_in = 0, fan_out = 0;  // for kXavierUniform
};

struct ParamRef {
  int64_t offset = -1;
  int64_t size = 0;
};

class ParamStore {
 public:
  // Registers a tensor; returns where it lives. Must precede Finalize().
  ParamRef Add(const std::string& name, std::vector<int64_t> shape, bool decay, ParamInit init,
               int64_t fan_in = 0, int64_t fan_out = 0);
  // Allocates params, grads and both moments (zero-filled).
  void Finalize();
  // Sets every tensor from its ParamInit with a counter-based RNG keyed by (seed, tensor index,
  // element), so the result does not depend on threads or ranks.
  void Initialize(uint64_t seed);

  float* param(ParamRef r) { return params_.data() + r.offset; }
  const float* param(ParamRef r) const { return params_.data() + r.offset; }
  float* grad(ParamRef r) { return grads_.data() + r.offset; }

  int64_t total() const { return total_; }
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }
  std::vector<float>& grads() { return grads_; }
  std::vector<float>& exp_avg() { return exp_avg_; }
  std::vector<float>& exp_avg_sq() { return exp_avg_sq_; }
  const std::vector<float>& exp_avg() const { return exp_avg_; }
  const std::vector<float>& exp_avg_sq() const { return exp_avg_sq_; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  const ParamInfo* Find(const std::string& name) const;
  void ZeroGrads();

 private:
  std::vector<ParamInfo> infos_;
  int64_t total_ = 0;
  std::vector<float> params_, grads_, exp_avg_, exp_avg_sq_;
};

}  // namespace tilestage::trainer
