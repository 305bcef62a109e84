// The stager in one process (a single-process communicator: one node): copies verified against the source bytes
// and VerifyStore, resume, and the faults the issue names. Multi-node paths: mpi_test.cc.
#include "loaders/stager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include "loaders/stage_plan.h"
#include "tests/common/test_util.h"
#include "tests/loaders/synth_store.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using testing::TempDir;

// One process is one node.
Result<StageReport> Stage(const StageOptions& options) {
  return StageStore(*NewSingleProcessCommunicator(), options);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  if (!std::filesystem::exists(dir)) return names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Replication of `from` into `to`, everything else at its default.
StageOptions Replicate(const std::string& from, const std::string& to) {
  StageOptions o;
  o.from = from;
  o.to = to;
  o.mode = StageMode::kReplicate;
  return o;
}

struct StageFixture {
  TempDir tmp;
  std::string src = tmp.Sub("src");
  std::string dst = tmp.Sub("dst");
  Manifest manifest;
  StageFixture() {
    testing::SynthStoreSpec spec;
    spec.samples = 96;
    spec.shard_target_bytes = 48 << 10;  // several shards of ~12 records
    manifest = testing::WriteSynthStore(LocalStorage(), src, spec);
  }
  StageOptions Options() const {
    StageOptions o = Replicate(src, dst);
    o.chunk_bytes = 16 << 10;  // several rounds per shard
    return o;
  }
};

// ------------------------------------------------------------------ plan (pure)

TEST(StagePlan, BalanceShardsIsDisjointCompleteAndBalanced) {
  const std::vector<uint64_t> bytes = {90, 10, 40, 40, 30, 70, 5, 60, 20, 35, 15};
  for (int members = 1; members <= 8; ++members) {
    const auto split = BalanceShards(bytes, members);
    ASSERT_EQ(split.size(), static_cast<size_t>(members));
    std::vector<size_t> all;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const auto& list : split) {
      EXPECT_TRUE(std::is_sorted(list.begin(), list.end()));
      all.insert(all.end(), list.begin(), list.end());
      uint64_t load = 0;
      for (size_t s : list) load += bytes[s];
      lo = std::min(lo, load);
      hi = std::max(hi, load);
    }
    std::sort(all.begin(), all.end());
    std::vector<size_t> expected(bytes.size());
    std::iota(expected.begin(), expected.end(), size_t{0});
    EXPECT_EQ(all, expected) << members << " members";
    // Greedy largest-first keeps the spread within the largest shard.
    EXPECT_LE(hi - lo, 90u) << members << " members";
  }
}

TEST(StagePlan, GroupMustDivideNodes) {
  EXPECT_EQ(MakeStagePlan({1, 2}, 4, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeStagePlan({1, 2}, 4, 0).status().code(), StatusCode::kInvalidArgument);
  auto plan = MakeStagePlan({5, 5, 5, 5}, 4, 2);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->replicas(), 2);
  EXPECT_EQ(plan->shards_of_node(0), plan->shards_of_node(2));
  EXPECT_EQ(plan->shards_of_node(1), plan->shards_of_node(3));
  std::vector<size_t> both = plan->shards_of_node(0);
  both.insert(both.end(), plan->shards_of_node(1).begin(), plan->shards_of_node(1).end());
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(StagePlan, ScheduleReadsCoversEveryByteOnceInChunks) {
  const std::vector<uint64_t> bytes = {100, 0, 35, 64};
  const auto schedule = ScheduleReads({0, 1, 2, 3}, bytes, 3, 32);
  std::map<size_t, uint64_t> covered;
  for (const auto& list : schedule)
    for (const auto& c : list) {
      EXPECT_LE(c.bytes, 32u);
      EXPECT_EQ(c.offset, covered[c.shard]);  // in order, no gaps
      covered[c.shard] += c.bytes;
    }
  for (size_t s = 0; s < bytes.size(); ++s) EXPECT_EQ(covered[s], bytes[s]);
  EXPECT_EQ(schedule[0].front().shard, 0u);
  EXPECT_EQ(schedule[1].front().shard, 1u);  // the empty shard still gets its one chunk
}

// ------------------------------------------------------------------ staging, one node

TEST(Stage, ReplicateCopiesEveryShardByteForByteAndTheCopyVerifies) {
  StageFixture f;
  auto report = Stage(f.Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->node_reports.size(), 1u);
  const NodeStageReport& n = report->node_reports[0];
  EXPECT_EQ(n.shards_held, f.manifest.shards.size());
  EXPECT_EQ(n.shards_written, f.manifest.shards.size());
  EXPECT_EQ(n.bytes_written, f.manifest.TotalBytes());
  EXPECT_EQ(n.bytes_read_from_source, f.manifest.TotalBytes());
  for (const auto& s : f.manifest.shards)
    EXPECT_EQ(Slurp(JoinPath(f.dst, s.file)), Slurp(JoinPath(f.src, s.file))) << s.file;
  VerifyReport verify;
  EXPECT_TRUE(VerifyStore(*LocalStorage(), f.dst, &verify).ok());
  EXPECT_EQ(verify.records_checked, 96u);
  auto staged = ReadManifest(*LocalStorage(), f.dst);
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(staged->attrs["staging"]["mode"], "replicate");
  // The copy has its source's identity (what a checkpoint compares).
  EXPECT_EQ(StoreFingerprint(*staged), StoreFingerprint(f.manifest));
  EXPECT_EQ(staged->fields[0].stats.size(), 3u);  // normalization statistics travel along
}

// Without sync (scratch space) the manifest is published by rename without fsync: the bytes a
// synced run writes, and no temporary file left beside it.
TEST(Stage, NoSyncStagedStoreHasTheSameManifestAsASyncedOne) {
  StageFixture f;
  const std::string unsynced = f.dst + "-nosync";
  StageOptions o = Replicate(f.src, unsynced);
  o.sync = false;
  ASSERT_TRUE(Stage(o).ok());
  ASSERT_TRUE(Stage(f.Options()).ok());
  auto expected = ReadManifest(*LocalStorage(), f.dst);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  expected->attrs["staging"]["to"] = unsynced;  // the one field that names the destination
  EXPECT_EQ(Slurp(JoinPath(unsynced, "manifest.json")), ManifestText(*expected));
  for (const auto& name : Names(unsynced)) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
  VerifyReport verify;
  EXPECT_TRUE(VerifyStore(*LocalStorage(), unsynced, &verify).ok());
  EXPECT_EQ(verify.records_checked, 96u);
}

TEST(Stage, SecondRunSkipsShardsAlreadyStagedAndIntact) {
  StageFixture f;
  ASSERT_TRUE(Stage(f.Options()).ok());
  // Damage one staged shard: only it is staged again.
  const std::string damaged = JoinPath(f.dst, f.manifest.shards[1].file);
  testing::FlipByte(damaged, 5000);
  auto again = Stage(f.Options());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->node_reports[0].shards_skipped, f.manifest.shards.size() - 1);
  EXPECT_EQ(again->node_reports[0].shards_written, 1u);
  EXPECT_EQ(Slurp(damaged), Slurp(JoinPath(f.src, f.manifest.shards[1].file)));
  VerifyReport verify;
  EXPECT_TRUE(VerifyStore(*LocalStorage(), f.dst, &verify).ok());
}

TEST(Stage, CorruptSourceShardIsNamedAndNoCopyIsLeft) {
  StageFixture f;
  const std::string bad = JoinPath(f.src, f.manifest.shards[2].file);
  testing::FlipByte(bad, 4200);  // inside the first record: the shard hash no longer matches
  auto report = Stage(f.Options());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find(bad), std::string::npos)
      << report.status().ToString();
  const auto names = Names(f.dst);
  EXPECT_EQ(std::count(names.begin(), names.end(), f.manifest.shards[2].file), 0);
  for (const auto& name : names) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
  // The destination is not a complete store.
  EXPECT_EQ(std::count(names.begin(), names.end(), "manifest.json"), 0);
}

// The local copy publishes its shards together after the last copy ends (one syncfs for all of
// them with sync): the shards copied before another failed its check are still published, so a
// rerun after the source is repaired copies only that one.
TEST(Stage, CorruptShardOfALocalCopyLeavesTheShardsCopiedBeforeItPublishedForTheRerun) {
  for (bool sync : {true, false}) {
    StageFixture f;
    ASSERT_GE(f.manifest.shards.size(), 3u);
    // One thread copies largest first; the smallest shard (the last of equals) comes last.
    size_t last = 0;
    for (size_t s = 0; s < f.manifest.shards.size(); ++s)
      if (f.manifest.shards[s].bytes <= f.manifest.shards[last].bytes) last = s;
    const std::string bad = JoinPath(f.src, f.manifest.shards[last].file);
    testing::FlipByte(bad, 4200);
    StageOptions o = f.Options();
    o.sync = sync;
    o.threads = 1;
    auto report = Stage(o);
    ASSERT_FALSE(report.ok()) << sync;
    EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(report.status().message().find(bad), std::string::npos) << report.status().ToString();
    const auto names = Names(f.dst);
    for (size_t s = 0; s < f.manifest.shards.size(); ++s) {
      const std::string& file = f.manifest.shards[s].file;
      if (s == last) {
        EXPECT_EQ(std::count(names.begin(), names.end(), file), 0) << file;
      } else {
        EXPECT_EQ(Slurp(JoinPath(f.dst, file)), Slurp(JoinPath(f.src, file))) << file;
      }
    }
    for (const auto& name : names) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
    EXPECT_EQ(std::count(names.begin(), names.end(), "manifest.json"), 0);

    testing::FlipByte(bad, 4200);  // repaired
    auto rerun = Stage(o);
    ASSERT_TRUE(rerun.ok()) << rerun.status().ToString();
    EXPECT_EQ(rerun->node_reports[0].shards_skipped, f.manifest.shards.size() - 1);
    EXPECT_EQ(rerun->node_reports[0].shards_written, 1u);
    VerifyReport verify;
    EXPECT_TRUE(VerifyStore(*LocalStorage(), f.dst, &verify).ok());
  }
}

// Shards larger than the local copy's 2 MiB piece: every piece is copied and hashed, in order.
struct LargeShardFixture {
  TempDir tmp;
  std::string src = tmp.Sub("src");
  std::string dst = tmp.Sub("dst");
  Manifest manifest;
  LargeShardFixture() {
    testing::SynthStoreSpec spec;
    spec.samples = 40;
    spec.shape = {3, 128, 128};  // 192 KiB per record
    spec.shard_target_bytes = 3 << 20;  // shards of ~3 MiB: several pieces and a partial one
    manifest = testing::WriteSynthStore(LocalStorage(), src, spec);
  }
  StageOptions Options(bool sync) const {
    StageOptions o = Replicate(src, dst);
    o.sync = sync;
    return o;
  }
};

TEST(Stage, ShardsLargerThanOneCopyPieceAreCopiedByteForByte) {
  LargeShardFixture f;
  ASSERT_GE(f.manifest.shards.size(), 2u);
  ASSERT_GT(f.manifest.shards[0].bytes, 2u << 20);
  for (bool sync : {false, true}) {
    std::filesystem::remove_all(f.dst);
    auto report = Stage(f.Options(sync));
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->node_reports[0].bytes_written, f.manifest.TotalBytes());
    for (const auto& s : f.manifest.shards)
      EXPECT_EQ(Slurp(JoinPath(f.dst, s.file)), Slurp(JoinPath(f.src, s.file))) << s.file;
    VerifyReport verify;
    EXPECT_TRUE(VerifyStore(*LocalStorage(), f.dst, &verify).ok());
    EXPECT_EQ(verify.records_checked, 40u);
  }
}

TEST(Stage, CorruptByteInALaterPieceOfALargeShardIsCaught) {
  LargeShardFixture f;
  const std::string bad = JoinPath(f.src, f.manifest.shards[0].file);
  testing::FlipByte(bad, (2 << 20) + 12345);  // in the second 2 MiB piece
  auto report = Stage(f.Options(true));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find(bad), std::string::npos)
      << report.status().ToString();
  for (const auto& name : Names(f.dst)) {
    EXPECT_NE(name, f.manifest.shards[0].file);
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
    EXPECT_NE(name, "manifest.json");
  }
}

// One shard and more threads than shards: the copy and the check of its hash must not depend on
// how many threads are idle beside the copier.
TEST(Stage, OneShardWithMoreThreadsThanShardsIsByteForByteAndACorruptByteIsCaught) {
  TempDir tmp;
  const std::string src = tmp.Sub("src");
  testing::SynthStoreSpec spec;
  spec.samples = 40;
  spec.shape = {3, 128, 128};  // 192 KiB per record: one shard of 7.5 MiB, eight pieces
  spec.shard_target_bytes = 64 << 20;
  const Manifest manifest = testing::WriteSynthStore(LocalStorage(), src, spec);
  ASSERT_EQ(manifest.shards.size(), 1u);
  const std::string shard = manifest.shards[0].file;
  auto options = [&](const std::string& dst, int threads) {
    StageOptions o = Replicate(src, dst);
    o.threads = threads;
    return o;
  };
  for (int threads : {1, 4}) {
    const std::string dst = tmp.Sub("dst" + std::to_string(threads));
    auto report = Stage(options(dst, threads));
    ASSERT_TRUE(report.ok()) << threads << " threads: " << report.status().ToString();
    EXPECT_EQ(Slurp(JoinPath(dst, shard)), Slurp(JoinPath(src, shard))) << threads;
  }
  testing::FlipByte(JoinPath(src, shard), manifest.shards[0].bytes - 1000);  // in the last piece
  for (int threads : {1, 4}) {
    const std::string dst = tmp.Sub("bad" + std::to_string(threads));
    auto report = Stage(options(dst, threads));
    ASSERT_FALSE(report.ok()) << threads << " threads";
    EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(report.status().message().find(JoinPath(src, shard)), std::string::npos)
        << report.status().ToString();
    for (const auto& name : Names(dst)) {
      EXPECT_NE(name, shard) << threads << " threads";
      EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
      EXPECT_NE(name, "manifest.json");
    }
  }
}

// The source ends inside the third piece: the copy stops there with an error naming the shard
// and where it ends, and neither the shard nor its temporary file is left.
TEST(Stage, SourceShardShorterThanTheManifestSaysIsDataLossNamingWhereItEnds) {
  LargeShardFixture f;
  const std::string bad = JoinPath(f.src, f.manifest.shards[0].file);
  const uint64_t cut = (2 << 20) + 4096 + 100;
  std::filesystem::resize_file(bad, cut);
  for (bool sync : {false, true}) {
    std::filesystem::remove_all(f.dst);
    auto report = Stage(f.Options(sync));
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), StatusCode::kDataLoss) << report.status().ToString();
    EXPECT_NE(report.status().message().find(bad), std::string::npos)
        << report.status().ToString();
    EXPECT_NE(report.status().message().find("truncated at " + std::to_string(cut) + " of " +
                                             std::to_string(f.manifest.shards[0].bytes)),
              std::string::npos)
        << report.status().ToString();
    for (const auto& name : Names(f.dst)) {
      EXPECT_NE(name, f.manifest.shards[0].file);
      EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
      EXPECT_NE(name, "manifest.json");
    }
  }
}

// The stager maps the source shard: a source cut short while it is copied must end the copy with
// an error naming it, not kill the process with SIGBUS. The cut lands once the temporary copy
// exists; should the whole copy have ended by then, the stage succeeds with the intact bytes.
TEST(Stage, SourceShardTruncatedWhileItIsCopiedIsDataLossNotACrash) {
  TempDir tmp;
  const std::string src = tmp.Sub("src"), dst = tmp.Sub("dst");
  testing::SynthStoreSpec spec;
  spec.samples = 256;
  spec.shape = {3, 128, 128};  // one shard of 48 MiB: 24 copy pieces
  spec.shard_target_bytes = 64 << 20;
  const Manifest manifest = testing::WriteSynthStore(LocalStorage(), src, spec);
  ASSERT_EQ(manifest.shards.size(), 1u);
  const std::string shard = JoinPath(src, manifest.shards[0].file);
  StageOptions options = Replicate(src, dst);
  options.sync = false;
  Result<StageReport> report = Internal("not run");
  std::thread stager([&] { report = Stage(options); });
  const auto copy_started = [&] {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dst, ec))
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) return true;
    return false;
  };
  while (!copy_started() && !std::filesystem::exists(JoinPath(dst, "manifest.json"))) {
  }
  std::filesystem::resize_file(shard, 1 << 20);
  stager.join();
  if (report.ok()) {
    GTEST_LOG_(INFO) << "the copy ended before the cut";
    return;
  }
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss) << report.status().ToString();
  EXPECT_NE(report.status().message().find(shard), std::string::npos) << report.status().ToString();
  EXPECT_NE(report.status().message().find("truncated"), std::string::npos)
      << report.status().ToString();
  for (const auto& name : Names(dst)) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
}

TEST(Stage, SourceShardLongerThanTheManifestSaysIsDataLoss) {
  StageFixture f;
  const std::string bad = JoinPath(f.src, f.manifest.shards[1].file);
  std::ofstream(bad, std::ios::app | std::ios::binary) << "trailing bytes";
  auto report = Stage(f.Options());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(report.status().message().find(bad), std::string::npos)
      << report.status().ToString();
  EXPECT_NE(report.status().message().find("the manifest says"), std::string::npos);
  for (const auto& name : Names(f.dst)) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
}

TEST(Stage, DestinationFullIsResourceExhaustedBeforeAnythingIsWritten) {
  StageFixture f;
  StageOptions o = f.Options();
  FaultOptions faults;
  faults.write_budget_bytes = f.manifest.TotalBytes() / 2;
  o.dest_storage = NewFaultInjectingStorage(LocalStorage(), faults);
  auto report = Stage(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(report.status().message().find(f.dst), std::string::npos);
  EXPECT_NE(report.status().message().find("bytes free but staging needs"), std::string::npos)
      << report.status().ToString();
  EXPECT_TRUE(Names(f.dst).empty());
}

TEST(Stage, DiskFullMidWriteIsResourceExhaustedAndLeavesNoPartialShard) {
  // A file system whose free-space answer is optimistic (thin provisioning, quotas): the write
  // itself fails; the error says so and the half-written shard does not survive.
  class LyingFreeSpace final : public Storage {
   public:
    explicit LyingFreeSpace(std::shared_ptr<Storage> base) : base_(std::move(base)) {}
    Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& p) override {
      return base_->OpenRead(p);
    }
    Result<std::unique_ptr<WritableFile>> CreateAtomic(const std::string& p) override {
      return base_->CreateAtomic(p);
    }
    Status CreateDirs(const std::string& d) override { return base_->CreateDirs(d); }
    Result<bool> Exists(const std::string& p) override { return base_->Exists(p); }
    Result<bool> IsDirectory(const std::string& p) override { return base_->IsDirectory(p); }
    Result<std::vector<std::string>> List(const std::string& d) override { return base_->List(d); }
    Status Remove(const std::string& p) override { return base_->Remove(p); }
    Result<uint64_t> FreeBytes(const std::string&) override { return uint64_t{1} << 40; }

   private:
    std::shared_ptr<Storage> base_;
  };
  StageFixture f;
  StageOptions o = f.Options();
  FaultOptions faults;
  faults.write_budget_bytes = f.manifest.shards[0].bytes + f.manifest.shards[1].bytes / 2;
  o.dest_storage =
      std::make_shared<LyingFreeSpace>(NewFaultInjectingStorage(LocalStorage(), faults));
  auto report = Stage(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kResourceExhausted) << report.status().ToString();
  for (const auto& name : Names(f.dst)) {
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
    EXPECT_NE(name, "manifest.json");
  }
}

TEST(Stage, InterruptedStageRunAgainGivesTheCorrectResult) {
  StageFixture f;
  ASSERT_GE(f.manifest.shards.size(), 5u);
  // Run 1 dies part-way: reads of the fourth shard fail, as a lost file server would.
  StageOptions o = f.Options();
  FaultOptions faults;
  faults.fail_reads_containing = f.manifest.shards[3].file;
  o.source_storage = NewFaultInjectingStorage(LocalStorage(), faults);
  auto first = Stage(o);
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find(f.manifest.shards[3].file), std::string::npos)
      << first.status().ToString();
  EXPECT_EQ(ReadManifest(*LocalStorage(), f.dst).status().code(), StatusCode::kNotFound);
  // A killed process would also leave a temporary file behind.
  std::ofstream(JoinPath(f.dst, f.manifest.shards[4].file + ".tmp-99999-0")) << "partial";

  auto second = Stage(f.Options());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->node_reports[0].shards_skipped, 3u);
  EXPECT_EQ(second->node_reports[0].shards_written, f.manifest.shards.size() - 3);
  for (const auto& name : Names(f.dst)) EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
  VerifyReport verify;
  EXPECT_TRUE(VerifyStore(*LocalStorage(), f.dst, &verify).ok());
  EXPECT_EQ(verify.records_checked, 96u);
}

// The destination may hold the user's own files: only temporaries that a stager or the
// manifest writer made for this store's files (<name>.tmp-<pid>-<n>) are stale and removed.
TEST(Stage, CleanupRemovesOnlyTheStagersOwnTemporaries) {
  StageFixture f;
  std::filesystem::create_directories(f.dst);
  const std::string shard = f.manifest.shards[1].file;
  const std::vector<std::string> stale = {shard + ".tmp-99999-0", "manifest.json.tmp-12-345"};
  const std::vector<std::string> kept = {"notes.tmp-keep", shard + ".tmp-keep",
                                         shard + ".tmp-1-x", "other.tss.tmp-99999-0",
                                         "x" + shard + ".tmp-1-2"};
  for (const auto& name : stale) std::ofstream(JoinPath(f.dst, name)) << "partial";
  for (const auto& name : kept) std::ofstream(JoinPath(f.dst, name)) << "mine";
  auto report = Stage(f.Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const auto names = Names(f.dst);
  for (const auto& name : stale)
    EXPECT_EQ(std::count(names.begin(), names.end(), name), 0) << name;
  for (const auto& name : kept) {
    EXPECT_EQ(std::count(names.begin(), names.end(), name), 1) << name;
    EXPECT_EQ(Slurp(JoinPath(f.dst, name)), "mine") << name;
  }
  VerifyReport verify;
  EXPECT_TRUE(VerifyStore(*LocalStorage(), f.dst, &verify).ok());
}

TEST(Stage, DirectIoWorksOrFallsBackCleanly) {
  // /tmp is usually ext4 (O_DIRECT works), /dev/shm is tmpfs (O_DIRECT may be refused): either
  // way the copy must be exact.
  StageFixture f;
  for (std::string base : {f.tmp.path(), std::string("/dev/shm")}) {
    if (!std::filesystem::exists(base)) continue;
    TempDir shm_owner;
    const std::string dst = base == "/dev/shm"
                                ? "/dev/shm/" + BaseName(shm_owner.path()) + "-direct"
                                : f.tmp.Sub("direct");
    StageOptions o = f.Options();
    o.to = dst;
    o.direct_io = true;
    o.chunk_bytes = 64 << 10;
    auto report = Stage(o);
    ASSERT_TRUE(report.ok()) << base << ": " << report.status().ToString();
    for (const auto& s : f.manifest.shards)
      EXPECT_EQ(Slurp(JoinPath(dst, s.file)), Slurp(JoinPath(f.src, s.file))) << base;
    VerifyReport verify;
    EXPECT_TRUE(VerifyStore(*LocalStorage(), dst, &verify).ok()) << base;
    if (base == "/dev/shm") std::filesystem::remove_all(dst);
  }
}

TEST(Stage, MissingSourceManifestIsNotFoundNamingTheStore) {
  StageFixture f;
  StageOptions o = f.Options();
  o.from = f.tmp.Sub("nowhere");
  auto report = Stage(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kNotFound);
  EXPECT_NE(report.status().message().find(o.from), std::string::npos);
}

TEST(Stage, ReplicateWithGroupIsInvalidArgument) {
  StageFixture f;
  StageOptions o = f.Options();
  o.group = 2;
  EXPECT_EQ(Stage(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tilestage
