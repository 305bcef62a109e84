// Whole-model finite-difference checks for each objective, and configuration errors.
#include "trainer/model.h"

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

void ExpectModelGradientsMatch(const ModelConfig& config, std::vector<float> y) {
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
  std::vector<uint64_t> ids = {7, 1000, 42};
  BatchView view{batch, x, y, ids, 2};
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

TEST(ModelTest, PatchNotDividingTileIsInvalidArgument) {
  ModelConfig c = TinyConfig(Objective::kMae);
  c.patch = 4;  // width 6
  auto model = VitModel::Create(c);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("--patch 4"), std::string::npos);
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
