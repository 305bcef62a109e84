// Whole-model finite-difference checks for each objective, and configuration errors.
#include "trainer/model.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/trainer/fd_check.h"

namespace tilestage::trainer {
namespace {

using testing::CheckGradient;
using testing::FdReport;
using testing::RandomVector;

ModelConfig TinyConfig(Objective objective) {
  ModelConfig c;
  c.objective = objective;
  c.dim = 8;
  c.depth = 2;
  c.heads = 2;
  c.patch = 2;
  c.mlp_ratio = 2.0;
  c.in_channels = 2;
  c.height = 4;
  c.width = 6;
  c.decoder_dim = 8;
  c.decoder_heads = 2;
  c.decoder_depth = 1;
  c.mask_ratio = 0.5;
  return c;
}

void ExpectModelGradientsMatch(const ModelConfig& config, std::vector<float> y,
                               const std::vector<uint8_t>& y_valid = {},
                               const std::vector<uint8_t>& x_valid = {}) {
  auto model_or = VitModel::Create(config);
  ASSERT_TRUE(model_or.ok()) << model_or.status().ToString();
  VitModel& model = **model_or;
  model.InitParams(5);
  // Move away from the zero/one init so every parameter influences the loss.
  auto& p = model.params().params();
  for (size_t i = 0; i < p.size(); ++i) p[i] += 0.05f * float(std::sin(double(i) * 0.37));
  const int64_t batch = 3;
  std::vector<float> x =
      RandomVector(batch * config.in_channels * config.height * config.width, 11);
  for (size_t i = 0; i < x_valid.size(); ++i)
    if (!x_valid[i]) x[i] = 0.0f;  // as the loader delivers pixels without data
  std::vector<uint64_t> ids = {7, 1000, 42};
  BatchView view{batch, x, y, ids, 2, y_valid};
  view.x_valid = x_valid;
  auto loss = [&] {
    auto r = model.Forward(view, 99);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->loss : 0.0;
  };
  loss();
  model.params().ZeroGrads();
  int64_t last_ready = model.params().total();
  model.Backward([&](int64_t offset) {
    EXPECT_LE(offset, last_ready) << "gradient-ready offsets must only decrease";
    last_ready = offset;
  });
  EXPECT_EQ(last_ready, 0);
  const std::vector<float> grads = model.params().grads();
  double norm = 0.0;
  for (float g : grads) norm += g * g;
  EXPECT_GT(norm, 0.0);
  FdReport report = CheckGradient(loss, p.data(), grads, "param", 1, 1e-2f, 2e-4, 2e-2);
  EXPECT_EQ(report.failures, 0) << report.first_failure << " worst " << report.worst_error << " of "
                                << report.checked;
  // The checker must be able to fail here too: one wrong entry is caught.
  std::vector<float> wrong = grads;
  int64_t largest = 0;
  for (size_t i = 0; i < wrong.size(); ++i) {
    if (std::abs(wrong[i]) > std::abs(wrong[largest])) largest = int64_t(i);
  }
  wrong[largest] *= 1.05f;
  EXPECT_GE(CheckGradient(loss, p.data(), wrong, "wrong", 1, 1e-2f, 2e-4, 2e-2).failures, 1);
}

TEST(ModelTest, ClassifyGradientsMatchFiniteDifferences) {
  ModelConfig c = TinyConfig(Objective::kClassify);
  c.classes = 3;
  c.y_shape = {1};
  ExpectModelGradientsMatch(c, {0, 2, 1});
}

TEST(ModelTest, DenseRegressGradientsMatchFiniteDifferences) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {1, 4, 6};
  c.learned_pos = true;
  ExpectModelGradientsMatch(c, RandomVector(3 * 24, 3));
}

TEST(ModelTest, PooledRegressGradientsMatchFiniteDifferences) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {2};
  ExpectModelGradientsMatch(c, RandomVector(3 * 2, 4));
}

TEST(ModelTest, MaeGradientsMatchFiniteDifferences) {
  ModelConfig c = TinyConfig(Objective::kMae);
  ExpectModelGradientsMatch(c, {});
}

TEST(ModelTest, MaeMaskDependsOnSampleAndEpochNotBatchPosition) {
  ModelConfig c = TinyConfig(Objective::kMae);
  auto model = VitModel::Create(c);
  ASSERT_TRUE(model.ok());
  (*model)->InitParams(1);
  const int64_t per = c.in_channels * c.height * c.width;
  std::vector<float> x = RandomVector(2 * per, 1);
  std::vector<uint64_t> ids = {5, 9};
  auto both = (*model)->Forward({2, x, {}, ids, 0}, 3);
  ASSERT_TRUE(both.ok());
  // Loss of the pair is the masked-patch mean; each sample alone, in either order, must give the
  // same per-sample contributions (equal masked counts per sample).
  std::vector<float> x_swapped(2 * per);
  std::copy(x.begin() + per, x.end(), x_swapped.begin());
  std::copy(x.begin(), x.begin() + per, x_swapped.begin() + per);
  std::vector<uint64_t> ids_swapped = {9, 5};
  auto swapped = (*model)->Forward({2, x_swapped, {}, ids_swapped, 0}, 3);
  ASSERT_TRUE(swapped.ok());
  EXPECT_NEAR(both->loss, swapped->loss, 1e-6);
  auto other_epoch = (*model)->Forward({2, x, {}, ids, 1}, 3);
  ASSERT_TRUE(other_epoch.ok());
  EXPECT_NE(both->loss, other_epoch->loss);
}

TEST(ModelTest, ParameterNamesFollowPyTorchConventions) {
  ModelConfig c = TinyConfig(Objective::kMae);
  auto model = VitModel::Create(c);
  ASSERT_TRUE(model.ok());
  const ParamStore& ps = (*model)->params();
  const ParamInfo* pe = ps.Find("patch_embed.proj.weight");
  ASSERT_NE(pe, nullptr);
  EXPECT_EQ(pe->shape, (std::vector<int64_t>{8, 2, 2, 2}));
  EXPECT_TRUE(pe->decay);
  ASSERT_NE(ps.Find("blocks.1.attn.qkv.weight"), nullptr);
  EXPECT_FALSE(ps.Find("blocks.0.norm1.weight")->decay);
  EXPECT_FALSE(ps.Find("blocks.0.mlp.fc1.bias")->decay);
  EXPECT_FALSE(ps.Find("mask_token")->decay);
  EXPECT_TRUE(ps.Find("decoder_pred.weight")->decay);
}

TEST(ModelTest, ClassifyWithoutLabelFieldIsInvalidArgument) {
  ModelConfig c = TinyConfig(Objective::kClassify);
  c.classes = 3;
  auto model = VitModel::Create(c);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("label field y"), std::string::npos);
}

TEST(ModelTest, RegressWithoutTargetIsInvalidArgument) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  auto model = VitModel::Create(c);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("target field y"), std::string::npos);
}

TEST(ModelTest, AbsurdSizesAreInvalidArgumentNamingTheOption) {
  ModelConfig dim = TinyConfig(Objective::kMae);
  dim.dim = int64_t{1} << 40;
  EXPECT_EQ(VitModel::Create(dim).status().message(), "model: --dim 1099511627776 is more than 65536");
  ModelConfig classes = TinyConfig(Objective::kClassify);
  classes.y_shape = {1};
  classes.classes = int64_t{1} << 40;
  EXPECT_THAT(VitModel::Create(classes).status().message(),
              ::testing::HasSubstr("vit-classify: 1099511627776 classes"));
  ModelConfig tokens = TinyConfig(Objective::kMae);
  tokens.height = tokens.width = 1024;
  tokens.patch = 2;  // 512 x 512 tokens
  EXPECT_THAT(VitModel::Create(tokens).status().message(),
              ::testing::HasSubstr("are 262144 tokens, more than 65536"));
}

TEST(ModelTest, ModelLargerThanTheMachineIsResourceExhaustedBeforeAllocating) {
  ModelConfig c = TinyConfig(Objective::kMae);
  c.dim = 65536;
  c.heads = 1;
  c.depth = 64;  // 64 blocks of 12 dim^2 parameters: ~13 TiB with gradients and moments
  auto model = VitModel::Create(c);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(model.status().message(),
              ::testing::HasSubstr("MiB for weights, gradients and Adam moments"));
}

TEST(ModelTest, PatchNotDividingTileIsInvalidArgument) {
  ModelConfig c = TinyConfig(Objective::kMae);
  c.patch = 4;  // width 6
  auto model = VitModel::Create(c);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("--patch 4"), std::string::npos);
}

TEST(ModelTest, PatchNotDividingTileNamesTileSizePatchAndTheOptionsThatFixIt) {
  // The default `--tile full` NetCDF store of a 36x72 grid with the default --patch 8.
  ModelConfig c = TinyConfig(Objective::kMae);
  c.height = 36;
  c.width = 72;
  c.patch = 8;
  auto model = VitModel::Create(c);
  ASSERT_FALSE(model.ok());
  const std::string m = model.status().message();
  EXPECT_NE(m.find("--patch 8 does not divide the 36x72 tiles"), std::string::npos) << m;
  EXPECT_NE(m.find("--patch 18, 12, 9, 6, 4, 3, 2"), std::string::npos) << m;  // divide both
  EXPECT_NE(m.find("--crop 32,72"), std::string::npos) << m;  // largest multiple of 8
  EXPECT_NE(m.find("--tile H,W in multiples of 8"), std::string::npos) << m;
}

// Loss and gradients of one forward/backward pass over a batch.
struct Pass {
  double loss = 0.0;
  int64_t correct = 0;
  std::vector<float> grads;
};

Pass RunPass(const ModelConfig& c, int64_t batch, const std::vector<float>& x,
             const std::vector<float>& y, const std::vector<uint8_t>& y_valid,
             const std::vector<uint64_t>& ids, double targets_per_rank = 0.0,
             const std::vector<uint8_t>& x_valid = {}) {
  auto model = VitModel::Create(c);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  (*model)->InitParams(3);
  auto r = (*model)->Forward({batch, x, y, ids, 0, y_valid, targets_per_rank, x_valid}, 0);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  (*model)->params().ZeroGrads();
  (*model)->Backward();
  return {r->loss, r->correct, (*model)->params().grads()};
}

// Samples [first, first + n) of a batch whose samples are `per` values each.
std::vector<float> Slice(const std::vector<float>& v, int64_t per, int64_t first, int64_t n) {
  return {v.begin() + first * per, v.begin() + (first + n) * per};
}

TEST(ModelTest, DenseRegressSkipsInvalidTargetPixels) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {1, 4, 6};
  const int64_t batch = 3, xe = 2 * 24, ye = 24;
  const std::vector<float> x = RandomVector(batch * xe, 21);
  std::vector<float> y = RandomVector(batch * ye, 22);
  std::vector<uint8_t> valid(y.size(), 1);
  for (size_t i = 0; i < valid.size(); i += 3) valid[i] = 0;
  // What sits under an invalid pixel (0 after normalization, or a sentinel such as 255 fed raw)
  // changes neither the loss nor the gradients.
  std::vector<float> zeros = y, sentinel = y;
  for (size_t i = 0; i < valid.size(); ++i)
    if (!valid[i]) zeros[i] = 0.0f, sentinel[i] = 255.0f;
  const std::vector<uint64_t> ids = {0, 1, 2};
  const Pass a = RunPass(c, batch, x, zeros, valid, ids);
  const Pass b = RunPass(c, batch, x, sentinel, valid, ids);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grads, b.grads);
  EXPECT_GT(a.loss, 0.0);
  EXPECT_LT(a.loss, 10.0);
  // Without the mask the sentinel dominates the loss: the mask is what keeps it sane.
  EXPECT_GT(RunPass(c, batch, x, sentinel, {}, ids).loss, 1000.0);
  // An all-valid mask is the same as no mask.
  const std::vector<uint8_t> all(y.size(), 1);
  EXPECT_EQ(RunPass(c, batch, x, y, all, ids).loss, RunPass(c, batch, x, y, {}, ids).loss);
}

// Data parallel averages the ranks' gradients. With the job-wide divisor, two ranks whose halves
// of the batch hold different numbers of valid targets average to the one-rank gradient.
TEST(ModelTest, RanksWithUnevenValidTargetsAverageToTheWholeBatchWithTheJobWideDivisor) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {1, 4, 6};
  const int64_t xe = 2 * 24, ye = 24;
  const std::vector<float> x = RandomVector(4 * xe, 41), y = RandomVector(4 * ye, 42);
  std::vector<uint8_t> valid(y.size(), 1);
  for (int64_t i = 0; i < 2 * ye; i += 4) valid[i] = valid[i + 1] = valid[i + 2] = 0;
  const double total = double(std::count(valid.begin(), valid.end(), uint8_t{1}));
  const Pass whole = RunPass(c, 4, x, y, valid, {0, 1, 2, 3});
  auto half = [&](int64_t first, double per_rank) {
    const std::vector<uint8_t> v(valid.begin() + first * ye, valid.begin() + (first + 2) * ye);
    return RunPass(c, 2, Slice(x, xe, first, 2), Slice(y, ye, first, 2), v,
                   {uint64_t(first), uint64_t(first + 1)}, per_rank);
  };
  const Pass r0 = half(0, total / 2), r1 = half(2, total / 2);
  EXPECT_NEAR((r0.loss + r1.loss) / 2, whole.loss, 1e-6 * whole.loss);
  for (size_t i = 0; i < whole.grads.size(); ++i) {
    ASSERT_NEAR((r0.grads[i] + r1.grads[i]) / 2, whole.grads[i],
                1e-6 + 1e-4 * std::abs(whole.grads[i]))
        << i;
  }
  // Each rank's own mean would weight the sparse half's targets more.
  const Pass own0 = half(0, 0.0), own1 = half(2, 0.0);
  EXPECT_GT(std::abs((own0.loss + own1.loss) / 2 - whole.loss), 1e-3 * whole.loss);
}

TEST(ModelTest, FullyInvalidSampleCountsAsAbsentFromTheBatch) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {1, 4, 6};
  const int64_t xe = 2 * 24, ye = 24;
  const std::vector<float> x = RandomVector(3 * xe, 31), y = RandomVector(3 * ye, 32);
  std::vector<uint8_t> valid(y.size(), 1);
  std::fill(valid.begin() + ye, valid.begin() + 2 * ye, uint8_t{0});  // sample 1
  const Pass masked = RunPass(c, 3, x, y, valid, {0, 1, 2});
  // The loss of samples 0 and 2 alone: the model treats samples independently.
  std::vector<float> x2 = Slice(x, xe, 0, 1), y2 = Slice(y, ye, 0, 1);
  for (float v : Slice(x, xe, 2, 1)) x2.push_back(v);
  for (float v : Slice(y, ye, 2, 1)) y2.push_back(v);
  const Pass subset = RunPass(c, 2, x2, y2, {}, {0, 2});
  EXPECT_NEAR(masked.loss, subset.loss, 1e-6 * subset.loss);
  ASSERT_EQ(masked.grads.size(), subset.grads.size());
  for (size_t i = 0; i < masked.grads.size(); ++i)
    ASSERT_NEAR(masked.grads[i], subset.grads[i], 1e-5 + 1e-4 * std::abs(subset.grads[i])) << i;
}

TEST(ModelTest, NoValidTargetGivesZeroLossAndZeroGradients) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {2};
  const std::vector<float> x = RandomVector(2 * 48, 41), y = RandomVector(4, 42);
  const Pass p = RunPass(c, 2, x, y, std::vector<uint8_t>(4, 0), {0, 1});
  EXPECT_EQ(p.loss, 0.0);
  for (float g : p.grads) ASSERT_EQ(g, 0.0f);
}

TEST(ModelTest, ClassifySkipsUnlabelledSamples) {
  ModelConfig c = TinyConfig(Objective::kClassify);
  c.classes = 3;
  c.y_shape = {1};
  const int64_t xe = 48;
  const std::vector<float> x = RandomVector(3 * xe, 51);
  // Sample 1 is unlabelled: nodata 255 in a u8 label store (an out-of-range label would
  // otherwise be an error).
  const Pass masked = RunPass(c, 3, x, {2, 255, 1}, {1, 0, 1}, {0, 1, 2});
  std::vector<float> x2 = Slice(x, xe, 0, 1);
  for (float v : Slice(x, xe, 2, 1)) x2.push_back(v);
  const Pass subset = RunPass(c, 2, x2, {2, 1}, {}, {0, 2});
  EXPECT_NEAR(masked.loss, subset.loss, 1e-6 * subset.loss);
  EXPECT_EQ(masked.correct, subset.correct);
  for (size_t i = 0; i < masked.grads.size(); ++i)
    ASSERT_NEAR(masked.grads[i], subset.grads[i], 1e-5 + 1e-4 * std::abs(subset.grads[i])) << i;
}

TEST(ModelTest, MaskedDenseRegressGradientsMatchFiniteDifferences) {
  ModelConfig c = TinyConfig(Objective::kRegress);
  c.y_shape = {1, 4, 6};
  std::vector<uint8_t> valid(3 * 24, 1);
  for (size_t i = 1; i < valid.size(); i += 4) valid[i] = 0;
  ExpectModelGradientsMatch(c, RandomVector(3 * 24, 3), valid);
}

// x of `batch` TinyConfig samples with every 5th pixel and all of sample 1's first channel
// invalid (0, as the loader delivers them), and the validity.
std::pair<std::vector<float>, std::vector<uint8_t>> XWithHoles(const ModelConfig& c, int64_t batch,
                                                               uint64_t seed) {
  const int64_t per = c.in_channels * c.height * c.width;
  std::vector<float> x = RandomVector(batch * per, seed);
  std::vector<uint8_t> valid(x.size(), 1);
  for (size_t i = 0; i < valid.size(); i += 5) valid[i] = 0;
  if (batch > 1) std::fill_n(valid.begin() + per, c.height * c.width, uint8_t{0});
  for (size_t i = 0; i < x.size(); ++i)
    if (!valid[i]) x[i] = 0.0f;
  return {x, valid};
}

// The MAE loss computed here from the model's reconstruction and mask: per masked patch, targets
// normalized over its valid pixels, squared errors of the valid pixels, averaged over all of them.
TEST(ModelTest, MaeLossAveragesOverTheValidPixelsOfMaskedPatches) {
  const ModelConfig c = TinyConfig(Objective::kMae);
  const int64_t batch = 3, p = c.patch, gh = c.height / p, gw = c.width / p;
  const int64_t tokens = gh * gw, p_len = c.in_channels * p * p;
  auto [x, valid] = XWithHoles(c, batch, 61);
  const std::vector<uint64_t> ids = {4, 5, 6};
  auto model = VitModel::Create(c);
  ASSERT_TRUE(model.ok());
  (*model)->InitParams(3);
  BatchView view{batch, x, {}, ids, 0};
  view.x_valid = valid;
  auto r = (*model)->Forward(view, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::span<const float> pred = (*model)->reconstruction();
  const std::span<const uint8_t> masked = (*model)->token_mask();
  ASSERT_EQ(pred.size(), size_t(batch * tokens * p_len));
  double sq = 0.0, count = 0.0;
  int64_t skipped = 0;  // invalid pixels of masked patches
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      if (!masked[b * tokens + t]) continue;
      std::vector<double> v;
      std::vector<int64_t> at;  // index into the patch row (channel, ky, kx order)
      for (int64_t ch = 0; ch < c.in_channels; ++ch)
        for (int64_t ky = 0; ky < p; ++ky)
          for (int64_t kx = 0; kx < p; ++kx) {
            const int64_t i = ((b * c.in_channels + ch) * c.height + (t / gw) * p + ky) * c.width +
                              (t % gw) * p + kx;
            if (!valid[i]) {
              ++skipped;
              continue;
            }
            v.push_back(x[i]);
            at.push_back((ch * p + ky) * p + kx);
          }
      if (v.empty()) continue;
      double mean = 0.0, var = 0.0;
      for (double e : v) mean += e;
      mean /= double(v.size());
      for (double e : v) var += (e - mean) * (e - mean);
      var /= double(v.size());
      for (size_t k = 0; k < v.size(); ++k) {
        const double target = float((v[k] - mean) / std::sqrt(var + 1e-6));
        const double e = double(pred[(b * tokens + t) * p_len + at[k]]) - target;
        sq += e * e;
        count += 1.0;
      }
    }
  ASSERT_GT(skipped, 0);
  EXPECT_NEAR(r->loss, sq / count, 1e-6 * sq / count);
  auto targets = (*model)->MaeTargets(view, 0);
  ASSERT_TRUE(targets.ok());
  EXPECT_EQ(*targets, count);
}

// What sits under an invalid pixel of a masked patch (seen by no encoder, only a target) changes
// neither the MAE loss nor its gradients; without the mask such a sentinel changes the loss; an
// all-valid mask is no mask.
TEST(ModelTest, MaeSkipsInvalidPixels) {
  const ModelConfig c = TinyConfig(Objective::kMae);
  auto [x, valid] = XWithHoles(c, 3, 62);
  const std::vector<uint64_t> ids = {0, 1, 2};
  auto model = VitModel::Create(c);
  ASSERT_TRUE(model.ok());
  (*model)->InitParams(3);
  ASSERT_TRUE((*model)->Forward({3, x, {}, ids, 0}, 0).ok());  // RunPass's masks
  const std::vector<uint8_t> masked((*model)->token_mask().begin(), (*model)->token_mask().end());
  const int64_t p = c.patch, gw = c.width / p, tokens = (c.height / p) * gw;
  std::vector<float> sentinel = x;
  int64_t planted = 0;
  for (size_t i = 0; i < valid.size(); ++i) {
    const int64_t b = int64_t(i) / (c.in_channels * c.height * c.width);
    const int64_t row = (int64_t(i) / c.width) % c.height, col = int64_t(i) % c.width;
    if (!valid[i] && masked[b * tokens + (row / p) * gw + col / p]) {
      sentinel[i] = 255.0f;
      ++planted;
    }
  }
  ASSERT_GT(planted, 0);
  const Pass a = RunPass(c, 3, x, {}, {}, ids, 0.0, valid);
  const Pass b = RunPass(c, 3, sentinel, {}, {}, ids, 0.0, valid);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grads, b.grads);
  EXPECT_GT(a.loss, 0.0);
  EXPECT_NE(RunPass(c, 3, sentinel, {}, {}, ids).loss, a.loss);
  const std::vector<uint8_t> all(x.size(), 1);
  EXPECT_EQ(RunPass(c, 3, x, {}, {}, ids, 0.0, all).loss, RunPass(c, 3, x, {}, {}, ids).loss);
}

TEST(ModelTest, MaskedMaeGradientsMatchFiniteDifferences) {
  const ModelConfig c = TinyConfig(Objective::kMae);
  std::vector<uint8_t> valid(3 * c.in_channels * c.height * c.width, 1);
  for (size_t i = 2; i < valid.size(); i += 3) valid[i] = 0;
  ExpectModelGradientsMatch(c, {}, {}, valid);
}

// Two ranks whose halves of the batch hold different numbers of valid pixels average to the
// one-rank MAE loss and gradients with the job-wide divisor (MaeTargets summed over the ranks).
TEST(ModelTest, MaeRanksWithUnevenValidPixelsAverageToTheWholeBatchWithTheJobWideDivisor) {
  const ModelConfig c = TinyConfig(Objective::kMae);
  const int64_t xe = c.in_channels * c.height * c.width;
  auto [x, valid] = XWithHoles(c, 4, 63);  // sample 1 has a whole channel missing
  auto model = VitModel::Create(c);
  ASSERT_TRUE(model.ok());
  auto targets = [&](int64_t first) {
    const std::vector<float> xs = Slice(x, xe, first, 2);
    const std::vector<uint8_t> vs(valid.begin() + first * xe, valid.begin() + (first + 2) * xe);
    const std::vector<uint64_t> ids = {uint64_t(first), uint64_t(first + 1)};
    BatchView view{2, xs, {}, ids, 0};
    view.x_valid = vs;
    auto t = (*model)->MaeTargets(view, 0);
    EXPECT_TRUE(t.ok());
    return t.ok() ? *t : 0.0;
  };
  const double t0 = targets(0), t1 = targets(2);
  ASSERT_NE(t0, t1);
  const Pass whole = RunPass(c, 4, x, {}, {}, {0, 1, 2, 3}, 0.0, valid);
  auto half = [&](int64_t first, double per_rank) {
    const std::vector<uint8_t> v(valid.begin() + first * xe, valid.begin() + (first + 2) * xe);
    return RunPass(c, 2, Slice(x, xe, first, 2), {}, {}, {uint64_t(first), uint64_t(first + 1)},
                   per_rank, v);
  };
  const Pass r0 = half(0, (t0 + t1) / 2), r1 = half(2, (t0 + t1) / 2);
  EXPECT_NEAR((r0.loss + r1.loss) / 2, whole.loss, 1e-6 * whole.loss);
  for (size_t i = 0; i < whole.grads.size(); ++i)
    ASSERT_NEAR((r0.grads[i] + r1.grads[i]) / 2, whole.grads[i],
                1e-6 + 1e-4 * std::abs(whole.grads[i]))
        << i;
  const Pass own0 = half(0, 0.0), own1 = half(2, 0.0);
  EXPECT_GT(std::abs((own0.loss + own1.loss) / 2 - whole.loss), 1e-4 * whole.loss);
}

// TinyConfig's classifier over three classes, initialized.
std::unique_ptr<VitModel> TinyClassifier() {
  ModelConfig c = TinyConfig(Objective::kClassify);
  c.classes = 3;
  c.y_shape = {1};
  auto model = VitModel::Create(c);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return nullptr;
  (*model)->InitParams(1);
  return std::move(model).value();
}

TEST(ModelTest, LabelOutOfRangeNamesTheSample) {
  auto model = TinyClassifier();
  ASSERT_TRUE(model);
  std::vector<float> x = RandomVector(2 * 2 * 4 * 6, 1), y = {1, 3};
  std::vector<uint64_t> ids = {10, 11};
  auto r = model->Forward({2, x, y, ids, 0}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sample 11 has label 3"), std::string::npos)
      << r.status().message();
}

// The model indexes x, y and the sample ids by the batch size and its configured shapes; buffers
// of any other size are refused before anything is read.
TEST(ModelTest, BatchBuffersOfTheWrongSizeAreInvalidArgumentNamingBothSizes) {
  auto model = TinyClassifier();
  ASSERT_TRUE(model);
  const std::vector<float> x = RandomVector(96, 1), short_x = RandomVector(48, 1);
  const std::vector<float> y = {1, 2}, short_y = {1};
  const std::vector<uint64_t> ids = {10, 11}, short_ids = {10};
  ASSERT_TRUE(model->Forward({2, x, y, ids, 0}, 0).ok());
  auto r = model->Forward({2, short_x, y, ids, 0}, 0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("needs 96 x values, got 48"), std::string::npos)
      << r.status().message();
  r = model->Forward({2, x, short_y, ids, 0}, 0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("needs 2 target y values, got 1"), std::string::npos)
      << r.status().message();
  r = model->Forward({2, x, {}, ids, 0}, 0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  r = model->Forward({2, x, y, short_ids, 0}, 0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("has 1 sample ids"), std::string::npos)
      << r.status().message();
  // vit-mae needs no target.
  auto mae = VitModel::Create(TinyConfig(Objective::kMae));
  ASSERT_TRUE(mae.ok());
  (*mae)->InitParams(1);
  EXPECT_TRUE((*mae)->Forward({2, x, {}, ids, 0}, 0).ok());
  EXPECT_EQ((*mae)->Forward({2, short_x, {}, ids, 0}, 0).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tilestage::trainer
