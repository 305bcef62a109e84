#include "bench/e2e/model.h"

#include <gtest/gtest.h>

namespace tilestage::bench {
namespace {

// 1 TB of 1 MB samples; the stager reads 2 GB/s and writes 3 GB/s per node; the FS gives a node
// 5 GB/s and everyone together 100 GB/s, so the FS saturates beyond 50 nodes.
ModelParams Base() {
  ModelParams p;
  p.dataset_bytes = 1e12;
  p.samples = 1e6;
  p.epochs = 10;
  p.mode = StagingMode::kPartition;
  p.staging_read_bytes_per_s = 2e9;
  p.staging_write_bytes_per_s = 3e9;
  p.loader_samples_per_s = 5000;
  p.train_samples_per_s = 1000;
  p.fs_aggregate_bytes_per_s = 100e9;
  p.fs_node_bytes_per_s = 5e9;
  p.local_write_bytes_per_s = 4e9;
  p.local_read_bytes_per_s = 8e9;
  p.interconnect_bytes_per_s = 10e9;
  return p;
}

TEST(ScalingModel, PartitionOneNodeIsStagerReadBound) {
  ModelPoint m = PredictAt(Base(), 1);
  EXPECT_DOUBLE_EQ(m.staging_fs_read_s, 500.0);       // 1e12 B / 2e9 B/s
  EXPECT_NEAR(m.staging_local_write_s, 1e12 / 3e9, 1e-9);
  EXPECT_DOUBLE_EQ(m.staging_s, 500.0);
  EXPECT_EQ(m.staging_bound, "stager_read");
  EXPECT_DOUBLE_EQ(m.epoch_s, 1000.0);                // 1e6 samples / 1000 samples/s
  EXPECT_EQ(m.epoch_bound, "train");
  EXPECT_DOUBLE_EQ(m.time_to_train_s, 10500.0);
  EXPECT_NEAR(m.staging_per_run, 500.0 / 10500.0, 1e-12);
  EXPECT_DOUBLE_EQ(m.staging_per_epoch, 0.5);
  EXPECT_FALSE(m.breakeven_epochs);  // in place is just as fast on one node: staging never pays
}

TEST(ScalingModel, PartitionScalesLinearlyBelowFsSaturation) {
  ModelPoint m = PredictAt(Base(), 10);
  EXPECT_DOUBLE_EQ(m.staging_fs_bytes_per_s, 20e9);
  EXPECT_DOUBLE_EQ(m.staging_s, 50.0);
  EXPECT_DOUBLE_EQ(m.bytes_per_node, 1e11);
  EXPECT_DOUBLE_EQ(m.epoch_s, 100.0);
}

TEST(ScalingModel, StagingTimeFlatOnceFsAggregateSaturates) {
  for (int n : {100, 200, 400, 1000}) {
    ModelPoint m = PredictAt(Base(), n);
    EXPECT_DOUBLE_EQ(m.staging_fs_bytes_per_s, 100e9) << n;
    EXPECT_DOUBLE_EQ(m.staging_s, 10.0) << n;  // 1e12 B / 100e9 B/s, whatever N
    EXPECT_EQ(m.staging_bound, "fs_aggregate") << n;
  }
  // The epoch keeps shrinking, so staging's share of the run grows with N.
  ModelPoint m = PredictAt(Base(), 200);
  EXPECT_DOUBLE_EQ(m.epoch_s, 5.0);
  EXPECT_DOUBLE_EQ(m.time_to_train_s, 60.0);
  EXPECT_DOUBLE_EQ(m.staging_per_epoch, 2.0);
  // In place, 200 nodes share 100 GB/s: 500 samples/s each, 10 s an epoch; staging pays off after
  // 10 / (10 - 5) = 2 epochs.
  EXPECT_DOUBLE_EQ(m.inplace_epoch_s, 10.0);
  ASSERT_TRUE(m.breakeven_epochs);
  EXPECT_DOUBLE_EQ(*m.breakeven_epochs, 2.0);
  EXPECT_GT(PredictAt(Base(), 1000).staging_per_run, PredictAt(Base(), 100).staging_per_run);
}

TEST(ScalingModel, FsClientLimitBindsWhenBelowStagerRate) {
  ModelParams p = Base();
  p.fs_node_bytes_per_s = 1e9;
  ModelPoint m = PredictAt(p, 4);
  EXPECT_EQ(m.staging_bound, "fs_node");
  EXPECT_DOUBLE_EQ(m.staging_s, 250.0);  // 1e12 / (4 × 1e9)
}

TEST(ScalingModel, ReplicateReadsOnceAndPaysTheAllgather) {
  ModelParams p = Base();
  p.mode = StagingMode::kReplicate;
  p.interconnect_bytes_per_s = 1e9;
  ModelPoint m = PredictAt(p, 10);
  EXPECT_DOUBLE_EQ(m.staging_fs_read_s, 50.0);          // each byte read once, at 20 GB/s
  EXPECT_DOUBLE_EQ(m.staging_exchange_s, 900.0);        // 1e12 × 9/10 / 1e9
  EXPECT_NEAR(m.staging_local_write_s, 1e12 / 3e9, 1e-9);  // every node writes everything
  EXPECT_DOUBLE_EQ(m.staging_s, 900.0);
  EXPECT_EQ(m.staging_bound, "interconnect");
  EXPECT_DOUBLE_EQ(m.bytes_per_node, 1e12);
  // With a fast network the local write of the full copy is the limit.
  p.interconnect_bytes_per_s = 10e9;
  m = PredictAt(p, 10);
  EXPECT_DOUBLE_EQ(m.staging_exchange_s, 90.0);
  EXPECT_NEAR(m.staging_s, 1e12 / 3e9, 1e-9);
  EXPECT_EQ(m.staging_bound, "stager_write");
  // One node: nothing to exchange.
  EXPECT_DOUBLE_EQ(PredictAt(p, 1).staging_exchange_s, 0.0);
}

TEST(ScalingModel, ReplicateFromFsMultipliesFsTrafficByN) {
  ModelParams p = Base();
  p.mode = StagingMode::kReplicateFromFs;
  ModelPoint m = PredictAt(p, 100);
  EXPECT_DOUBLE_EQ(m.staging_fs_read_s, 1000.0);  // 100 × 1e12 B / 100e9 B/s
  EXPECT_EQ(m.staging_bound, "fs_aggregate");
  p.mode = StagingMode::kReplicate;
  EXPECT_LT(PredictAt(p, 100).staging_s, m.staging_s);
  p.mode = StagingMode::kPartition;
  EXPECT_DOUBLE_EQ(PredictAt(p, 100).staging_s, 10.0);  // 1e12 B once, at 100 GB/s
}

TEST(ScalingModel, NoStagingReadsInPlaceEveryEpoch) {
  ModelParams p = Base();
  p.mode = StagingMode::kNone;
  ModelPoint m = PredictAt(p, 200);
  EXPECT_DOUBLE_EQ(m.staging_s, 0.0);
  EXPECT_EQ(m.staging_bound, "none");
  EXPECT_DOUBLE_EQ(m.epoch_s, 10.0);
  EXPECT_EQ(m.epoch_bound, "fs_aggregate");
  EXPECT_DOUBLE_EQ(m.time_to_train_s, 100.0);
}

TEST(ScalingModel, LocalReadAndLoaderCanBindTheEpoch) {
  ModelParams p = Base();
  p.local_read_bytes_per_s = 0.5e9;  // 500 samples/s of 1 MB
  EXPECT_EQ(PredictAt(p, 10).epoch_bound, "local_read");
  EXPECT_DOUBLE_EQ(PredictAt(p, 10).epoch_s, 200.0);
  p = Base();
  p.loader_samples_per_s = 250;
  EXPECT_EQ(PredictAt(p, 10).epoch_bound, "loader");
  EXPECT_DOUBLE_EQ(PredictAt(p, 10).epoch_s, 400.0);
}

TEST(ScalingModel, OverheadAndRingAllreduceAdd) {
  ModelParams p = Base();
  p.staging_overhead_s = 5;
  p.gradient_bytes = 1e8;
  p.batch_per_node = 100;
  ModelPoint m = PredictAt(p, 10);
  EXPECT_DOUBLE_EQ(m.staging_s, 55.0);
  // 1e5 samples per node / 100 per step = 1000 steps × 2 × 9/10 × 1e8 B / 1e10 B/s = 18 s.
  EXPECT_NEAR(m.allreduce_s_per_epoch, 18.0, 1e-9);
  EXPECT_NEAR(m.epoch_s, 118.0, 1e-9);
}

TEST(ScalingModel, IngestTimeUsesNodesUpToTheFsAggregate) {
  ModelParams p = Base();
  p.ingest_bytes_per_s = 0.5e9;
  EXPECT_DOUBLE_EQ(*PredictAt(p, 10).ingest_s, 200.0);   // 1e12 / 5e9
  EXPECT_DOUBLE_EQ(*PredictAt(p, 1000).ingest_s, 10.0);  // capped at 100e9
}

TEST(ScalingModel, ValidateNamesTheMissingInput) {
  ModelParams p = Base();
  p.fs_node_bytes_per_s = 0;
  Status s = p.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("fs_node_bytes_per_s"), std::string::npos);
  p = Base();
  p.mode = StagingMode::kReplicate;
  p.interconnect_bytes_per_s = 0;
  EXPECT_NE(p.Validate().message().find("interconnect_bytes_per_s"), std::string::npos);
  EXPECT_FALSE(Predict(Base(), {0}).ok());
}

TEST(ScalingModel, ConfigJsonRoundTripsAndRejectsUnknownKeys) {
  ModelParams p = Base();
  p.mode = StagingMode::kReplicate;
  auto back = ModelParams::FromJson(p.ToJson(), "cfg.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->mode, StagingMode::kReplicate);
  EXPECT_DOUBLE_EQ(back->fs_aggregate_bytes_per_s, 100e9);
  EXPECT_EQ(PredictAt(*back, 64).staging_s, PredictAt(p, 64).staging_s);
  Json bad = p.ToJson();
  bad["fs_agregate_bytes_per_s"] = 1;
  auto r = ModelParams::FromJson(bad, "cfg.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cfg.json: unknown model input \"fs_agregate_bytes_per_s\""),
            std::string::npos);
  bad = p.ToJson();
  bad["mode"] = "scatter";
  EXPECT_FALSE(ModelParams::FromJson(bad, "cfg.json").ok());
}

TEST(ScalingModel, ParseBytesAndNodeLists) {
  EXPECT_DOUBLE_EQ(*ParseBytes("1.5GB"), 1.5e9);
  EXPECT_DOUBLE_EQ(*ParseBytes("2GiB/s"), 2.0 * 1024 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(*ParseBytes("8.8TB"), 8.8e12);
  EXPECT_DOUBLE_EQ(*ParseBytes("1e9"), 1e9);
  EXPECT_FALSE(ParseBytes("fast").ok());
  EXPECT_FALSE(ParseBytes("5XB").ok());
  EXPECT_EQ(*ParseNodeList("1..1024"),
            (std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}));
  EXPECT_EQ(*ParseNodeList("3..20"), (std::vector<int>{3, 6, 12, 20}));
  EXPECT_EQ(*ParseNodeList("16,128"), (std::vector<int>{16, 128}));
  EXPECT_FALSE(ParseNodeList("0,4").ok());
  EXPECT_FALSE(ParseNodeList("8..4").ok());
  EXPECT_FALSE(ParseNodeList("4,x").ok());
}

TEST(ModelValidation, SystemFamilyDropsTheNodeCount) {
  EXPECT_EQ(SystemFamily("dgxa100_n16_ngc21.09_mxnet"), "dgxa100_ngc21.09_mxnet");
  EXPECT_EQ(SystemFamily("dgxa100_n128_ngc21.09_mxnet"), "dgxa100_ngc21.09_mxnet");
  EXPECT_EQ(SystemFamily("perlmutter_256x4_ngc21.09_mxnet"), "perlmutter_ngc21.09_mxnet");
  EXPECT_EQ(SystemFamily("fugaku_512xA64FX_tensorflow_closed"), "fugaku_A64FX_tensorflow_closed");
  EXPECT_EQ(SystemFamily("juwelsbooster_gpu_n1024_mxnet1.9"), "juwelsbooster_gpu_mxnet1.9");
  EXPECT_EQ(SystemFamily("18xR750-2xA100-PCIe-80GB"), "R750-2xA100-PCIe-80GB");
  EXPECT_EQ(SystemFamily("longhorn-tf"), "longhorn-tf");
}

GroupSummary Group(const std::string& system, int64_t nodes, double staging_s,
                   const std::string& scale = "strong") {
  GroupSummary g;
  g.group = system;
  g.submitter = "Org";
  g.system = system;
  g.scale = scale;
  g.benchmark = "cosmoflow";
  g.round = "v1.0";
  g.nodes_min = g.nodes_max = nodes;
  g.staging_s = Spread{staging_s, staging_s, staging_s, 1};
  return g;
}

TEST(ModelValidation, SeriesAreSystemsAtTwoOrMoreNodeCounts) {
  StagingAnalysis a;
  a.groups = {Group("sys_n16_x", 16, 300), Group("sys_n64_x", 64, 100),
              Group("other_n8", 8, 50),  // one node count only
              Group("sys_n32_x", 32, 70, "weak")};
  a.groups.push_back(Group("sys_n128_x", 128, 10));
  a.groups.back().staging_s.reset();  // no staging figure: not a point
  a.groups.push_back(Group("sys_n256_x", 256, 10));
  a.groups.back().compare = true;     // a tilestage run: not published
  const auto series = FindScalingSeries(a);
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].system, "Org/sys_x");
  ASSERT_EQ(series[0].points.size(), 2u);
  EXPECT_EQ(series[0].points[0].nodes, 16);
  EXPECT_DOUBLE_EQ(series[0].points[1].staging_s, 100);
}

// The validation's arithmetic on known inputs: 10 TB staged, 25 GB/s per node.
// fs calibration at (N1, T1): B = D / T1, per-node limit max(25 GB/s, D / (N1 T1));
// prediction D / min(N2 × limit, B).
TEST(ModelValidation, FileSystemCalibrationPredictsKnownTimes) {
  ScalingSeries s{"Org/sys", "cosmoflow", "strong", "v1.0",
                  {{"a", 2, 1, 100.0}, {"b", 8, 1, 100.0}, {"c", 32, 1, 30.0}}};
  ValidationOptions options;
  options.dataset_bytes = {{"cosmoflow", 10e12}};
  const Validation v = ValidateStagingModel({s}, options);
  ASSERT_EQ(v.rows.size(), 6u);
  auto row = [&](int64_t from, int64_t to) {
    for (const ValidationRow& r : v.rows)
      if (r.calibration_nodes == from && r.nodes == to) return r;
    ADD_FAILURE() << from << "->" << to;
    return ValidationRow{};
  };
  // From 2 nodes: faster than 2 links allow, so 50 GB/s per node; B = 100 GB/s.
  EXPECT_DOUBLE_EQ(row(2, 8).predicted_s, 100.0);
  EXPECT_DOUBLE_EQ(row(2, 8).ratio, 1.0);
  EXPECT_EQ(row(2, 8).bound, "fs_aggregate");
  EXPECT_NEAR(row(2, 32).ratio, 100.0 / 30.0, 1e-12);
  EXPECT_FALSE(row(2, 32).within_2x);
  // From 8 nodes: B = 100 GB/s; at 2 nodes the links (2 × 25 GB/s) bind: 200 s.
  EXPECT_DOUBLE_EQ(row(8, 2).predicted_s, 200.0);
  EXPECT_DOUBLE_EQ(row(8, 2).ratio, 2.0);
  EXPECT_TRUE(row(8, 2).within_2x);  // 2x counts as within
  // From 32 nodes: B = 333 GB/s; 8 nodes get 200 GB/s: 50 s, half the published 100 s.
  EXPECT_DOUBLE_EQ(row(32, 8).predicted_s, 50.0);
  EXPECT_TRUE(row(32, 8).within_2x);
  EXPECT_DOUBLE_EQ(row(32, 2).predicted_s, 200.0);
  EXPECT_EQ(v.within_2x, 4);
  EXPECT_NEAR(v.Fraction(), 4.0 / 6.0, 1e-12);
  const std::string table = FormatValidation(v);
  EXPECT_NE(table.find("4 of 6 predictions (67%); goal 80%: not met"), std::string::npos)
      << table;
  EXPECT_EQ(ValidationToJson(v)["predictions"], 6);
}

TEST(ModelValidation, NodeCalibrationScalesInverselyWithNodes) {
  ScalingSeries s{"Org/sys", "cosmoflow", "strong", "", {{"a", 16, 1, 320.0}, {"b", 128, 1, 80.0}}};
  ValidationOptions options;
  options.calibration = Calibration::kNode;
  const Validation v = ValidateStagingModel({s}, options);
  ASSERT_EQ(v.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(v.rows[0].predicted_s, 40.0);   // 320 × 16 / 128
  EXPECT_DOUBLE_EQ(v.rows[0].ratio, 0.5);
  EXPECT_DOUBLE_EQ(v.rows[1].predicted_s, 640.0);  // 80 × 128 / 16
  EXPECT_DOUBLE_EQ(v.rows[1].ratio, 2.0);
  EXPECT_EQ(v.within_2x, 2);
  EXPECT_EQ(v.rows[0].bound, "stager_read");
}

// Weak scaling: M instances each stage the dataset; with the file system the bound, staging time
// grows with the instances.
TEST(ModelValidation, WeakScalingStagesOneDatasetPerInstance) {
  ScalingSeries s{"Org/sys", "deepcam", "weak", "", {{"a", 16, 4, 40.0}, {"b", 64, 16, 100.0}}};
  ValidationOptions options;
  options.dataset_bytes = {{"deepcam", 1e12}};
  const Validation v = ValidateStagingModel({s}, options);
  ASSERT_EQ(v.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(v.rows[0].predicted_s, 160.0);  // 16 TB / (4 TB / 40 s)
  EXPECT_DOUBLE_EQ(v.rows[0].ratio, 1.6);
  EXPECT_DOUBLE_EQ(v.rows[1].predicted_s, 25.0);   // 4 TB / (16 TB / 100 s)
}

TEST(ModelValidation, BenchmarkWithoutDatasetSizeIsSkippedWithAReason) {
  ScalingSeries s{"Org/sys", "openfold", "strong", "", {{"a", 8, 1, 10.0}, {"b", 16, 1, 9.0}}};
  const Validation v = ValidateStagingModel({s}, ValidationOptions{});
  EXPECT_TRUE(v.rows.empty());
  ASSERT_EQ(v.skipped.size(), 1u);
  EXPECT_NE(v.skipped[0].find("--dataset-size openfold=BYTES"), std::string::npos);
  EXPECT_NE(FormatValidation(v).find("nothing to check"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::bench
