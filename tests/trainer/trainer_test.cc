// The training loop on one rank: the golden learning test, resume equivalence, checkpoint and
// data faults, the optimizer pieces, and the safetensors output read by an independent reader.
#include "trainer/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tests/common/test_util.h"
#include "tests/trainer/synth_data.h"
#include "trainer/checkpoint.h"
#include "trainer/optimizer.h"
#include "trainer/safetensors.h"

namespace tilestage::trainer {
namespace {

using testing::MakeSynthData;
using tilestage::testing::TempDir;

TrainerConfig ClassifyConfig() {
  TrainerConfig c;
  c.model.objective = Objective::kClassify;
  c.model.dim = 32;
  c.model.depth = 2;
  c.model.heads = 2;
  c.model.patch = 8;
  c.model.mlp_ratio = 2.0;
  c.model.in_channels = 1;
  c.model.height = 32;
  c.model.width = 32;
  c.model.classes = 4;
  c.model.y_shape = {1};
  c.adamw.lr = 3e-3;
  c.adamw.min_lr = 1e-4;
  c.adamw.warmup_steps = 5;
  c.adamw.weight_decay = 0.01;
  c.epochs = 6;
  c.seed = 11;
  c.batch_size = 16;
  c.checksum_every = 0;
  return c;
}

TrainerConfig MaeConfig() {
  TrainerConfig c = ClassifyConfig();
  c.model.objective = Objective::kMae;
  c.model.classes = 0;
  c.model.y_shape = {};
  c.model.height = c.model.width = 16;
  c.model.patch = 4;
  c.model.decoder_dim = 16;
  c.model.decoder_heads = 2;
  c.model.mask_ratio = 0.5;
  c.epochs = 2;
  c.batch_size = 8;
  return c;
}

std::vector<double> Losses(const Trainer& t) {
  std::vector<double> out;
  for (const StepRecord& s : t.steps()) out.push_back(s.loss);
  return out;
}

TEST(TrainerTest, GoldenClassifierLearnsWaveOrientation) {
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = ClassifyConfig();
  config.model.height = config.model.width = 16;
  config.model.patch = 4;
  config.epochs = 3;
  auto train_data = testing::MakeOrientationData(256, 16, 4, 3);
  auto eval_data = testing::MakeOrientationData(64, 16, 4, 4);
  auto trainer = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
  ASSERT_TRUE((*trainer)->InitializeWeights().ok());
  auto train = NewInMemoryBatchSource(train_data, config.batch_size, 0, 1, config.seed, true);
  auto eval = NewInMemoryBatchSource(eval_data, 16, 0, 1, 0, false);
  auto before = (*trainer)->Evaluate(*eval);
  ASSERT_TRUE(before.ok());
  Status status = (*trainer)->Run(*train, eval.get());
  ASSERT_TRUE(status.ok()) << status.ToString();
  const auto& epochs = (*trainer)->epochs();
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_EQ((*trainer)->step(), 3 * 16);
  // Chance is ln(4) = 1.386 and 25% accuracy on held-out tiles.
  EXPECT_GT(before->first, 1.2);
  EXPECT_LT(epochs.back().eval_loss, 0.05) << "eval loss after 48 steps";
  EXPECT_GE(epochs.back().eval_accuracy, 0.95);
}

TEST(TrainerTest, GoldenMaeReconstructionLossFalls) {
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.epochs = 16;  // 256 steps
  config.adamw.lr = 2e-3;
  auto data = MakeSynthData(128, {1, 16, 16}, 0, 5);
  auto trainer = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE(trainer.ok());
  ASSERT_TRUE((*trainer)->InitializeWeights().ok());
  auto train = NewInMemoryBatchSource(data, config.batch_size, 0, 1, config.seed, true);
  ASSERT_TRUE((*trainer)->Run(*train, nullptr).ok());
  const auto& e = (*trainer)->epochs();
  ASSERT_EQ(e.size(), 16u);
  // Targets are per-patch normalized, so predicting the mean scores 1.0; smooth fields make the
  // masked patches predictable from the visible ones.
  EXPECT_GT(e.front().train_loss, 1.0);
  EXPECT_LT(e.back().train_loss, 0.6);
}

// The trainer's own MLLOG events, checked with nlohmann's parser: the run brackets every epoch,
// each epoch brackets its evaluation, and the evaluation's result follows it (the eval loss for
// objectives without an accuracy).
TEST(TrainerTest, MllogHasRunEpochAndEvalEventsInOrderWithEpochNumbers) {
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  std::ostringstream log;
  MlLogger logger(&log);
  config.mllog = &logger;
  auto data = MakeSynthData(32, {1, 16, 16}, 0, 5);
  auto trainer = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE(trainer.ok());
  ASSERT_TRUE((*trainer)->InitializeWeights().ok());
  auto train = NewInMemoryBatchSource(data, config.batch_size, 0, 1, config.seed, true);
  auto eval = NewInMemoryBatchSource(data, config.batch_size, 0, 1, 0, false);
  ASSERT_TRUE((*trainer)->Run(*train, eval.get()).ok());

  std::vector<std::string> keys;
  std::istringstream lines(log.str());
  int64_t last_time = 0;
  for (std::string line; std::getline(lines, line);) {
    ASSERT_EQ(line.rfind(":::MLLOG ", 0), 0u) << line;
    const auto j = nlohmann::json::parse(line.substr(9));
    std::string key = j["key"];
    if (j["metadata"].contains("epoch_num")) key += " " + j["metadata"]["epoch_num"].dump();
    keys.push_back(key);
    EXPECT_EQ(j["metadata"]["file"], "trainer/trainer.cc") << line;
    EXPECT_GE(j["time_ms"].get<int64_t>(), last_time) << line;
    last_time = j["time_ms"];
    if (j["key"] == "eval_loss") {
      ASSERT_EQ((*trainer)->epochs().size(), 2u);
      const int epoch = j["metadata"]["epoch_num"].get<int>() - 1;
      EXPECT_EQ(j["value"].get<double>(), (*trainer)->epochs()[epoch].eval_loss);
    }
    if (j["key"] == "run_stop") {
      EXPECT_EQ(j["metadata"]["status"], "success");
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"run_start", "epoch_start 1", "eval_start 1",
                                            "eval_stop 1", "eval_loss 1", "epoch_stop 1",
                                            "epoch_start 2", "eval_start 2", "eval_stop 2",
                                            "eval_loss 2", "epoch_stop 2", "run_stop"}));
}

// Runs `config` to the end, or interrupts after `interrupt_at` steps and resumes from the
// checkpoint; returns the losses of the whole run.
std::vector<double> RunMaybeInterrupted(TrainerConfig config, int64_t interrupt_at,
                                        const std::string& ckpt_dir) {
  auto comm = NewSingleProcessCommunicator();
  auto data = MakeSynthData(48, {1, 16, 16}, 0, 6);
  config.checkpoint_dir = ckpt_dir;
  config.checkpoint_every = 4;
  std::vector<double> losses;
  {
    TrainerConfig first = config;
    first.interrupt_after_steps = interrupt_at;
    auto t = Trainer::Create(first, comm.get(), LocalStorage());
    EXPECT_TRUE(t.ok());
    EXPECT_TRUE((*t)->InitializeWeights().ok());
    auto src = NewInMemoryBatchSource(data, config.batch_size, 0, 1, config.seed, true);
    EXPECT_TRUE((*t)->Run(*src, nullptr).ok());
    losses = Losses(**t);
  }
  if (interrupt_at < 0) return losses;
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  EXPECT_TRUE(t.ok());
  auto position = (*t)->Resume(ckpt_dir);
  EXPECT_TRUE(position.ok()) << position.status().ToString();
  if (!position.ok()) return {};
  // Steps after the last checkpoint are lost with the "killed" job and redone.
  losses.resize((*t)->step());
  auto src = NewInMemoryBatchSource(data, config.batch_size, 0, 1, config.seed, true, *position);
  Status s = (*t)->Run(*src, nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (double l : Losses(**t)) losses.push_back(l);
  return losses;
}

TEST(TrainerTest, ResumeMidEpochReproducesUninterruptedLosses) {
  TempDir a, b;
  TrainerConfig config = MaeConfig();
  config.epochs = 3;  // 6 batches per epoch, 18 steps
  const std::vector<double> whole = RunMaybeInterrupted(config, -1, a.Sub("ckpt"));
  // Killed at step 10: the last checkpoint is step 8 (mid epoch 2), 2 steps are redone.
  const std::vector<double> resumed = RunMaybeInterrupted(config, 10, b.Sub("ckpt"));
  ASSERT_EQ(whole.size(), 18u);
  ASSERT_EQ(resumed.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(whole[i], resumed[i]) << "step " << i + 1;
}

TEST(TrainerTest, ResumeAtEpochBoundaryReproducesUninterruptedLosses) {
  TempDir a, b;
  TrainerConfig config = MaeConfig();
  config.epochs = 3;
  const std::vector<double> whole = RunMaybeInterrupted(config, -1, a.Sub("ckpt"));
  const std::vector<double> resumed = RunMaybeInterrupted(config, 12, b.Sub("ckpt"));
  ASSERT_EQ(resumed.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(whole[i], resumed[i]) << "step " << i + 1;
}

Result<std::unique_ptr<Trainer>> TrainedWithCheckpoint(const TrainerConfig& config,
                                                       Communicator* comm) {
  auto data = MakeSynthData(16, {1, 16, 16}, 0, 7);
  TS_ASSIGN_OR_RETURN(auto t, Trainer::Create(config, comm, LocalStorage()));
  TS_RETURN_IF_ERROR(t->InitializeWeights());
  auto src = NewInMemoryBatchSource(data, config.batch_size, 0, 1, config.seed, false);
  TS_RETURN_IF_ERROR(t->Run(*src, nullptr));
  return t;
}

TEST(TrainerTest, CheckpointFromAnotherConfigurationIsRejected) {
  TempDir dir;
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.epochs = 1;
  config.checkpoint_dir = dir.Sub("ckpt");
  ASSERT_TRUE(TrainedWithCheckpoint(config, comm.get()).ok());
  TrainerConfig other = config;
  other.model.dim = 24;
  auto t = Trainer::Create(other, comm.get(), LocalStorage());
  ASSERT_TRUE(t.ok());
  auto r = (*t)->Resume(config.checkpoint_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("model.dim=32 but this run has model.dim=24"),
            std::string::npos)
      << r.status().message();
}

TEST(TrainerTest, TruncatedCheckpointIsDataLoss) {
  TempDir dir;
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.epochs = 1;
  config.checkpoint_dir = dir.Sub("ckpt");
  auto trained = TrainedWithCheckpoint(config, comm.get());
  ASSERT_TRUE(trained.ok());
  const std::string weights = (*trained)->last_checkpoint() + "/model.safetensors";
  tilestage::testing::TruncateFile(weights, tilestage::testing::FileSize(weights) - 100);
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  auto r = (*t)->Resume(config.checkpoint_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(weights), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
}

TEST(TrainerTest, CorruptCheckpointIsDataLoss) {
  TempDir dir;
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.epochs = 1;
  config.checkpoint_dir = dir.Sub("ckpt");
  auto trained = TrainedWithCheckpoint(config, comm.get());
  ASSERT_TRUE(trained.ok());
  const std::string moments = (*trained)->last_checkpoint() + "/optimizer.safetensors";
  tilestage::testing::FlipByte(moments, -5);
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  auto r = (*t)->Resume(config.checkpoint_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("corrupt"), std::string::npos) << r.status().message();
}

TEST(TrainerTest, MissingCheckpointIsNotFound) {
  TempDir dir;
  auto comm = NewSingleProcessCommunicator();
  auto t = Trainer::Create(MaeConfig(), comm.get(), LocalStorage());
  auto r = (*t)->Resume(dir.Sub("nothing"));
  ASSERT_FALSE(r.ok());
}

TEST(TrainerTest, NanLossStopsAndNamesStepAndLastCheckpoint) {
  TempDir dir;
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.checkpoint_dir = dir.Sub("ckpt");
  config.checkpoint_every = 2;
  auto data = MakeSynthData(48, {1, 16, 16}, 0, 8);
  // Sample 40 sits in batch 5 (unshuffled, batch 8) of epoch 0: step 6.
  data->x[40 * 256 + 17] = std::nanf("");
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE((*t)->InitializeWeights().ok());
  auto src = NewInMemoryBatchSource(data, config.batch_size, 0, 1, config.seed, false);
  Status s = (*t)->Run(*src, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("non-finite loss"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at step 6 "), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(dir.Sub("ckpt") + "/step-00000004"), std::string::npos) << s.message();
}

TEST(TrainerTest, WrongChannelCountIsRejectedBeforeTraining) {
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();  // built for 1 channel
  auto data = MakeSynthData(16, {3, 16, 16}, 0);
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE((*t)->InitializeWeights().ok());
  auto src = NewInMemoryBatchSource(data, 8, 0, 1, 0, false);
  Status s = (*t)->Run(*src, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("field x has 3 channels, the model was built for 1"),
            std::string::npos)
      << s.message();
  EXPECT_EQ((*t)->step(), 0);
}

TEST(TrainerTest, RegressWithoutYIsRejectedBeforeTraining) {
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.model.objective = Objective::kRegress;
  config.model.y_shape = {1, 16, 16};
  auto data = MakeSynthData(16, {1, 16, 16}, 0);  // no y
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto src = NewInMemoryBatchSource(data, 8, 0, 1, 0, false);
  Status s = (*t)->Run(*src, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("has no field y, which vit-regress needs"), std::string::npos)
      << s.message();
}

TEST(TrainerTest, JsonlHasRunStepAndEpochRecords) {
  auto comm = NewSingleProcessCommunicator();
  TrainerConfig config = MaeConfig();
  config.epochs = 1;
  std::ostringstream jsonl;
  config.jsonl = &jsonl;
  auto data = MakeSynthData(16, {1, 16, 16}, 0);
  auto t = Trainer::Create(config, comm.get(), LocalStorage());
  ASSERT_TRUE((*t)->InitializeWeights().ok());
  auto src = NewInMemoryBatchSource(data, 8, 0, 1, 0, false);
  auto eval = NewInMemoryBatchSource(data, 8, 0, 1, 0, false);
  ASSERT_TRUE((*t)->Run(*src, eval.get()).ok());
  std::istringstream in(jsonl.str());
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(in, line)) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0]["type"], "run");
  EXPECT_EQ(records[0]["parameters"], (*t)->model().params().total());
  EXPECT_EQ(records[1]["type"], "step");
  for (const char* key : {"loss", "lr", "samples_per_s", "stall_ms", "allreduce_ms", "time_ms"}) {
    EXPECT_TRUE(records[1].contains(key)) << key;
  }
  EXPECT_EQ(records[3]["type"], "epoch");
  EXPECT_TRUE(records[3].contains("eval_loss"));
  EXPECT_TRUE(records[3].contains("eval_ms"));
}

TEST(OptimizerTest, ScheduleWarmsUpThenFollowsCosine) {
  AdamWConfig c;
  c.lr = 1.0;
  c.min_lr = 0.0;
  c.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(c, 0, 14), 0.25);
  EXPECT_DOUBLE_EQ(ScheduledLearningRate(c, 3, 14), 1.0);
  EXPECT_NEAR(ScheduledLearningRate(c, 4, 14), 1.0, 1e-12);
  EXPECT_NEAR(ScheduledLearningRate(c, 9, 14), 0.5, 1e-12);  // half-way through the decay
  EXPECT_NEAR(ScheduledLearningRate(c, 14, 14), 0.0, 1e-12);
}

TEST(OptimizerTest, AdamWMatchesReferenceAndSkipsDecayWhereMasked) {
  ParamStore store;
  ParamRef w = store.Add("w", {2}, true, ParamInit::kZeros);
  ParamRef b = store.Add("b", {1}, false, ParamInit::kZeros);
  store.Finalize();
  store.param(w)[0] = 1.0f;
  store.param(w)[1] = -2.0f;
  store.param(b)[0] = 3.0f;
  AdamWConfig c;
  c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8, c.weight_decay = 0.1;
  const float g[3] = {0.5f, -1.0f, 2.0f};
  std::copy(g, g + 3, store.grads().begin());
  AdamWStep(store, c, 0.01, 1);
  // Step 1 of Adam moves each weight by lr * sign(g) (m_hat / sqrt(v_hat) = g / |g|); decayed
  // weights first shrink by (1 - lr * wd) (PyTorch AdamW).
  EXPECT_NEAR(store.param(w)[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
  EXPECT_NEAR(store.param(w)[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
  EXPECT_NEAR(store.param(b)[0], 3.0 - 0.01, 1e-6);
  std::copy(g, g + 3, store.grads().begin());
  AdamWStep(store, c, 0.01, 2);
  // Same gradient again: m_hat = g, v_hat = g^2 again, so another lr * sign(g) step.
  EXPECT_NEAR(store.param(b)[0], 3.0 - 0.02, 1e-6);
}

TEST(OptimizerTest, ClippingScalesToMaxNorm) {
  ParamStore store;
  store.Add("w", {2}, true, ParamInit::kZeros);
  store.Finalize();
  store.grads()[0] = 3.0f;
  store.grads()[1] = 4.0f;
  EXPECT_NEAR(ClipGradNorm(store, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(store.grads()[0], 0.6, 1e-6);
  EXPECT_NEAR(store.grads()[1], 0.8, 1e-6);
  EXPECT_NEAR(ClipGradNorm(store, 10.0), 1.0, 1e-6);  // under the limit: untouched
  EXPECT_NEAR(store.grads()[1], 0.8, 1e-6);
}

TEST(SafetensorsTest, IndependentPythonReaderSeesTheWeights) {
  TempDir dir;
  const float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f};
  const float b[2] = {42.0f, -0.5f};
  const std::vector<uint8_t> bytes =
      EncodeSafetensors({{"layer.weight", {2, 3}, a}, {"layer.bias", {2}, b}}, {{"format", "pt"}});
  const std::string path = dir.Sub("m.safetensors");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  // A reader written from the format description: u64 header length, JSON, raw LE data.
  const std::string script =
      "import json,struct,sys,numpy as np\n"
      "b=open(sys.argv[1],'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])\n"
      "d=b[8+n:]; t=h['layer.weight']; s,e=t['data_offsets']\n"
      "w=np.frombuffer(d[s:e],dtype='<f4').reshape(t['shape'])\n"
      "t=h['layer.bias']; s,e=t['data_offsets']; bb=np.frombuffer(d[s:e],dtype='<f4')\n"
      "print(h['__metadata__']['format'], (8+n)%8, w[1,2], w[0,2], bb[0], t['dtype'])\n";
  std::ofstream(dir.Sub("read.py")) << script;
  auto r = tilestage::testing::RunCommand(tilestage::testing::PythonPath() + " " +
                                          dir.Sub("read.py") + " " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "pt 0 -7.0 3.25 42.0 F32\n");
  auto parsed = ParseSafetensors(bytes, "m");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->tensors.at("layer.weight").values[4], 1e-3f);
}

TEST(SafetensorsTest, TruncatedHeaderIsDataLoss) {
  const float a[2] = {1, 2};
  std::vector<uint8_t> bytes = EncodeSafetensors({{"a", {2}, a}}, {});
  bytes.resize(20);
  auto parsed = ParseSafetensors(bytes, "x.safetensors");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(parsed.status().message().find("x.safetensors"), std::string::npos);
}

// A safetensors file with `header` as its JSON header and `data` as its data section.
std::vector<uint8_t> SafetensorsBytes(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) bytes[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  std::copy(header.begin(), header.end(), bytes.begin() + 8);
  std::copy(data.begin(), data.end(),
            bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header.size()));
  return bytes;
}

TEST(SafetensorsTest, ShapesWhoseProductIsNegativeOrWrapsAroundAreDataLoss) {
  const std::vector<uint8_t> data(16, 0);
  // [-2, -1] multiplies to 2 and (2^62 + 1) * 4 wraps to 4 in 64 bits: both match their offsets.
  for (const std::string shape : {"[-2, -1]", "[4611686018427387905, 4]"}) {
    SCOPED_TRACE(shape);
    const std::string header = R"({"a": {"dtype": "F32", "shape": )" + shape +
                               R"(, "data_offsets": [0, )" + (shape[1] == '-' ? "8" : "16") + "]}}";
    auto parsed = ParseSafetensors(SafetensorsBytes(header, data), "x.safetensors");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(parsed.status().message().find("x.safetensors: tensor a data_offsets [0,"),
              std::string::npos)
        << parsed.status().message();
  }
}

TEST(SafetensorsTest, TensorsAtOffsetsNotAlignedToFourBytesReadTheirValues) {
  // An unpadded header (odd length) and a tensor starting 2 bytes into the data section: the
  // floats lie at addresses no float pointer may point to.
  const float values[2] = {1.5f, -7.25f};
  std::vector<uint8_t> data(2, 0xee);
  data.resize(10);
  std::memcpy(data.data() + 2, values, 8);
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})";
  ASSERT_NE(header.size() % 4, 0u);
  auto parsed = ParseSafetensors(SafetensorsBytes(header, data), "x.safetensors");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->tensors.at("a").values, std::vector<float>({1.5f, -7.25f}));
}

TEST(SafetensorsTest, HeaderNestedBeyondTheBoundIsDataLossNotAStackOverflow) {
  const std::string deep = "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto parsed = ParseSafetensors(SafetensorsBytes(deep, {}), "x.safetensors");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(parsed.status().message(), "x.safetensors header: nested more than 64 levels deep");
}

}  // namespace
}  // namespace tilestage::trainer
