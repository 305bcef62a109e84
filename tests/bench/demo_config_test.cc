// The demo's scale rules (issue 18), checked from its configuration (`--preset demo`, which
// ./tools/demo.sh runs), never by timing:
//  - the staged store, the GeoTIFF store, holds at least 1 GB: the demo's own ingest command of one
//    copy of the real scene (examples/data/geotiff/RGB.byte.tif) is run here on that one copy, and
//    its bytes times the configured copies (each copy is the same file, so gives the same tiles)
//    must reach 1 GB (1e9 bytes);
//  - staging + training + evaluation are at least 80% of time to train: with F the fixed costs
//    of a run ("other": mpirun start-up twice, model set-up, checkpoints) and W the time of the
//    work, W / (W + F) >= 0.8 exactly when W >= 4 F. A lower bound on W that needs no timing is
//    the configured work in FLOPs (the model's own count: 3x forward per training sample, 1x per
//    evaluated sample, every epoch) at a rate no run reaches: kMaxFlopsPerCore per core the run
//    uses (np x threads). The trainer's matrix products never run faster than its sgemm kernel,
//    which bench e2e's limits probe measured at 88-129 GFLOP/s on both cores of this machine
//    (44-65 per core), and the trainer as a whole reached 37 GFLOP/s in the demo's run; 100 per
//    core is above both. Staging time, also part of W, is left out (so the bound is lower still).
//    F is taken from the run that issue 18 reports on this machine: 1.11 s of "other" (74.5% of
//    1.49 s) with the small preset's mpirun -np 2 and model set-up, which the demo repeats (its own
//    run measured 1.16 s); the rule asks for 4 F with a margin (kFixedCostsMargin) for the bigger
//    model's set-up and checkpoints and for slower starts on a loaded machine.
#include <gtest/gtest.h>

#include <filesystem>

#include "bench/e2e/e2e_config.h"
#include "bench/e2e/phases.h"
#include "bench/e2e/step_runner.h"
#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

namespace fs = std::filesystem;
using ::tilestage::testing::TempDir;

constexpr double kMaxFlopsPerCore = 100e9;  // single precision; see above
constexpr double kFixedCostsS = 1.11;       // "other" of the small run (issue 18)
constexpr double kFixedCostsMargin = 1.5;

struct OneCopy {
  double store_bytes = 0;  // shard and manifest bytes of the store of one copy
  double tiles = 0;
  std::vector<int64_t> x_shape;  // C, H, W
};

// The demo's GeoTIFF ingest command, run on one copy of the scene.
OneCopy IngestOneCopy(const E2eConfig& config, const TempDir& dir) {
  E2eRunContext ctx{config, dir.path(), TILESTAGE_SOURCE_DIR, TILESTAGE_CLI, Progress("test")};
  fs::create_directories(dir.Sub("steps"));
  std::vector<std::string> argv = IngestArgv(ctx, 0);
  argv.push_back(IngestSources(ctx)[0]);
  auto step = RunStep("ingest_geotiff", argv, dir.Sub("steps"));
  EXPECT_TRUE(step.ok()) << step.status().ToString();
  OneCopy one;
  if (!step.ok()) return one;
  auto j = ParseStepJson("ingest_geotiff", step->out);
  EXPECT_TRUE(j.ok()) << step->out;
  one.tiles = j.ok() ? j->value("tiles_written", 0.0) : 0.0;
  for (const auto& e : fs::recursive_directory_iterator(dir.Sub("stores/geotiff"))) {
    if (e.is_regular_file()) one.store_bytes += double(e.file_size());
  }
  const int64_t bands = 3;  // RGB.byte.tif
  one.x_shape = {bands, config.geotiff_tile, config.geotiff_tile};
  return one;
}

TEST(DemoConfig, GeotiffStoreIsAtLeastOneGigabyte) {
  const E2eConfig c = *PresetE2eConfig("demo");
  TempDir dir;
  const OneCopy one = IngestOneCopy(c, dir);
  ASSERT_GT(one.tiles, 0);
  const double store = one.store_bytes * double(c.GeotiffCopies());
  EXPECT_GE(store, 1e9) << one.store_bytes << " bytes per copy x " << c.GeotiffCopies();
  // Several files of each modality.
  EXPECT_GE(c.GeotiffCopies(), 2);
  EXPECT_GE(c.copies, 2);
  // The size follows from the inputs only without compression.
  EXPECT_EQ(c.codec, "none");
}

TEST(DemoConfig, TrainingWorkIsLargeAgainstFixedCosts) {
  const E2eConfig c = *PresetE2eConfig("demo");
  TempDir dir;
  const OneCopy one = IngestOneCopy(c, dir);
  ASSERT_GT(one.tiles, 0);
  auto forward_flops = ForwardFlopsPerSample(c, one.x_shape);
  ASSERT_TRUE(forward_flops.ok()) << forward_flops.status().ToString();
  const double forward = *forward_flops;
  const double samples = one.tiles * double(c.GeotiffCopies());
  const double flops = double(c.epochs) * samples * forward *
                       (3.0 * (1.0 - c.eval_fraction) + 1.0 * c.eval_fraction);
  const double min_work_s = flops / (kMaxFlopsPerCore * double(c.np * c.threads));
  EXPECT_GE(min_work_s, 4.0 * kFixedCostsS * kFixedCostsMargin)
      << flops / 1e9 << " GFLOP, " << forward / 1e6 << " MFLOP forward per sample";
}

TEST(DemoConfig, ThePresetsTheTestsUseStaySmall) {
  for (const char* name : {"tiny", "small"}) {
    const E2eConfig c = *PresetE2eConfig(name);
    EXPECT_EQ(c.GeotiffCopies(), 1) << name;
    EXPECT_EQ(c.codec, "zstd") << name;
  }
}

}  // namespace
}  // namespace tilestage::bench
