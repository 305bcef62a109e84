#include "trainer/layers.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "trainer/gemm.h"

namespace tilestage::trainer {
namespace {

constexpr int64_t kRowChunk = 64;

// fn(begin, end) over [0, n) in fixed chunks of `chunk` (a partition independent of threads).
template <typename Fn>
void ForChunks(int64_t n, int64_t chunk, const Fn& fn) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks <= 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t i = r.begin(); i != r.end(); ++i) fn(i * chunk, std::min(n, (i + 1) * chunk));
      },
      tbb::simple_partitioner());
}

}  // namespace

// ---------------------------------------------------------------------------------------- Linear

void Linear::Init(ParamStore& store, const std::string& name, int64_t in, int64_t out, bool bias,
                  std::vector<int64_t> weight_shape) {
  in_ = in;
  out_ = out;
  has_bias_ = bias;
  if (weight_shape.empty()) weight_shape = {out, in};
  weight_ = store.Add(name + ".weight", std::move(weight_shape), /*decay=*/true,
                      ParamInit::kXavierUniform, in, out);
  if (bias) bias_ = store.Add(name + ".bias", {out}, /*decay=*/false, ParamInit::kZeros);
}

void Linear::Forward(const ParamStore& store, const float* x, int64_t rows, float* y) const {
  // y = x W^T (+ b): with W stored [out, in], W^T is a transposed map, which Eigen's GEMM packs.
  Gemm(false, true, rows, out_, in_, 1.0f, x, in_, store.param(weight_), in_, 0.0f, y, out_);
  if (!has_bias_) return;
  const float* b = store.param(bias_);
  ForChunks(rows, kRowChunk * 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* yr = y + r * out_;
      for (int64_t j = 0; j < out_; ++j) yr[j] += b[j];
    }
  });
}

void Linear::Backward(ParamStore& store, const float* x, const float* dy, int64_t rows,
                      float* dx) const {
  // dW += dy^T x  ([out, rows] x [rows, in]); dx += dy W.
  Gemm(true, false, out_, in_, rows, 1.0f, dy, out_, x, in_, 1.0f, store.grad(weight_), in_);
  if (has_bias_) {
    float* db = store.grad(bias_);
    // Columns in fixed chunks, rows summed in order: reproducible and parallel.
    ForChunks(out_, 64, [&](int64_t j0, int64_t j1) {
      for (int64_t r = 0; r < rows; ++r) {
        const float* dyr = dy + r * out_;
        for (int64_t j = j0; j < j1; ++j) db[j] += dyr[j];
      }
    });
  }
  if (dx != nullptr) {
    Gemm(false, false, rows, in_, out_, 1.0f, dy, out_, store.param(weight_), in_, 1.0f, dx, in_);
  }
}

// ------------------------------------------------------------------------------------- LayerNorm

void LayerNorm::Init(ParamStore& store, const std::string& name, int64_t dim) {
  dim_ = dim;
  weight_ = store.Add(name + ".weight", {dim}, /*decay=*/false, ParamInit::kOnes);
  bias_ = store.Add(name + ".bias", {dim}, /*decay=*/false, ParamInit::kZeros);
}

void LayerNorm::Forward(const ParamStore& store, const float* x, int64_t rows, float* y) {
  constexpr float kEps = 1e-6f;
  mean_.resize(rows);
  rstd_.resize(rows);
  const float* w = store.param(weight_);
  const float* b = store.param(bias_);
  const int64_t d = dim_;
  ForChunks(rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      float sum = 0.0f;
      for (int64_t j = 0; j < d; ++j) sum += xr[j];
      const float mean = sum / float(d);
      float var = 0.0f;
      for (int64_t j = 0; j < d; ++j) {
        const float c = xr[j] - mean;
        var += c * c;
      }
      const float rstd = 1.0f / std::sqrt(var / float(d) + kEps);
      mean_[r] = mean;
      rstd_[r] = rstd;
      float* yr = y + r * d;
      for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
    }
  });
}

void LayerNorm::Backward(ParamStore& store, const float* x, const float* dy, int64_t rows,
                         float* dx) {
  const int64_t d = dim_;
  const float* w = store.param(weight_);
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  partial_.assign(chunks * 2 * d, 0.0f);
  ForChunks(rows, kRowChunk, [&](int64_t r0, int64_t r1) {
    float* dw_part = partial_.data() + (r0 / kRowChunk) * 2 * d;
    float* db_part = dw_part + d;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      const float* dyr = dy + r * d;
      const float mean = mean_[r], rstd = rstd_[r];
      float dxhat_mean = 0.0f, dxhat_xhat_mean = 0.0f;
      for (int64_t j = 0; j < d; ++j) {
        const float xhat = (xr[j] - mean) * rstd;
        const float dxhat = dyr[j] * w[j];
        dxhat_mean += dxhat;
        dxhat_xhat_mean += dxhat * xhat;
        dw_part[j] += dyr[j] * xhat;
        db_part[j] += dyr[j];
      }
      dxhat_mean /= float(d);
      dxhat_xhat_mean /= float(d);
      if (dx == nullptr) continue;
      float* dxr = dx + r * d;
      for (int64_t j = 0; j < d; ++j) {
        const float xhat = (xr[j] - mean) * rstd;
        dxr[j] += rstd * (dyr[j] * w[j] - dxhat_mean - xhat * dxhat_xhat_mean);
      }
    }
  });
  float* dw = store.grad(weight_);
  float* db = store.grad(bias_);
  for (int64_t c = 0; c < chunks; ++c) {
    const float* dw_part = partial_.data() + c * 2 * d;
    for (int64_t j = 0; j < d; ++j) {
      dw[j] += dw_part[j];
      db[j] += dw_part[d + j];
    }
  }
}

// ------------------------------------------------------------------------------------------ GELU

namespace {
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluCubic = 0.044715f;
}  // namespace

// Eigen's array tanh/exp are vectorized (a rational approximation accurate to float rounding),
// several times faster than calling std::tanh per element.
void GeluForward(const float* x, int64_t n, float* y) {
  ForChunks(n, 1 << 14, [&](int64_t i0, int64_t i1) {
    Eigen::Map<const Eigen::ArrayXf> v(x + i0, i1 - i0);
    Eigen::Map<Eigen::ArrayXf> out(y + i0, i1 - i0);
    out = 0.5f * v * (1.0f + (kGeluScale * (v + kGeluCubic * v * v * v)).tanh());
  });
}

void GeluBackward(const float* x, const float* dy, int64_t n, float* dx) {
  ForChunks(n, 1 << 14, [&](int64_t i0, int64_t i1) {
    Eigen::Map<const Eigen::ArrayXf> v(x + i0, i1 - i0), g(dy + i0, i1 - i0);
    Eigen::Map<Eigen::ArrayXf> out(dx + i0, i1 - i0);
    const Eigen::ArrayXf t = (kGeluScale * (v + kGeluCubic * v * v * v)).tanh();
    const Eigen::ArrayXf dt = (1.0f - t * t) * kGeluScale * (1.0f + 3.0f * kGeluCubic * v * v);
    out += g * (0.5f * (1.0f + t) + 0.5f * v * dt);
  });
}

// ------------------------------------------------------------------------------------- Attention

void Attention::Init(ParamStore& store, const std::string& name, int64_t dim, int64_t heads) {
  dim_ = dim;
  heads_ = heads;
  qkv_.Init(store, name + ".qkv", dim, 3 * dim);
  proj_.Init(store, name + ".proj", dim, dim);
}

// Flash-attention style: each head's T x T probabilities are never held whole. Rows of queries
// go in blocks whose scores against every key (at most 512 KB: 128 rows at 1,024 tokens) stay in
// a core's L2 cache through the softmax and the product with V; forward keeps only each row's
// log-sum-exp, and backward recomputes the block's probabilities from it. The blocks of a head run
// in order on one thread, so dK and dV sum in the same order whatever the thread count.
namespace {
constexpr int64_t kScoreBlockFloats = int64_t{1} << 17;

int64_t QueryRowsPerBlock(int64_t tokens) {
  return std::clamp<int64_t>(kScoreBlockFloats / tokens, 16, 256);
}

// A block of scores, one pair per thread, kept between calls: allocating 256 KB per task would
// map fresh pages (and fault them in) every time. 64-byte aligned whichever thread owns it:
// Eigen's vectorized row sums start at the first aligned element, so the order of a row's sum
// (and its rounding) must not depend on the thread that ran the head. A task holds its thread's
// buffers only while it runs serial code (no TBB wait), so no other task can take them meanwhile.
float* ScoresBuffer(int which, int64_t floats) {
  struct Buffer {
    std::unique_ptr<float, decltype(&std::free)> data{nullptr, &std::free};
    int64_t floats = 0;
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[which];
  if (b.floats < floats) {
    const size_t bytes = (size_t(floats) * sizeof(float) + 63) / 64 * 64;
    b.data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (b.data == nullptr) throw std::bad_alloc();
    b.floats = floats;
  }
  return b.data.get();
}
}  // namespace

void Attention::Forward(const ParamStore& store, const float* x, int64_t batch, int64_t tokens,
                        float* y) {
  const int64_t rows = batch * tokens, d = dim_, hd = dim_ / heads_, t = tokens;
  const float scale = 1.0f / std::sqrt(float(hd));
  qkv_out_.resize(rows * 3 * d);
  log_sum_exp_.resize(batch * heads_ * t);
  heads_out_.resize(rows * d);
  qkv_.Forward(store, x, rows, qkv_out_.data());
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, batch * heads_, 1),
      [&](const tbb::blocked_range<int64_t>& range) {
        const int64_t block = std::min(t, QueryRowsPerBlock(t));
        float* scores = ScoresBuffer(0, block * t);
        for (int64_t bh = range.begin(); bh != range.end(); ++bh) {
          const int64_t b = bh / heads_, h = bh % heads_;
          const float* q = qkv_out_.data() + b * t * 3 * d + h * hd;
          const float* k = q + d;
          const float* v = q + 2 * d;
          for (int64_t i0 = 0; i0 < t; i0 += block) {
            const int64_t n = std::min(block, t - i0);
            // scores = scale * Q K^T, a row softmax in place, then scores V.
            GemmSerial(false, true, n, t, hd, scale, q + i0 * 3 * d, 3 * d, k, 3 * d, 0.0f,
                       scores, t);
            SoftmaxRows(scores, n, t, log_sum_exp_.data() + bh * t + i0);
            GemmSerial(false, false, n, hd, t, 1.0f, scores, t, v, 3 * d, 0.0f,
                       heads_out_.data() + (b * t + i0) * d + h * hd, d);
          }
        }
      },
      tbb::simple_partitioner());
  proj_.Forward(store, heads_out_.data(), rows, y);
}

void Attention::Backward(ParamStore& store, const float* x, const float* dy, int64_t batch,
                         int64_t tokens, float* dx) {
  const int64_t rows = batch * tokens, d = dim_, hd = dim_ / heads_, t = tokens;
  const float scale = 1.0f / std::sqrt(float(hd));
  d_heads_out_.assign(rows * d, 0.0f);
  d_qkv_.resize(rows * 3 * d);
  proj_.Backward(store, heads_out_.data(), dy, rows, d_heads_out_.data());
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, batch * heads_, 1),
      [&](const tbb::blocked_range<int64_t>& range) {
        const int64_t block = std::min(t, QueryRowsPerBlock(t));
        float* probs = ScoresBuffer(0, block * t);
        float* d_scores = ScoresBuffer(1, block * t);
        for (int64_t bh = range.begin(); bh != range.end(); ++bh) {
          const int64_t b = bh / heads_, h = bh % heads_;
          const int64_t base = b * t * 3 * d + h * hd;
          const float* q = qkv_out_.data() + base;
          const float* k = q + d;
          const float* v = q + 2 * d;
          float* dq = d_qkv_.data() + base;
          float* dk = dq + d;
          float* dv = dq + 2 * d;
          const float* dout = d_heads_out_.data() + b * t * d + h * hd;
          for (int64_t i0 = 0; i0 < t; i0 += block) {
            const int64_t n = std::min(block, t - i0);
            const float accumulate = i0 == 0 ? 0.0f : 1.0f;  // dK, dV sum over the row blocks
            const float* qi = q + i0 * 3 * d;
            const float* douti = dout + i0 * d;
            // P = exp(scale * Q K^T - log-sum-exp), as forward computed it.
            GemmSerial(false, true, n, t, hd, scale, qi, 3 * d, k, 3 * d, 0.0f, probs, t);
            SoftmaxFromLogSumExp(probs, n, t, log_sum_exp_.data() + bh * t + i0);
            // dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P)) * scale.
            GemmSerial(true, false, t, hd, n, 1.0f, probs, t, douti, d, accumulate, dv,
                       3 * d);
            GemmSerial(false, true, n, t, hd, 1.0f, douti, d, v, 3 * d, 0.0f, d_scores, t);
            SoftmaxBackward(probs, d_scores, n, t, scale);
            // dQ = dS K; dK += dS^T Q.
            GemmSerial(false, false, n, hd, t, 1.0f, d_scores, t, k, 3 * d, 0.0f,
                       dq + i0 * 3 * d, 3 * d);
            GemmSerial(true, false, t, hd, n, 1.0f, d_scores, t, qi, 3 * d, accumulate, dk,
                       3 * d);
          }
        }
      },
      tbb::simple_partitioner());
  qkv_.Backward(store, x, d_qkv_.data(), rows, dx);
}

// ------------------------------------------------------------------------------------------- MLP

void Mlp::Init(ParamStore& store, const std::string& name, int64_t dim, int64_t hidden) {
  dim_ = dim;
  hidden_ = hidden;
  fc1_.Init(store, name + ".fc1", dim, hidden);
  fc2_.Init(store, name + ".fc2", hidden, dim);
}

void Mlp::Forward(const ParamStore& store, const float* x, int64_t rows, float* y) {
  h_.resize(rows * hidden_);
  g_.resize(rows * hidden_);
  fc1_.Forward(store, x, rows, h_.data());
  GeluForward(h_.data(), rows * hidden_, g_.data());
  fc2_.Forward(store, g_.data(), rows, y);
}

void Mlp::Backward(ParamStore& store, const float* x, const float* dy, int64_t rows, float* dx) {
  dg_.assign(rows * hidden_, 0.0f);
  dh_.assign(rows * hidden_, 0.0f);
  fc2_.Backward(store, g_.data(), dy, rows, dg_.data());
  GeluBackward(h_.data(), dg_.data(), rows * hidden_, dh_.data());
  fc1_.Backward(store, x, dh_.data(), rows, dx);
}

// ----------------------------------------------------------------------------------------- Block

void Block::Init(ParamStore& store, const std::string& name, int64_t dim, int64_t heads,
                 int64_t hidden) {
  dim_ = dim;
  first_offset_ = store.total();
  ln1_.Init(store, name + ".norm1", dim);
  attn_.Init(store, name + ".attn", dim, heads);
  ln2_.Init(store, name + ".norm2", dim);
  mlp_.Init(store, name + ".mlp", dim, hidden);
}

void Block::Forward(const ParamStore& store, const float* x, int64_t batch, int64_t tokens,
                    float* y) {
  const int64_t n = batch * tokens * dim_;
  h1_.resize(n);
  a_.resize(n);
  x1_.resize(n);
  h2_.resize(n);
  m_.resize(n);
  ln1_.Forward(store, x, batch * tokens, h1_.data());
  attn_.Forward(store, h1_.data(), batch, tokens, a_.data());
  for (int64_t i = 0; i < n; ++i) x1_[i] = x[i] + a_[i];
  ln2_.Forward(store, x1_.data(), batch * tokens, h2_.data());
  mlp_.Forward(store, h2_.data(), batch * tokens, m_.data());
  for (int64_t i = 0; i < n; ++i) y[i] = x1_[i] + m_[i];
}

void Block::Backward(ParamStore& store, const float* x, const float* dy, int64_t batch,
                     int64_t tokens, float* dx) {
  const int64_t rows = batch * tokens, n = rows * dim_;
  dx1_.assign(dy, dy + n);
  dh2_.assign(n, 0.0f);
  mlp_.Backward(store, h2_.data(), dy, rows, dh2_.data());
  ln2_.Backward(store, x1_.data(), dh2_.data(), rows, dx1_.data());
  dh1_.assign(n, 0.0f);
  attn_.Backward(store, h1_.data(), dx1_.data(), batch, tokens, dh1_.data());
  for (int64_t i = 0; i < n; ++i) dx[i] += dx1_[i];
  ln1_.Backward(store, x, dh1_.data(), rows, dx);
}

// --------------------------------------------------------------------------------------- Patches

void Im2Patches(const float* images, int64_t batch, int64_t channels, int64_t height, int64_t width,
                int64_t patch, float* patches) {
  const int64_t gh = height / patch, gw = width / patch, row_len = channels * patch * patch;
  ForChunks(batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* img = images + b * channels * height * width;
      for (int64_t gy = 0; gy < gh; ++gy) {
        for (int64_t gx = 0; gx < gw; ++gx) {
          float* row = patches + ((b * gh + gy) * gw + gx) * row_len;
          for (int64_t c = 0; c < channels; ++c) {
            for (int64_t ky = 0; ky < patch; ++ky) {
              const float* src = img + (c * height + gy * patch + ky) * width + gx * patch;
              std::memcpy(row + (c * patch + ky) * patch, src, patch * sizeof(float));
            }
          }
        }
      }
    }
  });
}

void PatchesToImages(const float* patches, int64_t batch, int64_t channels, int64_t height,
                     int64_t width, int64_t patch, float* images) {
  const int64_t gh = height / patch, gw = width / patch, row_len = channels * patch * patch;
  ForChunks(batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* img = images + b * channels * height * width;
      for (int64_t gy = 0; gy < gh; ++gy) {
        for (int64_t gx = 0; gx < gw; ++gx) {
          const float* row = patches + ((b * gh + gy) * gw + gx) * row_len;
          for (int64_t c = 0; c < channels; ++c) {
            for (int64_t ky = 0; ky < patch; ++ky) {
              float* dst = img + (c * height + gy * patch + ky) * width + gx * patch;
              std::memcpy(dst, row + (c * patch + ky) * patch, patch * sizeof(float));
            }
          }
        }
      }
    }
  });
}

std::vector<float> SinCosPositionEmbedding(int64_t dim, int64_t grid_h, int64_t grid_w) {
  // As MAE's get_2d_sincos_pos_embed: half the channels encode the w coordinate, half the h
  // coordinate, each as [sin(pos * omega), cos(pos * omega)] with omega = 1/10000^(i/(dim/4)).
  std::vector<float> out(grid_h * grid_w * dim);
  const int64_t quarter = dim / 4;
  for (int64_t gy = 0; gy < grid_h; ++gy) {
    for (int64_t gx = 0; gx < grid_w; ++gx) {
      float* row = out.data() + (gy * grid_w + gx) * dim;
      for (int64_t i = 0; i < quarter; ++i) {
        const double omega = 1.0 / std::pow(10000.0, double(i) / double(quarter));
        row[i] = float(std::sin(gx * omega));
        row[quarter + i] = float(std::cos(gx * omega));
        row[2 * quarter + i] = float(std::sin(gy * omega));
        row[3 * quarter + i] = float(std::cos(gy * omega));
      }
    }
  }
  return out;
}

}  // namespace tilestage::trainer
