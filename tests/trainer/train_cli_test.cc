// `tilestage train` end to end on stores written by `tilestage synth`, read through the loader.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/common/test_util.h"
#include "trainer/safetensors.h"

namespace tilestage {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::TempDir;

std::string Synth(const TempDir& dir, const std::string& name, const std::string& shape,
                  int classes, int samples = 96, const std::string& more = "") {
  const std::string out = dir.Sub(name);
  auto r = RunCommand(CliPath() + " synth --out " + out + " --samples " + std::to_string(samples) +
                      " --shape " + shape + " --seed 2" +
                      (classes > 0 ? " --classes " + std::to_string(classes) : "") + more);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return out;
}

const std::string kTiny =
    " --dim 16 --depth 1 --heads 2 --patch 8 --decoder-dim 16 "
    "--decoder-heads 2 --log-every 0 --threads 1";

std::vector<nlohmann::json> ReadJsonl(const std::string& path, const std::string& type) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == type) out.push_back(j);
  }
  return out;
}

TEST(TrainCliTest, ClassifyTrainsEvaluatesAndCheckpoints) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 4);
  auto r = RunCommand(CliPath() + " train --store " + store + " --model vit-classify" + kTiny +
                      " --batch 8 --epochs 2 --eval-fraction 0.25 --checkpoint-dir " +
                      dir.Sub("ck") + " --json " + dir.Sub("log.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 72 training records / 8 = 9 steps per epoch, 24 held out.
  EXPECT_EQ(ReadJsonl(dir.Sub("log.jsonl"), "step").size(), 18u);
  auto epochs = ReadJsonl(dir.Sub("log.jsonl"), "epoch");
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_TRUE(epochs[1].contains("eval_loss"));
  EXPECT_TRUE(epochs[1].contains("eval_accuracy"));
  std::ifstream latest(dir.Sub("ck/latest.json"));
  EXPECT_EQ(nlohmann::json::parse(latest)["checkpoint"], "step-00000018");
}

// --mllog: rank 0 appends the run's MLPerf events, the classifier's eval_accuracy equal to the
// accuracy of the JSONL epoch record, under two ranks as under one.
TEST(TrainCliTest, MllogFileHasEpochEvalAndAccuracyEventsOfRankZeroOnly) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 4);
  auto r = RunCommand(std::string(TILESTAGE_MPIRUN_CMD) + " -np 2 " + CliPath() +
                      " train --store " + store + " --model vit-classify" + kTiny +
                      " --batch 8 --epochs 2 --eval-fraction 0.25 --json " +
                      dir.Sub("log.jsonl") + " --mllog " + dir.Sub("mllog.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto epochs = ReadJsonl(dir.Sub("log.jsonl"), "epoch");
  ASSERT_EQ(epochs.size(), 2u);
  std::ifstream in(dir.Sub("mllog.txt"));
  std::vector<std::string> keys;
  for (std::string line; std::getline(in, line);) {
    ASSERT_EQ(line.rfind(":::MLLOG {\"namespace\": \"\", \"time_ms\": ", 0), 0u) << line;
    const auto j = nlohmann::json::parse(line.substr(9));
    keys.push_back(j["key"]);
    if (j["key"] == "eval_accuracy") {
      const int epoch = j["metadata"]["epoch_num"].get<int>() - 1;
      EXPECT_EQ(j["value"].get<double>(), epochs[epoch]["eval_accuracy"].get<double>());
    }
  }
  // One rank wrote: each event once.
  EXPECT_EQ(keys, (std::vector<std::string>{"run_start", "epoch_start", "eval_start", "eval_stop",
                                            "eval_accuracy", "epoch_stop", "epoch_start",
                                            "eval_start", "eval_stop", "eval_accuracy",
                                            "epoch_stop", "run_stop"}));
}

TEST(TrainCliTest, JsonlOpensWithRunRecordAndStampsEveryRecordWithWallClock) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 4);
  const auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before_ms = now_ms();
  auto r = RunCommand(CliPath() + " train --store " + store + " --model vit-classify" + kTiny +
                      " --batch 8 --epochs 2 --eval-fraction 0.25 --json " + dir.Sub("log.jsonl"));
  const int64_t after_ms = now_ms();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir.Sub("log.jsonl"));
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 1u + 18u + 2u);
  const auto& run = records.front();
  EXPECT_EQ(run["type"], "run");
  EXPECT_EQ(run["x_shape"], nlohmann::json::array({1, 16, 16}));
  EXPECT_EQ(run["batch"], 8);
  EXPECT_EQ(run["steps_per_epoch"], 9);
  // The same count as the human banner on stderr.
  EXPECT_NE(r.output.find(std::to_string(run["parameters"].get<int64_t>()) + " parameters"),
            std::string::npos)
      << r.output;
  int64_t last_ms = before_ms;
  for (const auto& rec : records) {
    const int64_t t = rec.at("time_ms").get<int64_t>();
    EXPECT_GE(t, last_ms);
    EXPECT_LE(t, after_ms);
    last_ms = t;
    if (rec["type"] == "epoch") {
      EXPECT_GE(rec.at("eval_ms").get<double>(), 0.0);
    }
  }
}

TEST(TrainCliTest, ResumeAfterCrashContinuesTheSameLossSequence) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0);
  const std::string common = CliPath() + " train --store " + store + " --model vit-mae" + kTiny +
                             " --batch 8 --epochs 2 --seed 5 --checkpoint-every 4 " +
                             "--checkpoint-dir " + dir.Sub("ck");
  auto full = RunCommand(common + " --json " + dir.Sub("full.jsonl"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const auto whole = ReadJsonl(dir.Sub("full.jsonl"), "step");
  ASSERT_EQ(whole.size(), 24u);
  // As if the job died after step 16 (mid epoch 2): only step-00000016 is the latest.
  std::ofstream(dir.Sub("ck/latest.json")) << R"({"checkpoint": "step-00000016"})";
  auto resumed = RunCommand(common + " --resume --json " + dir.Sub("resumed.jsonl"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto rest = ReadJsonl(dir.Sub("resumed.jsonl"), "step");
  ASSERT_EQ(rest.size(), 8u);
  for (size_t i = 0; i < rest.size(); ++i) {
    EXPECT_EQ(rest[i]["step"], whole[16 + i]["step"]);
    EXPECT_EQ(rest[i]["loss"].get<double>(), whole[16 + i]["loss"].get<double>())
        << "step " << 17 + i;
  }
}

// The banner is printed after the data source was reopened at the checkpoint's position; it
// must describe the store, not the source it replaced.
TEST(TrainCliTest, ResumedRunBannerShowsTheStoreShape) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "3,16,24", 0, 32);
  const std::string common = CliPath() + " train --store " + store + " --model vit-mae" + kTiny +
                             " --batch 8 --epochs 2 --checkpoint-every 2 --checkpoint-dir " +
                             dir.Sub("ck");
  auto first = RunCommand(common + " --max-steps 2");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto resumed = RunCommand(common + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("x [3,16,24], 1 rank(s) x batch 8, 4 steps/epoch"),
            std::string::npos)
      << resumed.output;
}

TEST(TrainCliTest, RegressOnStoreWithoutYFailsBeforeTraining) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "2,16,16", 0);
  auto r = RunCommand(CliPath() + " train --store " + store + " --model vit-regress" + kTiny +
                      " --batch 8 --json " + dir.Sub("log.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("has no field y, which vit-regress needs"), std::string::npos)
      << r.output;
  EXPECT_EQ(ReadJsonl(dir.Sub("log.jsonl"), "step").size(), 0u);
}

TEST(TrainCliTest, EvalStoreWithOtherChannelCountFailsBeforeTraining) {
  TempDir dir;
  const std::string train = Synth(dir, "a", "1,16,16", 0);
  const std::string eval = Synth(dir, "b", "3,16,16", 0, 16);
  auto r = RunCommand(CliPath() + " train --store " + train + " --eval-store " + eval +
                      " --model vit-mae" + kTiny + " --batch 8 --json " + dir.Sub("log.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("field x has 3 channels, the model was built for 1"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(eval), std::string::npos);
  EXPECT_EQ(ReadJsonl(dir.Sub("log.jsonl"), "step").size(), 0u);
}

TEST(TrainCliTest, ResumeWithAnotherModelConfigurationFails) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0, 32);
  const std::string base = CliPath() + " train --store " + store + " --model vit-mae" + kTiny +
                           " --batch 8 --checkpoint-dir " + dir.Sub("ck");
  ASSERT_EQ(RunCommand(base).exit_code, 0);
  auto r = RunCommand(base + " --resume --mlp-ratio 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(
      r.output.find("was written for model.mlp_ratio=4.0 but this run has model.mlp_ratio=2.0"),
      std::string::npos)
      << r.output;
}

TEST(TrainCliTest, TruncatedCheckpointFailsResume) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0, 32);
  const std::string base = CliPath() + " train --store " + store + " --model vit-mae" + kTiny +
                           " --batch 8 --checkpoint-dir " + dir.Sub("ck");
  ASSERT_EQ(RunCommand(base).exit_code, 0);
  const std::string weights = dir.Sub("ck/step-00000004/model.safetensors");
  testing::TruncateFile(weights, testing::FileSize(weights) / 2);
  auto r = RunCommand(base + " --resume");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("DataLoss"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(weights), std::string::npos) << r.output;
}

TEST(TrainCliTest, NegativeClassCountInTheManifestIsDataLossNamingIt) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 3, 16);
  nlohmann::json m;
  std::ifstream(store + "/manifest.json") >> m;
  m["attrs"]["synthetic"]["classes"] = -5;
  std::ofstream(store + "/manifest.json", std::ios::trunc) << m.dump();
  auto r = RunCommand(CliPath() + " train --store " + store + " --model vit-classify" + kTiny +
                      " --batch 8 --max-steps 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("manifest " + store + "/manifest.json: attrs.synthetic.classes is -5"),
            std::string::npos)
      << r.output;
}

TEST(TrainCliTest, TwoRanksUnderMpirunShareTheGlobalBatch) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 4);
  auto r = RunCommand(std::string(TILESTAGE_MPIRUN_CMD) + " -np 2 " + CliPath() +
                      " train --store " + store + " --model vit-classify" + kTiny +
                      " --batch 8 --epochs 1 --eval-fraction 0.25 --checksum-every 2 --json " +
                      dir.Sub("log.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 72 training records, global batch 8 (4 per rank): 9 steps, each with a gradient allreduce.
  const auto steps = ReadJsonl(dir.Sub("log.jsonl"), "step");
  ASSERT_EQ(steps.size(), 9u);
  EXPECT_GT(steps[0]["allreduce_ms"].get<double>(), 0.0);
  EXPECT_NE(r.output.find("2 rank(s) x batch 4"), std::string::npos) << r.output;
  const auto epochs = ReadJsonl(dir.Sub("log.jsonl"), "epoch");
  ASSERT_EQ(epochs.size(), 1u);
  EXPECT_TRUE(epochs[0].contains("eval_loss"));
}

// ------------------------------------------------------------ stopping on N ranks, resuming on M

std::vector<float> Weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  auto parsed = trainer::ParseSafetensors(bytes, path);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  std::vector<float> out;
  if (!parsed.ok()) return out;
  for (const auto& [name, t] : parsed->tensors)
    out.insert(out.end(), t.values.begin(), t.values.end());
  return out;
}

std::string Mpirun(int np) {
  return np == 1 ? CliPath() : std::string(TILESTAGE_MPIRUN_CMD) + " -np " + std::to_string(np) +
                                   " " + CliPath();
}

// One run of 16 steps (2 epochs of 8 global batches of 8) on `first_np` ranks, checkpointing
// every 6 steps; then the same run stopped at step 6 and continued on `second_np` ranks from that
// checkpoint. The continued steps must have the uninterrupted run's losses and end with its
// parameters, within float tolerance (summation order differs with the split).
void ExpectResumeOnOtherRankCountMatches(int first_np, int second_np) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0, 64, " --shard-size 16KiB");
  const std::string args = " train --store " + store + " --model vit-mae" + kTiny +
                           " --batch 8 --epochs 2 --seed 3 --shuffle block --augment "
                           "--checkpoint-every 6 --checksum-every 4 --checkpoint-dir ";
  auto full = RunCommand(Mpirun(first_np) + args + dir.Sub("full") + " --json " +
                         dir.Sub("full.jsonl"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const auto whole = ReadJsonl(dir.Sub("full.jsonl"), "step");
  ASSERT_EQ(whole.size(), 16u);
  // The job stopped right after step 6: its checkpoint directory holds step 6 only.
  namespace fs = std::filesystem;
  fs::create_directories(dir.Sub("cut"));
  fs::copy(dir.Sub("full/step-00000006"), dir.Sub("cut/step-00000006"));
  std::ofstream(dir.Sub("cut/latest.json")) << R"({"checkpoint": "step-00000006"})";
  auto resumed = RunCommand(Mpirun(second_np) + args + dir.Sub("cut") + " --resume --json " +
                            dir.Sub("resumed.jsonl"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + dir.Sub("cut/step-00000006") +
                                " at step 6 (epoch 1, sample 48 of the epoch over all ranks)"),
            std::string::npos)
      << resumed.output;
  const auto rest = ReadJsonl(dir.Sub("resumed.jsonl"), "step");
  ASSERT_EQ(rest.size(), 10u);
  for (size_t i = 0; i < rest.size(); ++i) {
    const double want = whole[6 + i]["loss"].get<double>();
    EXPECT_EQ(rest[i]["step"], whole[6 + i]["step"]);
    EXPECT_NEAR(rest[i]["loss"].get<double>(), want, 1e-4 * std::abs(want)) << "step " << 7 + i;
  }
  const auto a = Weights(dir.Sub("full/step-00000016/model.safetensors"));
  const auto b = Weights(dir.Sub("cut/step-00000016/model.safetensors"));
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(a[i] - b[i])));
    max_abs = std::max(max_abs, double(std::abs(a[i])));
  }
  EXPECT_LT(max_diff, 1e-3 * max_abs) << "largest parameter difference " << max_diff;
}

TEST(TrainCliTest, StoppedOnTwoRanksAndResumedOnOneGivesTheUninterruptedLosses) {
  ExpectResumeOnOtherRankCountMatches(2, 1);
}

TEST(TrainCliTest, StoppedOnOneRankAndResumedOnTwoGivesTheUninterruptedLosses) {
  ExpectResumeOnOtherRankCountMatches(1, 2);
}

TEST(TrainCliTest, ResumeWithAnotherGlobalBatchIsRefusedNamingBatch) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0, 32);
  const std::string base = CliPath() + " train --store " + store + " --model vit-mae" + kTiny +
                           " --checkpoint-dir " + dir.Sub("ck");
  ASSERT_EQ(RunCommand(base + " --batch 8").exit_code, 0);
  auto r = RunCommand(base + " --batch 16 --resume");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("was written with --batch 8 but this run has --batch 16"),
            std::string::npos)
      << r.output;
  r = RunCommand(base + " --batch 8 --shuffle none --resume");
  EXPECT_NE(r.output.find("was written with --shuffle global but this run has --shuffle none"),
            std::string::npos)
      << r.output;
  const std::string other = Synth(dir, "t", "1,16,16", 0, 40);
  r = RunCommand(CliPath() + " train --store " + other + " --model vit-mae" + kTiny +
                 " --batch 8 --resume --checkpoint-dir " + dir.Sub("ck"));
  EXPECT_NE(r.output.find("was written with --store " + store), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("but this run has --store " + other), std::string::npos) << r.output;
}

TEST(TrainCliTest, RankCountNotDividingTheGlobalBatchIsAClearError) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0, 32);
  auto r = RunCommand(Mpirun(2) + " train --store " + store + " --model vit-mae" + kTiny +
                      " --batch 7");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--batch 7 (the global batch) must be a positive multiple of the 2 "
                          "ranks"),
            std::string::npos)
      << r.output;
}

TEST(TrainCliTest, PartitionStagedStoreOnAnotherNodeCountStopsWithTheRestageCommand) {
  TempDir dir;
  const std::string store = Synth(dir, "s", "1,16,16", 0, 64, " --shard-size 16KiB");
  // Two simulated nodes, each holding half of the shards.
  auto staged = RunCommand(std::string(TILESTAGE_MPIRUN_CMD) + " -np 2 " + CliPath() +
                           " stage --from " + store + " --to " + dir.Sub("n{node}") +
                           " --mode partition --ranks-per-node 1 --chunk 64KiB");
  ASSERT_EQ(staged.exit_code, 0) << staged.output;
  // A one-node job on node 0's share would never see node 1's records.
  auto r = RunCommand(CliPath() + " train --store " + dir.Sub("n0") + " --model vit-mae" + kTiny +
                      " --batch 8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("store " + dir.Sub("n0") + " is partition-staged for 2 nodes"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("but this job runs on 1 node,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Restage (copies only the shards each node is missing): mpirun -np 1 "
                          "--map-by ppr:1:node tilestage stage --from " +
                          store + " --to " + dir.Sub("n{node}") + " --mode partition"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace tilestage
