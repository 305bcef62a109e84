// The layers of a ViT, each with an explicit Forward and Backward over flat buffers (llm.c
// style). Parameters and their gradients live in a ParamStore; activations are row-major
// [rows, features] float buffers, one row per token.
//
// Conventions, the same for every layer:
//  - Forward(x, ..., y) overwrites y. Layers that need more than their input for the backward
//    pass keep it in their own cache buffers; the caller keeps x alive until Backward.
//  - Backward(x, dy, ..., dx) ADDS the input gradient into dx (so residual branches simply sum)
//    and adds the parameter gradients into the ParamStore's grad buffer. dx may be nullptr when
//    the input gradient is not needed (the patch embedding of raw pixels).
// Thread-safety: a layer object is used by one thread at a time; internally it runs TBB tasks on
// disjoint rows, with fixed chunking so results are bitwise reproducible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/params.h"

namespace tilestage::trainer {

class Linear {
 public:
  // weight [out, in] (PyTorch's nn.Linear layout), bias [out]. weight_shape overrides the shape
  // recorded for the weight (e.g. [D, C, p, p] for a patch embedding) without changing its size.
  void Init(ParamStore& store, const std::string& name, int64_t in, int64_t out, bool bias = true,
            std::vector<int64_t> weight_shape = {});
  void Forward(const ParamStore& store, const float* x, int64_t rows, float* y) const;
  void Backward(ParamStore& store, const float* x, const float* dy, int64_t rows, float* dx) const;
  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  ParamRef weight() const { return weight_; }
  ParamRef bias() const { return bias_; }

 private:
  int64_t in_ = 0, out_ = 0;
  bool has_bias_ = true;
  ParamRef weight_, bias_;
};

class LayerNorm {
 public:
  void Init(ParamStore& store, const std::string& name, int64_t dim);
  void Forward(const ParamStore& store, const float* x, int64_t rows, float* y);
  void Backward(ParamStore& store, const float* x, const float* dy, int64_t rows, float* dx);

 private:
  int64_t dim_ = 0;
  ParamRef weight_, bias_;
  std::vector<float> mean_, rstd_;
  std::vector<float> partial_;  // per-chunk weight/bias gradient partial sums
};

// GELU, tanh approximation (PyTorch's nn.GELU(approximate="tanh")).
void GeluForward(const float* x, int64_t n, float* y);
void GeluBackward(const float* x, const float* dy, int64_t n, float* dx);  // dx +=

// Multi-head self-attention over `tokens` tokens per sample: qkv Linear(D, 3D), softmax(QK^T /
// sqrt(hd)) V per head, output projection Linear(D, D). Blocked over query rows so that no
// head's whole T x T score matrix is materialized (it would not fit in cache at 1,024 tokens);
// backward recomputes the probabilities from each row's log-sum-exp.
class Attention {
 public:
  void Init(ParamStore& store, const std::string& name, int64_t dim, int64_t heads);
  void Forward(const ParamStore& store, const float* x, int64_t batch, int64_t tokens, float* y);
  void Backward(ParamStore& store, const float* x, const float* dy, int64_t batch, int64_t tokens,
                float* dx);

 private:
  int64_t dim_ = 0, heads_ = 0;
  Linear qkv_, proj_;
  std::vector<float> qkv_out_, log_sum_exp_, heads_out_, d_heads_out_, d_qkv_;
};

class Mlp {
 public:
  void Init(ParamStore& store, const std::string& name, int64_t dim, int64_t hidden);
  void Forward(const ParamStore& store, const float* x, int64_t rows, float* y);
  void Backward(ParamStore& store, const float* x, const float* dy, int64_t rows, float* dx);

 private:
  int64_t dim_ = 0, hidden_ = 0;
  Linear fc1_, fc2_;
  std::vector<float> h_, g_, dg_, dh_;
};

// Pre-LN transformer block: x + Attn(LN1(x)), then + MLP(LN2(.)).
class Block {
 public:
  void Init(ParamStore& store, const std::string& name, int64_t dim, int64_t heads, int64_t hidden);
  void Forward(const ParamStore& store, const float* x, int64_t batch, int64_t tokens, float* y);
  void Backward(ParamStore& store, const float* x, const float* dy, int64_t batch, int64_t tokens,
                float* dx);
  // Offset of this block's first parameter: its gradients are final after Backward.
  int64_t first_param_offset() const { return first_offset_; }

 private:
  int64_t dim_ = 0;
  int64_t first_offset_ = 0;
  LayerNorm ln1_, ln2_;
  Attention attn_;
  Mlp mlp_;
  std::vector<float> h1_, a_, x1_, h2_, m_, dx1_, dh1_, dh2_;
};

// Rearranges images [B, C, H, W] into patch rows [B * (H/p) * (W/p), C*p*p], element order
// (c, ky, kx) within a row, as PyTorch's Conv2d(kernel=stride=p) weight [D, C, p, p] flattens.
void Im2Patches(const float* images, int64_t batch, int64_t channels, int64_t height, int64_t width,
                int64_t patch, float* patches);
// The inverse rearrangement.
void PatchesToImages(const float* patches, int64_t batch, int64_t channels, int64_t height,
                     int64_t width, int64_t patch, float* images);

// MAE's fixed 2-D sin-cos position embedding, [grid_h * grid_w, dim]; dim % 4 == 0.
std::vector<float> SinCosPositionEmbedding(int64_t dim, int64_t grid_h, int64_t grid_w);

}  // namespace tilestage::trainer
