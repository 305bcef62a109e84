// The classifier and the MAE against an independent implementation: PyTorch (Debian's
// python3-torch) loads our safetensors weights into its own ViT (bench/trainer/torch_vit.py, the
// trainer benchmarks' peer) and computes the loss and every gradient with autograd (the MAE with
// the token mask ours drew); ours must agree. The peer's parameter and FLOP counts (FLOPs as
// torch.profiler counts them) must equal ours, or the benchmarks compare unlike models.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/common/test_util.h"
#include "tests/trainer/fd_check.h"
#include "trainer/model.h"
#include "trainer/safetensors.h"

namespace tilestage::trainer {
namespace {

using tilestage::testing::TempDir;

void WriteFile(const std::string& path, const void* data, size_t bytes) {
  std::ofstream(path, std::ios::binary)
      .write(static_cast<const char*>(data), std::streamsize(bytes));
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void ExpectMatchesPyTorch(ModelConfig c) {
  TempDir dir;
  auto model_or = VitModel::Create(c);
  ASSERT_TRUE(model_or.ok()) << model_or.status().ToString();
  VitModel& model = **model_or;
  model.InitParams(21);
  auto& p = model.params().params();
  for (size_t i = 0; i < p.size(); ++i) p[i] += 0.02f * float(std::sin(double(i)));
  const int64_t batch = 4;
  std::vector<float> x = testing::RandomVector(batch * c.in_channels * c.height * c.width, 5, 2.0f);
  std::vector<float> y = {0, 3, 1, 2};
  if (c.objective == Objective::kMae) y.clear();
  auto loss = model.Forward({batch, x, y, {}, 0}, 0);
  ASSERT_TRUE(loss.ok());
  model.params().ZeroGrads();
  model.Backward();

  std::vector<TensorRef> weights;
  for (const ParamInfo& info : model.params().infos()) {
    weights.push_back({info.name, info.shape, p.data() + info.offset});
  }
  const std::vector<uint8_t> bytes = EncodeSafetensors(weights, {});
  WriteFile(dir.Sub("w.safetensors"), bytes.data(), bytes.size());
  WriteFile(dir.Sub("x.f32"), x.data(), x.size() * 4);
  std::string target = " --y " + dir.Sub("y.f32");
  if (c.objective == Objective::kMae) {
    WriteFile(dir.Sub("mask.u8"), model.token_mask().data(), model.token_mask().size());
    target = " --mask " + dir.Sub("mask.u8");
  } else {
    WriteFile(dir.Sub("y.f32"), y.data(), y.size() * 4);
  }
  const std::string cmd = tilestage::testing::PythonPath() + " " + tilestage::testing::SourceDir() +
                          "/bench/trainer/torch_vit.py grad" + " --weights " +
                          dir.Sub("w.safetensors") + " --x " + dir.Sub("x.f32") + target +
                          " --batch 4 --out " + dir.Sub("g.safetensors") + " --config '" +
                          c.ToJson().dump() + "'";
  auto r = tilestage::testing::RunCommand(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<uint8_t> gbytes = ReadFile(dir.Sub("g.safetensors"));
  auto parsed = ParseSafetensors(gbytes, "torch grads");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_NEAR(loss->loss, parsed->tensors.at("loss").values[0], 1e-5 * std::abs(loss->loss));
  const auto& grads = model.params().grads();
  int64_t compared = 0;
  for (const ParamInfo& info : model.params().infos()) {
    auto it = parsed->tensors.find(info.name);
    ASSERT_NE(it, parsed->tensors.end()) << info.name;
    ASSERT_EQ(int64_t(it->second.values.size()), info.size) << info.name;
    double max_abs = 0.0;
    for (int64_t i = 0; i < info.size; ++i)
      max_abs = std::max(max_abs, double(std::abs(it->second.values[i])));
    for (int64_t i = 0; i < info.size; ++i) {
      ASSERT_NEAR(grads[info.offset + i], it->second.values[i], 1e-6 + 1e-3 * max_abs)
          << info.name << "[" << i << "]";
      ++compared;
    }
  }
  EXPECT_EQ(compared, model.params().total());
}

TEST(TorchParityTest, ClassifierLossAndGradientsMatchPyTorchAutograd) {
  ModelConfig c;
  c.objective = Objective::kClassify;
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  c.patch = 4;
  c.mlp_ratio = 2.0;
  c.in_channels = 3;
  c.height = 8;
  c.width = 12;
  c.classes = 4;
  c.y_shape = {1};
  ExpectMatchesPyTorch(c);
}

TEST(TorchParityTest, LearnedPositionClassifierMatchesPyTorchAutograd) {
  ModelConfig c;
  c.objective = Objective::kClassify;
  c.dim = 12;
  c.depth = 1;
  c.heads = 3;
  c.patch = 2;
  c.mlp_ratio = 4.0;
  c.in_channels = 2;
  c.height = 6;
  c.width = 6;
  c.classes = 4;
  c.y_shape = {1};
  c.learned_pos = true;
  ExpectMatchesPyTorch(c);
}

TEST(TorchParityTest, MaeLossAndGradientsMatchPyTorchAutograd) {
  ModelConfig c;
  c.objective = Objective::kMae;
  c.dim = 16;
  c.depth = 2;
  c.heads = 2;
  c.patch = 4;
  c.mlp_ratio = 2.0;
  c.in_channels = 2;
  c.height = 8;
  c.width = 16;
  c.decoder_dim = 8;
  c.decoder_depth = 1;
  c.decoder_heads = 2;
  ExpectMatchesPyTorch(c);
}

struct PeerCounts {
  int64_t parameters = 0;
  double forward_flops_per_sample = 0.0;
};

PeerCounts CountPyTorchPeer(const ModelConfig& c) {
  const std::string cmd = tilestage::testing::PythonPath() + " " + tilestage::testing::SourceDir() +
                          "/bench/trainer/torch_vit.py count --config '" + c.ToJson().dump() + "'";
  auto r = tilestage::testing::RunCommand(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  return {j.at("parameters").get<int64_t>(), j.at("forward_flops_per_sample").get<double>()};
}

// The configurations the trainer benchmarks run: tiny at 64 and 1024 tokens, small at 256.
TEST(TorchParityTest, BenchmarkPeerHasOurParameterAndFlopCounts) {
  struct Case {
    Objective objective;
    const char* preset;
    int64_t size;
  };
  for (const Case& k : {Case{Objective::kMae, "tiny", 64}, Case{Objective::kClassify, "tiny", 64},
                        Case{Objective::kMae, "small", 128}, Case{Objective::kMae, "tiny", 256}}) {
    ModelConfig c;
    c.objective = k.objective;
    ASSERT_TRUE(ApplyPreset(k.preset, &c).ok());
    c.height = c.width = k.size;
    if (k.objective == Objective::kClassify) {
      c.classes = 10;
      c.y_shape = {1};
    }
    auto model = VitModel::Create(c);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const PeerCounts peer = CountPyTorchPeer(c);
    SCOPED_TRACE(c.ToJson().dump());
    EXPECT_EQ(peer.parameters, (*model)->params().total());
    EXPECT_DOUBLE_EQ(peer.forward_flops_per_sample, (*model)->ForwardFlopsPerSample());
  }
}

}  // namespace
}  // namespace tilestage::trainer
