// Data parallelism under `mpirun -np 2`: two ranks with half the global batch each must end with
// the parameters one process reaches on the whole batch (rank 0 computes that reference itself
// with a single-process communicator), in overlap, blocking and auto modes; auto tries both and
// every rank keeps the same one; and a rank whose weights differ is caught by the cross-rank
// checksum.
#define OMPI_SKIP_MPICXX 1
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <thread>

#include "tests/trainer/synth_data.h"
#include "trainer/grad_sync.h"
#include "trainer/trainer.h"

namespace tilestage::trainer {
namespace {

TrainerConfig Config(AllreduceMode mode) {
  TrainerConfig c;
  c.model.objective = Objective::kMae;
  c.model.dim = 16;
  c.model.depth = 2;
  c.model.heads = 2;
  c.model.patch = 4;
  c.model.mlp_ratio = 2.0;
  c.model.in_channels = 1;
  c.model.height = c.model.width = 16;
  c.model.decoder_dim = 16;
  c.model.decoder_heads = 2;
  c.model.mask_ratio = 0.5;
  c.adamw.lr = 2e-3;
  c.adamw.clip_norm = 0.5;  // exercises clipping of the averaged gradients
  c.epochs = 2;
  c.seed = 4;
  c.allreduce = mode;
  c.bucket_floats = 500;  // many buckets, so several overlap backward
  c.checksum_every = 3;
  return c;
}

std::vector<float> Train(TrainerConfig config, Communicator* comm, int64_t global_batch,
                         std::vector<StepRecord>* steps) {
  auto data = testing::MakeSynthData(64, {1, 16, 16}, 0, 9);
  const int64_t local = global_batch / comm->size();
  config.batch_size = local;
  auto t = Trainer::Create(config, comm, LocalStorage());
  EXPECT_TRUE(t.ok());
  EXPECT_TRUE((*t)->InitializeWeights().ok());
  auto src = NewInMemoryBatchSource(data, local, comm->rank(), comm->size(), config.seed, true);
  Status s = (*t)->Run(*src, nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  *steps = (*t)->steps();
  return (*t)->model().params().params();
}

void ExpectTwoRanksMatchOne(AllreduceMode mode) {
  auto mpi = NewMpiCommunicator();
  ASSERT_TRUE(mpi.ok());
  ASSERT_EQ((*mpi)->size(), 2) << "run under mpirun -np 2";
  std::vector<StepRecord> dp_steps;
  const std::vector<float> dp = Train(Config(mode), mpi->get(), 8, &dp_steps);
  ASSERT_EQ(dp_steps.size(), 16u);
  if ((*mpi)->rank() != 0) return;
  auto single = NewSingleProcessCommunicator();
  std::vector<StepRecord> ref_steps;
  const std::vector<float> ref = Train(Config(mode), single.get(), 8, &ref_steps);
  ASSERT_EQ(ref.size(), dp.size());
  // The loss and the norm of the averaged gradient (before clipping) of every step: a missing or
  // doubled division by the rank count, or a bucket left out, changes the norm.
  for (size_t i = 0; i < ref_steps.size(); ++i) {
    EXPECT_NEAR(dp_steps[i].loss, ref_steps[i].loss, 1e-5 * std::abs(ref_steps[i].loss))
        << "step " << i + 1;
    EXPECT_NEAR(dp_steps[i].grad_norm, ref_steps[i].grad_norm, 1e-4 * ref_steps[i].grad_norm)
        << "step " << i + 1;
  }
  double max_diff = 0.0, max_abs = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(dp[i] - ref[i])));
    max_abs = std::max(max_abs, double(std::abs(ref[i])));
  }
  // Float sums in another order (two half-batch means, then the average) differ by rounding,
  // which Adam's normalization amplifies for gradients near zero (an update is ~lr whatever the
  // gradient's size, so such a parameter may step either way): within one lr = 2e-3 step (the
  // gradients themselves are compared above), while the weights moved by > 1e-2 (checked below,
  // so the comparison is not vacuous).
  EXPECT_LT(max_diff, 2e-3) << "largest parameter " << max_abs;
  std::vector<float> init;
  {
    auto t = Trainer::Create(Config(mode), single.get(), LocalStorage());
    ASSERT_TRUE((*t)->InitializeWeights().ok());
    init = (*t)->model().params().params();
  }
  double moved = 0.0;
  for (size_t i = 0; i < ref.size(); ++i)
    moved = std::max(moved, double(std::abs(ref[i] - init[i])));
  EXPECT_GT(moved, 1e-2);
}

TEST(DataParallelTest, TwoRanksOverlappedMatchOneRankOnTheGlobalBatch) {
  ExpectTwoRanksMatchOne(AllreduceMode::kOverlap);
}

TEST(DataParallelTest, TwoRanksBlockingMatchOneRankOnTheGlobalBatch) {
  ExpectTwoRanksMatchOne(AllreduceMode::kBlocking);
}

TEST(DataParallelTest, TwoRanksAutoMatchOneRankOnTheGlobalBatch) {
  ExpectTwoRanksMatchOne(AllreduceMode::kAuto);
}

// Steps in `slow_mode` take 20 ms longer: auto must try both modes on steps 2-7, alternating,
// then keep the other one, on both ranks, and still average the gradients.
void ExpectAutoKeepsTheFasterMode(AllreduceMode slow_mode) {
  auto mpi = NewMpiCommunicator();
  ASSERT_TRUE(mpi.ok());
  ParamStore store;
  store.Add("w", {3000}, true, ParamInit::kZeros);
  store.Finalize();
  GradientSync sync(mpi->get(), &store, AllreduceMode::kAuto, /*bucket_floats=*/1000);
  std::vector<AllreduceMode> modes;
  for (int step = 1; step <= 10; ++step) {
    ASSERT_TRUE(sync.BeginStep().ok());
    modes.push_back(sync.active_mode());
    for (int64_t i = 0; i < store.total(); ++i) store.grads()[i] = float((*mpi)->rank() + step);
    if (sync.active_mode() == slow_mode) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (int64_t offset : {2000, 1000, 0}) sync.OnGradsReady(offset);
    ASSERT_TRUE(sync.Finish().ok());
    ASSERT_EQ(store.grads()[0], float(step) + 0.5f) << "step " << step;
  }
  for (int step = 2; step <= 7; ++step) {
    EXPECT_EQ(modes[step - 1], step % 2 == 0 ? AllreduceMode::kBlocking : AllreduceMode::kOverlap)
        << "step " << step;
  }
  const AllreduceMode fast =
      slow_mode == AllreduceMode::kOverlap ? AllreduceMode::kBlocking : AllreduceMode::kOverlap;
  for (int step = 8; step <= 10; ++step) EXPECT_EQ(modes[step - 1], fast) << "step " << step;
  EXPECT_NE(sync.choice().find(AllreduceModeName(fast)), std::string::npos) << sync.choice();
}

TEST(DataParallelTest, AutoAllreduceKeepsBlockingWhenOverlapIsSlower) {
  ExpectAutoKeepsTheFasterMode(AllreduceMode::kOverlap);
}

TEST(DataParallelTest, AutoAllreduceKeepsOverlapWhenBlockingIsSlower) {
  ExpectAutoKeepsTheFasterMode(AllreduceMode::kBlocking);
}

TEST(DataParallelTest, GradientBucketsAreAveragedAcrossRanks) {
  auto mpi = NewMpiCommunicator();
  ASSERT_TRUE(mpi.ok());
  for (AllreduceMode mode : {AllreduceMode::kOverlap, AllreduceMode::kBlocking}) {
    ParamStore store;
    store.Add("a", {1000}, true, ParamInit::kZeros);
    store.Add("b", {337}, true, ParamInit::kZeros);
    store.Finalize();
    GradientSync sync(mpi->get(), &store, mode, /*bucket_floats=*/128);
    EXPECT_EQ(sync.buckets(), 11);
    ASSERT_TRUE(sync.BeginStep().ok());
    const float r = float((*mpi)->rank() + 1);
    for (int64_t i = 0; i < store.total(); ++i) store.grads()[i] = r * float(i % 7 - 3);
    // Backward reports readiness from the top down, in uneven steps.
    for (int64_t offset : {1300, 1000, 640, 333, 0}) sync.OnGradsReady(offset);
    ASSERT_TRUE(sync.Finish().ok());
    // Mean of rank 0's (1x) and rank 1's (2x) gradients.
    for (int64_t i = 0; i < store.total(); ++i) {
      ASSERT_EQ(store.grads()[i], 1.5f * float(i % 7 - 3)) << i;
    }
  }
}

TEST(DataParallelTest, RanksStartFromRankZeroWeights) {
  auto mpi = NewMpiCommunicator();
  ASSERT_TRUE(mpi.ok());
  TrainerConfig config = Config(AllreduceMode::kOverlap);
  // Different seeds per rank would give different weights; the broadcast must override them.
  config.seed = 100 + (*mpi)->rank();
  auto t = Trainer::Create(config, mpi->get(), LocalStorage());
  ASSERT_TRUE((*t)->InitializeWeights().ok());
  EXPECT_TRUE((*t)->CheckRanksAgree().ok());
}

TEST(DataParallelTest, DivergedRankIsDetectedByChecksum) {
  auto mpi = NewMpiCommunicator();
  ASSERT_TRUE(mpi.ok());
  auto t = Trainer::Create(Config(AllreduceMode::kOverlap), mpi->get(), LocalStorage());
  ASSERT_TRUE((*t)->InitializeWeights().ok());
  if ((*mpi)->rank() == 1) (*t)->model().params().params()[17] += 1e-3f;
  Status s = (*t)->CheckRanksAgree();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("parameters diverged across ranks at step 0"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("rank 1 checksum"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::trainer

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int result = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
