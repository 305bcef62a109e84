// `tilestage bench staging` (bench/e2e/staging_bench.h) on a tiny synthetic store: the
// break-even arithmetic, every figure of a run, the evictions it issued (mincore residency), the
// mllog files read back by the staging analysis, and the CLI alone and under mpirun -np 2.
// No timing is asserted: only relations between the measured parts.
#include "bench/e2e/staging_bench.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include <fstream>
#include <iterator>

#include "bench/e2e/staging_analysis.h"
#include "tests/common/test_util.h"
#include "tests/loaders/synth_store.h"
#include "tiling/comm/communicator.h"
#include "tiling/storage.h"

namespace tilestage::bench {
namespace {

using ::tilestage::testing::TempDir;

TEST(StagingAnswer, BreakEvenIsStagingOverTheTimeAnEpochSaves) {
  // 10 s of staging saves 2 s per epoch: equal at 5 epochs, staging wins from 6.
  auto a = ComputeStagingAnswer(10, 3, 1, 4);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_DOUBLE_EQ(a->time_with_staging_s, 14);
  EXPECT_DOUBLE_EQ(a->time_in_place_s, 12);
  EXPECT_DOUBLE_EQ(a->staging_share, 10.0 / 14);
  EXPECT_DOUBLE_EQ(a->staging_per_epoch, 10);
  ASSERT_TRUE(a->breakeven_epochs.has_value());
  EXPECT_DOUBLE_EQ(*a->breakeven_epochs, 5);
  EXPECT_EQ(a->first_winning_epochs, 6u);
  EXPECT_FALSE(a->staging_pays_off);
}

TEST(StagingAnswer, AtTheBreakEvenEpochStagingDoesNotYetPayOff) {
  EXPECT_FALSE(ComputeStagingAnswer(10, 3, 1, 5)->staging_pays_off);
  EXPECT_TRUE(ComputeStagingAnswer(10, 3, 1, 6)->staging_pays_off);
  EXPECT_EQ(ComputeStagingAnswer(10, 3.5, 1, 1)->first_winning_epochs, 5u);  // 4 epochs tie
}

TEST(StagingAnswer, NodeLocalNoFasterThanInPlaceNeverBreaksEven) {
  auto a = ComputeStagingAnswer(1, 2, 2, 100);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->breakeven_epochs.has_value());
  EXPECT_FALSE(a->first_winning_epochs.has_value());
  EXPECT_FALSE(a->staging_pays_off);
  EXPECT_TRUE(a->ToJson()["breakeven_epochs"].is_null());
}

TEST(StagingAnswer, ZeroEpochsOrANegativeTimeIsInvalidArgument) {
  EXPECT_EQ(ComputeStagingAnswer(1, 2, 1, 0).status().code(), StatusCode::kInvalidArgument);
  auto negative = ComputeStagingAnswer(-1, 2, 1, 3);
  EXPECT_EQ(negative.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(negative.status().message().find("staging_s"), std::string::npos);
}

bool OnTmpfs(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC;
}

// One run on a tiny store, shared by the cases that read it.
class StagingBenchRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    testing::SynthStoreSpec spec;
    spec.samples = 96;
    spec.shape = {3, 16, 16};
    spec.shard_target_bytes = 64 << 10;
    testing::WriteSynthStore(LocalStorage(), dir_->Sub("store"), spec);
    StagingBenchOptions o;
    o.store = dir_->Sub("store");
    o.node_local = dir_->Sub("local");
    o.out = dir_->Sub("out");
    o.epochs = 3;
    o.compute_ms = 1;
    o.batch = 8;
    o.threads = 2;
    o.model_nodes = {1, 4};
    auto comm = NewSingleProcessCommunicator();
    auto run = RunStagingBench(*comm, o);
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    bench_ = new StagingBench(std::move(*run));
  }
  static void TearDownTestSuite() {
    delete bench_;
    delete dir_;
  }
  static TempDir* dir_;
  static StagingBench* bench_;
};
TempDir* StagingBenchRun::dir_ = nullptr;
StagingBench* StagingBenchRun::bench_ = nullptr;

TEST_F(StagingBenchRun, EveryFigureIsMeasured) {
  ASSERT_NE(bench_, nullptr);
  const StagingBench& b = *bench_;
  EXPECT_EQ(b.ranks, 1);
  EXPECT_EQ(b.nodes, 1);
  EXPECT_EQ(b.records, 96u);
  EXPECT_GT(b.store_bytes, 0u);
  EXPECT_GT(b.staging_s, 0);
  EXPECT_EQ(b.staged_bytes, b.store_bytes);
  EXPECT_LE(b.staging_start_ms, b.staging_stop_ms);
  for (const EpochMeasurement* m : {&b.in_place, &b.node_local}) {
    SCOPED_TRACE(m->strategy);
    EXPECT_EQ(m->samples, 96u);
    EXPECT_EQ(m->batches, 12u);
    EXPECT_GT(m->stored_bytes_read, 0u);
    EXPECT_GT(m->wall_s, 0);
    // 12 sleeps of 1 ms at least, and the stall is part of the wall time.
    EXPECT_GE(m->compute_s, 0.012);
    EXPECT_LE(m->compute_s + m->stall_s, m->wall_s);
    EXPECT_GE(m->stall_share(), 0);
  }
  EXPECT_EQ(b.in_place.store, b.options.store);
  EXPECT_EQ(b.node_local.store, b.options.node_local + "/tilestage_bench_staging");
  EXPECT_GT(b.loader_samples_per_s, 0);
  EXPECT_GT(b.local_raw_read_bytes_per_s, 0);
  ASSERT_TRUE(b.model_params.has_value());
  ASSERT_EQ(b.model.size(), 2u);
  EXPECT_EQ(b.model[1].nodes, 4);
  EXPECT_GT(b.model[1].staging_s, 0);
  EXPECT_DOUBLE_EQ(b.model_params->train_samples_per_s, 8 * 1e3 / 1);
  const Json j = b.ToJson();
  for (const char* key :
       {"staging", "in_place", "node_local_epoch", "answer", "evictions", "mllog", "model"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST_F(StagingBenchRun, AnswerIsTheArithmeticOfTheMeasuredParts) {
  ASSERT_NE(bench_, nullptr);
  const StagingBench& b = *bench_;
  const StagingAnswer& a = b.answer;
  EXPECT_EQ(a.epochs, 3u);
  EXPECT_DOUBLE_EQ(a.time_with_staging_s, b.staging_s + 3 * b.node_local.wall_s);
  EXPECT_DOUBLE_EQ(a.time_in_place_s, 3 * b.in_place.wall_s);
  EXPECT_DOUBLE_EQ(a.staging_share, b.staging_s / a.time_with_staging_s);
  EXPECT_DOUBLE_EQ(a.staging_per_epoch, b.staging_s / b.node_local.wall_s);
  EXPECT_EQ(a.staging_pays_off, a.time_with_staging_s < a.time_in_place_s);
  const double saved_s = b.in_place.wall_s - b.node_local.wall_s;
  if (saved_s > 0) {
    ASSERT_TRUE(a.breakeven_epochs.has_value());
    EXPECT_DOUBLE_EQ(*a.breakeven_epochs, b.staging_s / saved_s);
    // Strictly faster from the first winning epoch count on, not one epoch earlier.
    const double n = double(*a.first_winning_epochs);
    EXPECT_LT(b.staging_s + n * b.node_local.wall_s, n * b.in_place.wall_s);
    EXPECT_GE(b.staging_s + (n - 1) * b.node_local.wall_s, (n - 1) * b.in_place.wall_s);
  } else {
    EXPECT_FALSE(a.breakeven_epochs.has_value());
  }
}

TEST_F(StagingBenchRun, EvictionsLeaveNothingOfTheFilesInThePageCache) {
  ASSERT_NE(bench_, nullptr);
  if (OnTmpfs(dir_->path())) GTEST_SKIP() << dir_->path() << " is tmpfs: nothing can be evicted";
  const std::vector<EvictionRecord>& ev = bench_->evictions;
  ASSERT_EQ(ev.size(), 4u);
  for (const EvictionRecord& e : ev) {
    SCOPED_TRACE(e.what);
    EXPECT_GT(e.files, 0u);
    EXPECT_GT(e.bytes, 0u);
    EXPECT_EQ(e.resident_after_bytes, 0u);
  }
  // The in-place epoch had just read the source, the loader-only epoch the node-local copy: the
  // evictions after them had pages to drop.
  EXPECT_EQ(ev[1].what, "source before staging");
  EXPECT_GT(ev[1].resident_before_bytes, 0u);
  EXPECT_EQ(ev[3].what, "node-local copy before the raw read");
  EXPECT_GT(ev[3].resident_before_bytes, 0u);
}

TEST_F(StagingBenchRun, StagedCopyIsRemovedAndResultsAndChartAreWritten) {
  ASSERT_NE(bench_, nullptr);
  EXPECT_FALSE(std::filesystem::exists(bench_->staged_store));
  std::ifstream in(dir_->Sub("out/results.json"));
  ASSERT_TRUE(in.good());
  const Json j = Json::parse(in);
  EXPECT_EQ(j["answer"]["epochs"], 3);
  EXPECT_DOUBLE_EQ(j["answer"]["staging_s"].get<double>(), bench_->staging_s);
  std::ifstream chart(dir_->Sub("out/time.svg"));
  const std::string svg((std::istreambuf_iterator<char>(chart)), std::istreambuf_iterator<char>());
  for (const char* text :
       {">with staging<", ">read in place<", "<title>staging ", "<title>data stall ", "</svg>"})
    EXPECT_NE(svg.find(text), std::string::npos) << text;
}

TEST_F(StagingBenchRun, MllogOfBothStrategiesReadsBackInTheStagingAnalysis) {
  ASSERT_NE(bench_, nullptr);
  const StagingBench& b = *bench_;
  AnalyzeOptions options;
  options.compare = {b.staged_mllog, b.in_place_mllog};
  auto analysis = AnalyzeMlLogFiles(
      {std::string(TILESTAGE_BENCH_TEST_DATA) + "/cosmoflow_style/result_1.txt"}, options);
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  const RunAnalysis* staged = nullptr;
  const RunAnalysis* in_place = nullptr;
  for (const RunAnalysis& run : analysis->runs) {
    if (run.file == b.staged_mllog) staged = &run;
    if (run.file == b.in_place_mllog) in_place = &run;
  }
  ASSERT_NE(staged, nullptr);
  ASSERT_NE(in_place, nullptr);
  // Times in the log are whole milliseconds: each figure within a few of the measured one.
  EXPECT_EQ(staged->state, RunState::kOk);
  EXPECT_EQ(staged->epochs, 3);
  ASSERT_TRUE(staged->staging_s.has_value());
  EXPECT_NEAR(*staged->staging_s, b.staging_s, 0.002);
  EXPECT_NEAR(staged->run_s, b.answer.time_with_staging_s, 0.005);
  EXPECT_EQ(in_place->state, RunState::kNoStaging);
  EXPECT_EQ(in_place->epochs, 3);
  EXPECT_NEAR(in_place->run_s, b.answer.time_in_place_s, 0.005);
  int compare_groups = 0;
  for (const GroupSummary& g : analysis->groups) compare_groups += g.compare ? 1 : 0;
  EXPECT_EQ(compare_groups, 2);
}

// Options whose store, node-local folder and output lie in `dir`.
StagingBenchOptions OptionsIn(const TempDir& dir) {
  StagingBenchOptions o;
  o.store = dir.Sub("store");
  o.node_local = dir.Sub("local");
  o.out = dir.Sub("out");
  return o;
}

Status RunAlone(const StagingBenchOptions& options) {
  auto comm = NewSingleProcessCommunicator();
  return RunStagingBench(*comm, options).status();
}

TEST(StagingBenchOptions, MissingNodeLocalIsInvalidArgumentNamingTheOption) {
  TempDir dir;
  StagingBenchOptions o = OptionsIn(dir);
  o.node_local.clear();
  const Status status = RunAlone(o);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--node-local"), std::string::npos) << status.ToString();
}

TEST(StagingBenchOptions, NodeLocalInsideTheStoreIsInvalidArgumentNamingBoth) {
  TempDir dir;
  StagingBenchOptions o = OptionsIn(dir);
  o.node_local = dir.Sub("store/scratch");
  const Status status = RunAlone(o);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(o.node_local), std::string::npos) << status.ToString();
  EXPECT_NE(status.message().find(o.store), std::string::npos) << status.ToString();
}

TEST(StagingBenchOptions, MissingStoreIsNotFoundNamingIt) {
  TempDir dir;
  StagingBenchOptions o = OptionsIn(dir);
  o.store = dir.Sub("no_store");
  const Status status = RunAlone(o);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_NE(status.message().find("no_store"), std::string::npos) << status.ToString();
}

TEST(StagingBenchTrain, RealTrainingStepGivesEveryFigureFromTheStepRecords) {
  TempDir dir;
  testing::SynthStoreSpec spec;
  spec.samples = 64;
  spec.shape = {3, 16, 16};
  spec.shard_target_bytes = 64 << 10;
  testing::WriteSynthStore(LocalStorage(), dir.Sub("store"), spec);
  StagingBenchOptions o = OptionsIn(dir);
  o.epochs = 2;
  o.threads = 2;
  trainer::TrainJobOptions train;
  train.model = "vit-mae";
  train.dim = 32;
  train.depth = 1;
  train.heads = 2;
  train.batch = 16;
  o.train = train;
  auto comm = NewSingleProcessCommunicator();
  auto run = RunStagingBench(*comm, o);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const StagingBench& b = *run;
  EXPECT_EQ(b.options.batch, 16);  // the loader's batch follows the training batch
  EXPECT_NE(b.step.find("vit-mae"), std::string::npos) << b.step;
  for (const EpochMeasurement* m : {&b.in_place, &b.node_local}) {
    SCOPED_TRACE(m->strategy);
    EXPECT_EQ(m->batches, 4u);  // 64 samples in steps of 16
    EXPECT_EQ(m->samples, 64u);
    EXPECT_GT(m->compute_s, 0);
    EXPECT_GE(m->stall_s, 0);
    // The steps lie within the epoch; its ends are whole milliseconds.
    EXPECT_LE(m->compute_s + m->stall_s, m->wall_s + 0.002);
    EXPECT_LE(m->start_ms, m->stop_ms);
  }
  EXPECT_DOUBLE_EQ(b.train_samples_per_s, 64 / b.node_local.compute_s);
  EXPECT_DOUBLE_EQ(b.answer.time_with_staging_s, b.staging_s + 2 * b.node_local.wall_s);
  EXPECT_DOUBLE_EQ(b.answer.time_in_place_s, 2 * b.in_place.wall_s);
}

TEST(StagingBenchOptions, ComputeMsAndTrainTogetherAreInvalidArgument) {
  TempDir dir;
  StagingBenchOptions o = OptionsIn(dir);
  o.compute_ms = 5;
  o.train = trainer::TrainJobOptions();
  const Status status = RunAlone(o);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("exclusive"), std::string::npos) << status.ToString();
}

// The CLI: a store from `tilestage synth`, the JSON answer, and the mllog files read back by
// `tilestage bench analyze --compare`.
std::string Cli() { return testing::CliPath(); }

Json RunJson(const std::string& command_line) {
  const testing::CommandResult r = testing::RunCommand(command_line + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << command_line << "\n" << r.output;
  const size_t start = r.output.find('{');
  if (start == std::string::npos) return Json();
  return Json::parse(r.output.substr(start), nullptr, /*allow_exceptions=*/false);
}

std::string SynthStore(const TempDir& dir) {
  const std::string store = dir.Sub("store");
  const testing::CommandResult r = testing::RunCommand(
      Cli() + " synth --out " + store + " --samples 64 --shape 3,16,16 --shard-size 64KiB 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return store;
}

std::string BenchStagingArgs(const TempDir& dir, const std::string& store) {
  return " bench staging --store " + store + " --node-local " + dir.Sub("local") + " --out " +
         dir.Sub("out") + " --epochs 2 --compute-ms 1 --batch 8 --threads 2 --json";
}

TEST(BenchStagingCli, AnswersInJsonAndItsMllogsReadBackInBenchAnalyze) {
  TempDir dir;
  const std::string store = SynthStore(dir);
  const Json j = RunJson(Cli() + BenchStagingArgs(dir, store));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["ranks"], 1);
  EXPECT_EQ(j["records"], 64);
  EXPECT_EQ(j["answer"]["epochs"], 2);
  EXPECT_GT(j["answer"]["time_with_staging_s"].get<double>(), 0);
  EXPECT_GT(j["answer"]["time_in_place_s"].get<double>(), 0);
  const Json analysis = RunJson(Cli() + " bench analyze " + TILESTAGE_BENCH_TEST_DATA +
                                "/cosmoflow_style" + " --compare " + dir.Sub("out/staged.mllog") +
                                " --compare " + dir.Sub("out/in_place.mllog") + " --json");
  ASSERT_TRUE(analysis.is_object());
  int compare_groups = 0;
  for (const auto& g : analysis["groups"]) compare_groups += g.value("compare", false) ? 1 : 0;
  EXPECT_EQ(compare_groups, 2);
}

TEST(BenchStagingCli, TrainOptionsThatDoNotParseAreAnErrorNamingTrain) {
  TempDir dir;
  const std::string store = SynthStore(dir);
  const testing::CommandResult r =
      testing::RunCommand(Cli() + " bench staging --store " + store + " --node-local " +
                          dir.Sub("local") + " --train '--model vit-mae --no-such-option 3' 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--train"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--no-such-option"), std::string::npos) << r.output;
}

TEST(BenchStagingCli, TwoRanksUnderMpirunShareTheEpochsAndGiveOneAnswer) {
  TempDir dir;
  const std::string store = SynthStore(dir);
  const std::string mpirun =
      std::string(TILESTAGE_MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none -np 2 ";
  const Json j = RunJson(mpirun + Cli() + BenchStagingArgs(dir, store));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["ranks"], 2);
  EXPECT_EQ(j["nodes"], 1);
  // Each of the two ranks loads 64 / 2 samples an epoch, in batches of 8.
  EXPECT_EQ(j["in_place"]["samples"], 64);
  EXPECT_EQ(j["in_place"]["batches"], 8);
  EXPECT_EQ(j["node_local_epoch"]["samples"], 64);
  EXPECT_EQ(j["staging"]["staged_bytes"], j["store_bytes"]);
  EXPECT_TRUE(j["answer"].contains("breakeven_epochs"));
}

// examples/slurm/stage_and_train.sbatch outside Slurm: mpirun as the launcher, a GeoTIFF from
// examples/data, a tiny model; every step must run and bench analyze must list both strategies.
TEST(SlurmExample, IngestStageTrainBenchAndAnalyzeRunWithMpirunAsLauncher) {
  TempDir dir;
  const std::string root = testing::SourceDir();
  const std::string env =
      "SLURM_NTASKS=2 SLURM_CPUS_PER_TASK=1 OUT=" + dir.Sub("out") + " TILESTAGE=" + Cli() +
      " LAUNCH='" + TILESTAGE_MPIEXEC +
      " --allow-run-as-root --oversubscribe --bind-to none -np 2'" + " INPUTS=" + root +
      "/examples/data/geotiff/RGB.byte.tif" +
      " INGEST='ingest geotiff --tile 32,32 --min-valid 0.5' STORE=" + dir.Sub("store") +
      " NODE_LOCAL=" + dir.Sub("local") + " MODEL='vit-mae --dim 32 --depth 1 --heads 2'" +
      " GLOBAL_BATCH=16 EPOCHS=2 PUBLISHED=" + TILESTAGE_BENCH_TEST_DATA + "/cosmoflow_style";
  const testing::CommandResult r =
      testing::RunCommand(env + " bash " + root + "/examples/slurm/stage_and_train.sbatch 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir.Sub("out/analyze.txt"));
  const std::string analyze((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(analyze.find("bench_staging/staged.mllog"), std::string::npos) << analyze;
  EXPECT_NE(analyze.find("bench_staging/in_place.mllog"), std::string::npos) << analyze;
  EXPECT_NE(r.output.find("break-even"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("out/staging_share.svg")));
}

}  // namespace
}  // namespace tilestage::bench
