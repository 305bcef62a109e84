// Multi-rank staging and loading, run by ctest under `mpirun -np 2`. Each rank is a simulated
// node (ranks_per_node = 1) with its own destination directory, so the partition and replicate
// paths (allgather redistribution, per-node manifests) run on one host. Assertions avoid
// early returns so no rank skips a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "loaders/loader.h"
#include "loaders/stager.h"
#include "tests/common/test_util.h"
#include "tests/loaders/synth_store.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

// The job's communicator, made on first use (collectively: every rank runs the same tests).
Communicator& World() {
  static std::unique_ptr<Communicator> world = [] {
    auto comm = NewMpiCommunicator();
    if (!comm.ok()) {
      std::fprintf(stderr, "%s\n", comm.status().ToString().c_str());
      std::abort();
    }
    return std::move(comm).value();
  }();
  return *world;
}

int Rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int Size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A source store written by rank 0 in a directory every rank knows.
struct SharedStore {
  std::unique_ptr<testing::TempDir> owner;  // rank 0 only: removes the tree at the end
  std::string root, src;
  Manifest manifest;
  explicit SharedStore(uint64_t samples = 90) {
    if (Rank() == 0) {
      owner = std::make_unique<testing::TempDir>();
      root = owner->path();
    }
    uint64_t n = root.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    root.resize(n);
    MPI_Bcast(root.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
    src = root + "/src";
    testing::SynthStoreSpec spec;
    spec.samples = samples;
    spec.shard_target_bytes = 40 << 10;
    if (Rank() == 0) testing::WriteSynthStore(LocalStorage(), src, spec);
    MPI_Barrier(MPI_COMM_WORLD);
    auto m = ReadManifest(*LocalStorage(), src);
    EXPECT_TRUE(m.ok());
    if (m.ok()) manifest = *m;
  }
  ~SharedStore() { MPI_Barrier(MPI_COMM_WORLD); }
};

StageOptions Options(const SharedStore& s, StageMode mode) {
  StageOptions o;
  o.from = s.src;
  o.to = s.root + "/node{node}";
  o.mode = mode;
  o.ranks_per_node = 1;
  o.chunk_bytes = 12 << 10;  // many Allgatherv rounds
  return o;
}

std::vector<std::string> StagedShards(const std::string& dir) {
  std::vector<std::string> files;
  auto m = ReadManifest(*LocalStorage(), dir);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (m.ok())
    for (const auto& s : m->shards) files.push_back(s.file);
  return files;
}

TEST(StageMpi, PartitionGivesEachNodeADisjointBalancedShareThatVerifies) {
  SharedStore s;
  auto report = StageStore(World(), Options(s, StageMode::kPartition));
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (Rank() == 0 && report.ok()) {
    EXPECT_EQ(report->nodes, Size());
    ASSERT_EQ(report->node_reports.size(), static_cast<size_t>(Size()));
    std::multiset<std::string> all;
    uint64_t read = 0;
    for (int node = 0; node < Size(); ++node) {
      const std::string dir = s.root + "/node" + std::to_string(node);
      for (const auto& f : StagedShards(dir)) {
        all.insert(f);
        EXPECT_EQ(Slurp(dir + "/" + f), Slurp(s.src + "/" + f));
      }
      VerifyReport verify;
      EXPECT_TRUE(VerifyStore(*LocalStorage(), dir, &verify).ok()) << dir;
      read += report->node_reports[node].bytes_read_from_source;
      EXPECT_GT(report->node_reports[node].shards_held, 0u);
    }
    std::multiset<std::string> expected;
    for (const auto& sh : s.manifest.shards) expected.insert(sh.file);
    EXPECT_EQ(all, expected);  // disjoint and complete
    EXPECT_EQ(read, s.manifest.TotalBytes());
  }
}

TEST(StageMpi, ReplicateGivesEveryNodeEveryShardReadingEachByteOnce) {
  SharedStore s;
  auto report = StageStore(World(), Options(s, StageMode::kReplicate));
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (Rank() == 0 && report.ok()) {
    uint64_t read = 0;
    for (int node = 0; node < Size(); ++node) {
      const std::string dir = s.root + "/node" + std::to_string(node);
      EXPECT_EQ(StagedShards(dir).size(), s.manifest.shards.size());
      for (const auto& sh : s.manifest.shards)
        EXPECT_EQ(Slurp(dir + "/" + sh.file), Slurp(s.src + "/" + sh.file));
      VerifyReport verify;
      EXPECT_TRUE(VerifyStore(*LocalStorage(), dir, &verify).ok()) << dir;
      read += report->node_reports[node].bytes_read_from_source;
      // Both nodes read: the reads are spread over the replica set.
      EXPECT_GT(report->node_reports[node].bytes_read_from_source, 0u);
    }
    EXPECT_EQ(read, s.manifest.TotalBytes());
  }
}

TEST(StageMpi, CorruptSourceShardFailsOnEveryRankNamingIt) {
  SharedStore s;
  const std::string bad = s.src + "/" + s.manifest.shards[1].file;
  if (Rank() == 0) testing::FlipByte(bad, 4200);
  MPI_Barrier(MPI_COMM_WORLD);
  auto report = StageStore(World(), Options(s, StageMode::kReplicate));
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find(bad), std::string::npos)
      << report.status().ToString();
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string copy = s.root + "/node" + std::to_string(Rank()) + "/" +
                           s.manifest.shards[1].file;
  EXPECT_FALSE(std::ifstream(copy).good()) << copy;
}

TEST(StageMpi, RanksOnOneNodeShareOneCopy) {
  SharedStore s;
  StageOptions o = Options(s, StageMode::kPartition);
  o.ranks_per_node = 0;  // both ranks run on this host: MPI_COMM_TYPE_SHARED puts them together
  o.to = s.root + "/shared";
  auto report = StageStore(World(), o);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (Rank() == 0 && report.ok()) {
    EXPECT_EQ(report->nodes, 1);
    EXPECT_EQ(StagedShards(o.to).size(), s.manifest.shards.size());
  }
}

TEST(LoadMpi, RanksTogetherSeeEveryRecordOncePerEpochWithEqualBatchCounts) {
  SharedStore s(91);  // 91 records over 2 ranks: one padded sample
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 4;
  o.rank = Rank();
  o.world_size = Size();
  auto loader = Loader::Open(LocalStorage(), s.src, o);
  EXPECT_TRUE(loader.ok()) << loader.status().ToString();
  std::vector<uint64_t> mine;
  uint64_t batches = 0;
  if (loader.ok()) {
    Batch b;
    while (true) {
      auto more = (*loader)->Next(&b);
      EXPECT_TRUE(more.ok());
      if (!more.ok() || !*more) break;
      ++batches;
      mine.insert(mine.end(), b.indices.begin(), b.indices.end());
    }
  }
  std::vector<uint64_t> counts(Size());
  uint64_t n = mine.size();
  MPI_Allgather(&n, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  uint64_t max_batches = 0, min_batches = 0;
  MPI_Allreduce(&batches, &max_batches, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&batches, &min_batches, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  EXPECT_EQ(max_batches, min_batches);
  std::vector<uint64_t> all(std::accumulate(counts.begin(), counts.end(), uint64_t{0}));
  std::vector<int> recv(Size()), displs(Size());
  for (int r = 0, off = 0; r < Size(); ++r) {
    recv[r] = static_cast<int>(counts[r]);
    displs[r] = off;
    off += recv[r];
  }
  MPI_Allgatherv(mine.data(), static_cast<int>(n), MPI_UINT64_T, all.data(), recv.data(),
                 displs.data(), MPI_UINT64_T, MPI_COMM_WORLD);
  for (uint64_t c : counts) EXPECT_EQ(c, counts[0]);
  std::set<uint64_t> distinct(all.begin(), all.end());
  EXPECT_EQ(distinct.size(), 91u);
  EXPECT_EQ(*distinct.rbegin(), 90u);
  // Full global batches of 8 * Size(): the padding depends on the global batch only.
  const uint64_t global = 8u * static_cast<uint64_t>(Size());
  EXPECT_EQ(all.size(), (91u + global - 1) / global * global);
}

}  // namespace
}  // namespace tilestage
