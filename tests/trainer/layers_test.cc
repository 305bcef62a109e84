// Finite-difference checks of every layer's backward pass (inputs and parameters).
#include "trainer/layers.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/trainer/fd_check.h"
#include "trainer/params.h"

namespace tilestage::trainer {
namespace {

using testing::CheckGradient;
using testing::FdReport;
using testing::Project;
using testing::RandomVector;

// Drives one layer: forward(x, y), backward(x, dy, dx). Checks dL/dx and dL/dparams where
// L = sum(r * y) for a fixed random r.
struct LayerHarness {
  ParamStore* store;
  int64_t in_size, out_size;
  std::function<void(const float*, float*)> forward;
  std::function<void(const float*, const float*, float*)> backward;

  void ExpectGradientsMatch(uint64_t seed, int64_t param_stride = 1, int64_t input_stride = 1) {
    store->Initialize(seed);
    // Perturb away from the ones/zeros init so norms and biases are exercised generically.
    for (size_t i = 0; i < store->params().size(); ++i) {
      store->params()[i] += 0.1f * float(std::sin(double(i) * 1.7));
    }
    std::vector<float> x = RandomVector(in_size, seed + 1);
    const std::vector<float> r = RandomVector(out_size, seed + 2);
    std::vector<float> y(out_size), dx(in_size, 0.0f);
    auto loss = [&] {
      forward(x.data(), y.data());
      return Project(y, r);
    };
    loss();
    store->ZeroGrads();
    backward(x.data(), r.data(), dx.data());
    const std::vector<float> param_grads = store->grads();

    FdReport rx = CheckGradient(loss, x.data(), dx, "input", input_stride);
    EXPECT_EQ(rx.failures, 0) << rx.first_failure << " (worst " << rx.worst_error << ")";
    EXPECT_GT(rx.checked, 0);
    FdReport rp = CheckGradient(loss, store->params().data(), param_grads, "param", param_stride);
    EXPECT_EQ(rp.failures, 0) << rp.first_failure << " (worst " << rp.worst_error << ")";
    EXPECT_GT(rp.checked, 0);
  }
};

TEST(LayersTest, LinearGradientsMatchFiniteDifferences) {
  ParamStore store;
  Linear linear;
  linear.Init(store, "fc", 5, 7);
  store.Finalize();
  const int64_t rows = 6;
  LayerHarness h{
      &store, rows * 5, rows * 7,
      [&](const float* x, float* y) { linear.Forward(store, x, rows, y); },
      [&](const float* x, const float* dy, float* dx) { linear.Backward(store, x, dy, rows, dx); }};
  h.ExpectGradientsMatch(1);
}

TEST(LayersTest, LinearLargeEnoughToSplitAcrossTasksMatchesFiniteDifferences) {
  // 300 rows x 160 outputs takes the parallel GEMM path (chunked by rows and by columns).
  ParamStore store;
  Linear linear;
  linear.Init(store, "fc", 40, 160);
  store.Finalize();
  const int64_t rows = 300;
  LayerHarness h{
      &store, rows * 40, rows * 160,
      [&](const float* x, float* y) { linear.Forward(store, x, rows, y); },
      [&](const float* x, const float* dy, float* dx) { linear.Backward(store, x, dy, rows, dx); }};
  h.ExpectGradientsMatch(2, /*param_stride=*/97, /*input_stride=*/89);
}

TEST(LayersTest, LayerNormGradientsMatchFiniteDifferences) {
  ParamStore store;
  LayerNorm norm;
  norm.Init(store, "norm", 8);
  store.Finalize();
  const int64_t rows = 70;  // more than one fixed chunk of rows
  LayerHarness h{
      &store, rows * 8, rows * 8,
      [&](const float* x, float* y) { norm.Forward(store, x, rows, y); },
      [&](const float* x, const float* dy, float* dx) { norm.Backward(store, x, dy, rows, dx); }};
  h.ExpectGradientsMatch(3);
}

TEST(LayersTest, GeluGradientMatchesFiniteDifferences) {
  const int64_t n = 50;
  std::vector<float> x = RandomVector(n, 4, 3.0f), y(n), dx(n, 0.0f);
  const std::vector<float> r = RandomVector(n, 5);
  auto loss = [&] {
    GeluForward(x.data(), n, y.data());
    return Project(y, r);
  };
  GeluBackward(x.data(), r.data(), n, dx.data());
  FdReport report = CheckGradient(loss, x.data(), dx, "gelu");
  EXPECT_EQ(report.failures, 0) << report.first_failure;
}

TEST(LayersTest, GeluMatchesTanhFormulaValues) {
  const float x[3] = {-1.0f, 0.0f, 2.0f};
  float y[3];
  GeluForward(x, 3, y);
  // 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))), evaluated independently in double.
  for (int i = 0; i < 3; ++i) {
    const double v = x[i];
    const double expected =
        0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y[i], expected, 1e-6);
  }
}

TEST(LayersTest, AttentionGradientsMatchFiniteDifferences) {
  ParamStore store;
  Attention attn;
  attn.Init(store, "attn", 8, 2);
  store.Finalize();
  const int64_t batch = 2, tokens = 5, rows = batch * tokens;
  LayerHarness h{&store, rows * 8, rows * 8,
                 [&](const float* x, float* y) { attn.Forward(store, x, batch, tokens, y); },
                 [&](const float* x, const float* dy, float* dx) {
                   attn.Backward(store, x, dy, batch, tokens, dx);
                 }};
  h.ExpectGradientsMatch(6);
}

TEST(LayersTest, AttentionRowsAreConvexCombinationsOfValues) {
  // With q = k = 0 every token attends uniformly, so each head outputs the mean of the values:
  // an independent check of the forward pass.
  ParamStore store;
  Attention attn;
  attn.Init(store, "attn", 4, 2);
  store.Finalize();
  store.Initialize(1);
  const ParamInfo* qkv_w = store.Find("attn.qkv.weight");
  const ParamInfo* proj_w = store.Find("attn.proj.weight");
  ASSERT_NE(qkv_w, nullptr);
  float* w = store.params().data() + qkv_w->offset;
  std::fill(w, w + qkv_w->size, 0.0f);
  for (int i = 0; i < 4; ++i) w[(8 + i) * 4 + i] = 1.0f;  // v = x
  float* p = store.params().data() + proj_w->offset;
  std::fill(p, p + proj_w->size, 0.0f);
  for (int i = 0; i < 4; ++i) p[i * 4 + i] = 1.0f;  // identity projection
  const int64_t tokens = 3;
  std::vector<float> x = RandomVector(tokens * 4, 9), y(tokens * 4);
  attn.Forward(store, x.data(), 1, tokens, y.data());
  for (int j = 0; j < 4; ++j) {
    const float mean = (x[j] + x[4 + j] + x[8 + j]) / 3.0f;
    for (int t = 0; t < tokens; ++t) EXPECT_NEAR(y[t * 4 + j], mean, 1e-6);
  }
}

// 600 tokens: blocks of 218 query rows (512 KB of scores), two full and a partial one, so dK and
// dV sum across blocks.
TEST(LayersTest, AttentionGradientsMatchFiniteDifferencesAcrossQueryRowBlocks) {
  ParamStore store;
  Attention attn;
  attn.Init(store, "attn", 4, 2);
  store.Finalize();
  const int64_t batch = 1, tokens = 600, rows = batch * tokens;
  LayerHarness h{&store, rows * 4, rows * 4,
                 [&](const float* x, float* y) { attn.Forward(store, x, batch, tokens, y); },
                 [&](const float* x, const float* dy, float* dx) {
                   attn.Backward(store, x, dy, batch, tokens, dx);
                 }};
  h.ExpectGradientsMatch(8, /*param_stride=*/1, /*input_stride=*/7);
}

// The blocked layer against softmax(QK^T / sqrt(hd)) V computed directly, in double, with whole
// score rows: 600 tokens span three blocks of query rows.
TEST(LayersTest, BlockedAttentionEqualsDirectSoftmaxOverManyTokens) {
  const int64_t dim = 8, heads = 2, hd = dim / heads, batch = 2, tokens = 600;
  ParamStore store;
  Attention attn;
  attn.Init(store, "attn", dim, heads);
  store.Finalize();
  store.Initialize(3);
  for (size_t i = 0; i < store.params().size(); ++i)
    store.params()[i] += 0.1f * float(std::sin(double(i) * 1.3));
  const std::vector<float> x = RandomVector(batch * tokens * dim, 4, 2.0f);
  std::vector<float> y(x.size());
  attn.Forward(store, x.data(), batch, tokens, y.data());

  auto param = [&](const char* name) { return store.params().data() + store.Find(name)->offset; };
  const float *wqkv = param("attn.qkv.weight"), *bqkv = param("attn.qkv.bias");
  const float *wproj = param("attn.proj.weight"), *bproj = param("attn.proj.bias");
  for (int64_t b = 0; b < batch; ++b) {
    // qkv[t][j] for j in [0, 3 dim): q, k, v side by side, heads contiguous within each.
    std::vector<std::vector<double>> qkv(tokens, std::vector<double>(3 * dim));
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t j = 0; j < 3 * dim; ++j) {
        double acc = bqkv[j];
        for (int64_t i = 0; i < dim; ++i) acc += double(wqkv[j * dim + i]) * x[(b * tokens + t) * dim + i];
        qkv[t][j] = acc;
      }
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<double> heads_out(dim, 0.0);
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> p(tokens);
        double max = -1e300, sum = 0.0;
        for (int64_t s2 = 0; s2 < tokens; ++s2) {
          double dot = 0.0;
          for (int64_t i = 0; i < hd; ++i) dot += qkv[t][h * hd + i] * qkv[s2][dim + h * hd + i];
          p[s2] = dot / std::sqrt(double(hd));
          max = std::max(max, p[s2]);
        }
        for (double& v : p) sum += (v = std::exp(v - max));
        for (int64_t s2 = 0; s2 < tokens; ++s2)
          for (int64_t i = 0; i < hd; ++i)
            heads_out[h * hd + i] += p[s2] / sum * qkv[s2][2 * dim + h * hd + i];
      }
      for (int64_t j = 0; j < dim; ++j) {
        double want = bproj[j];
        for (int64_t i = 0; i < dim; ++i) want += double(wproj[j * dim + i]) * heads_out[i];
        ASSERT_NEAR(y[(b * tokens + t) * dim + j], want, 1e-5 * (1.0 + std::abs(want)))
            << "sample " << b << " token " << t << " feature " << j;
      }
    }
  }
}

TEST(LayersTest, MlpGradientsMatchFiniteDifferences) {
  ParamStore store;
  Mlp mlp;
  mlp.Init(store, "mlp", 6, 12);
  store.Finalize();
  const int64_t rows = 4;
  LayerHarness h{
      &store, rows * 6, rows * 6, [&](const float* x, float* y) { mlp.Forward(store, x, rows, y); },
      [&](const float* x, const float* dy, float* dx) { mlp.Backward(store, x, dy, rows, dx); }};
  h.ExpectGradientsMatch(7);
}

TEST(LayersTest, BlockGradientsMatchFiniteDifferences) {
  ParamStore store;
  Block block;
  block.Init(store, "blocks.0", 8, 2, 16);
  store.Finalize();
  const int64_t batch = 2, tokens = 4, rows = batch * tokens;
  LayerHarness h{&store, rows * 8, rows * 8,
                 [&](const float* x, float* y) { block.Forward(store, x, batch, tokens, y); },
                 [&](const float* x, const float* dy, float* dx) {
                   block.Backward(store, x, dy, batch, tokens, dx);
                 }};
  h.ExpectGradientsMatch(8);
}

TEST(LayersTest, FiniteDifferenceCheckerCatchesAWrongGradient) {
  ParamStore store;
  Linear linear;
  linear.Init(store, "fc", 3, 4);
  store.Finalize();
  store.Initialize(1);
  std::vector<float> x = RandomVector(6, 2), y(8), dx(6, 0.0f);
  const std::vector<float> r = RandomVector(8, 3);
  auto loss = [&] {
    linear.Forward(store, x.data(), 2, y.data());
    return Project(y, r);
  };
  store.ZeroGrads();
  linear.Backward(store, x.data(), r.data(), 2, dx.data());
  std::vector<float> grads = store.grads();
  EXPECT_EQ(CheckGradient(loss, store.params().data(), grads, "ok").failures, 0);
  int64_t largest = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (std::abs(grads[i]) > std::abs(grads[largest])) largest = int64_t(i);
  }
  grads[largest] *= 1.03f;
  EXPECT_EQ(CheckGradient(loss, store.params().data(), grads, "bad").failures, 1);
}

TEST(LayersTest, PatchesRoundTripInConv2dOrder) {
  const int64_t b = 2, c = 3, h = 4, w = 6, p = 2;
  std::vector<float> img(b * c * h * w);
  for (size_t i = 0; i < img.size(); ++i) img[i] = float(i);
  std::vector<float> patches(img.size()), back(img.size());
  Im2Patches(img.data(), b, c, h, w, p, patches.data());
  // Patch (gy=1, gx=2) of sample 1, channel 2, (ky=1, kx=0): pixel (y=3, x=4).
  const int64_t row = (1 * 2 + 1) * 3 + 2, col = (2 * p + 1) * p + 0;
  EXPECT_EQ(patches[row * c * p * p + col], img[((1 * c + 2) * h + 3) * w + 4]);
  PatchesToImages(patches.data(), b, c, h, w, p, back.data());
  EXPECT_EQ(back, img);
}

TEST(LayersTest, SinCosPositionEmbeddingMatchesFormula) {
  const std::vector<float> pe = SinCosPositionEmbedding(8, 2, 3);
  // token (gy=1, gx=2), i=1: omega = 1/10000^(1/2) = 0.01.
  const float* row = pe.data() + (1 * 3 + 2) * 8;
  EXPECT_NEAR(row[1], std::sin(2 * 0.01), 1e-6);
  EXPECT_NEAR(row[2 + 1], std::cos(2 * 0.01), 1e-6);
  EXPECT_NEAR(row[4 + 0], std::sin(1.0), 1e-6);
  EXPECT_NEAR(row[6 + 0], std::cos(1.0), 1e-6);
}

}  // namespace
}  // namespace tilestage::trainer
