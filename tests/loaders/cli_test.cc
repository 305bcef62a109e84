// `tilestage load` and `tilestage stage` end to end through the built CLI (and mpirun -np 2):
// reports, MLLOG lines, exit codes and the error messages a user sees.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/common/test_util.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::TempDir;

std::string Mpirun() {
  return std::string(TILESTAGE_MPIEXEC) + " --allow-run-as-root --oversubscribe --bind-to none";
}

std::string MakeStore(const TempDir& tmp, int samples = 100) {
  const std::string dir = tmp.Sub("store");
  auto r = RunCommand(CliPath() + " synth --out " + dir + " --samples " + std::to_string(samples) +
                      " --shape 2,16,16 --codec lz4 --shard-size 32KiB");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir;
}

nlohmann::json JsonFrom(const std::string& output) {
  const auto start = output.find('{');
  const auto end = output.rfind('}');
  EXPECT_NE(start, std::string::npos) << output;
  if (start == std::string::npos) return {};
  auto j = nlohmann::json::parse(output.substr(start, end - start + 1), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << output;
  return j;
}

// The bytes of record `record` of shard `shard` get one bit flipped.
std::string CorruptRecord(const std::string& dir, size_t shard, uint64_t record) {
  auto store = Store::Open(LocalStorage(), dir);
  EXPECT_TRUE(store.ok());
  const std::string path = (*store)->shard(shard).path();
  const long offset = static_cast<long>((*store)->shard(shard).entry(record).offset + 30);
  store->reset();
  testing::FlipByte(path, offset);
  return path;
}

TEST(LoadCli, ReportsThroughputStagesStallAndAu) {
  TempDir tmp;
  const std::string store = MakeStore(tmp);
  auto r = RunCommand(CliPath() + " load " + store +
                      " --batch 10 --epochs 2 --threads 2 --compute-ms 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = JsonFrom(r.output);
  EXPECT_EQ(j["samples"], 200);
  EXPECT_GT(j["au_percent"].get<double>(), 0.0);
  EXPECT_LE(j["au_percent"].get<double>(), 100.0);
  const auto& rank = j["per_rank"][0];
  EXPECT_EQ(rank["batches"], 20);
  for (const char* stage : {"read", "verify", "decode", "normalize", "collate"})
    EXPECT_EQ(rank["stages"][stage]["items"], 200) << stage;
  EXPECT_TRUE(rank.contains("wait_ms_per_batch"));
  EXPECT_TRUE(rank.contains("queue_occupancy_mean"));
  EXPECT_GE(rank["compute_s"].get<double>(), 20 * 0.001);
}

TEST(LoadCli, ReadBatchesSumsEveryNormalizedValueOfEveryEpoch) {
  TempDir tmp;
  const std::string store = MakeStore(tmp);
  {
    // Over a whole epoch the store's own statistics normalize x to a sum near 0, which a loader
    // that read nothing would match too: shift the recorded means so that the sum is not 0.
    const std::string path = store + "/manifest.json";
    std::ifstream in(path);
    nlohmann::json m = nlohmann::json::parse(in);
    for (auto& c : m["fields"][0]["stats"]) c["mean"] = c["mean"].get<double>() - 1.0;
    std::ofstream(path) << m.dump();
  }
  auto r =
      RunCommand(CliPath() + " load " + store + " --batch 10 --epochs 2 --read-batches --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = JsonFrom(r.output);
  // The direct computation: every record's x normalized with the manifest's statistics, twice.
  auto opened = Store::Open(LocalStorage(), store);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const Store& s = **opened;
  const auto& stats = s.manifest().fields[0].stats;
  double want = 0;
  for (uint64_t i = 0; i < s.size(); ++i) {
    auto sample = s.Read(i);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    const Array& x = *sample->Find("x");
    const int64_t per_channel = x.NumElements() / static_cast<int64_t>(stats.size());
    for (int64_t e = 0; e < x.NumElements(); ++e) {
      const auto& c = stats[e / per_channel];
      want += 2 * (ElementAsDouble(x, e) - c.mean) / c.std();
    }
  }
  ASSERT_GT(std::abs(want), 1000.0);
  EXPECT_NEAR(j["per_rank"][0]["x_sum"].get<double>(), want, 1e-5 * std::abs(want));
  auto plain = RunCommand(CliPath() + " load " + store + " --batch 10 --json");
  EXPECT_FALSE(JsonFrom(plain.output)["per_rank"][0].contains("x_sum"));
}

TEST(LoadCli, CorruptRecordFailNamesShardAndRecord) {
  TempDir tmp;
  const std::string store = MakeStore(tmp);
  const std::string shard = CorruptRecord(store, 1, 3);
  auto r = RunCommand(CliPath() + " load " + store + " --batch 10 --on-corrupt fail");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(shard), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("record 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("DataLoss"), std::string::npos) << r.output;
}

TEST(LoadCli, CorruptRecordSkipCountsAndContinues) {
  TempDir tmp;
  const std::string store = MakeStore(tmp);
  CorruptRecord(store, 1, 3);
  auto r = RunCommand(CliPath() + " load " + store + " --batch 10 --on-corrupt skip --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = JsonFrom(r.output);
  EXPECT_EQ(j["samples"], 99);
  EXPECT_EQ(j["per_rank"][0]["corrupt_skipped"], 1);
  EXPECT_EQ(j["per_rank"][0]["batches"], 10);
}

TEST(LoadCli, GlobalBatchLargerThanTheStoreIsAClearError) {
  TempDir tmp;
  const std::string store = MakeStore(tmp, 20);
  auto r = RunCommand(Mpirun() + " -np 2 " + CliPath() + " load " + store + " --batch 11");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("global batch of 22 samples is larger than the 20 records"),
            std::string::npos)
      << r.output;
}

TEST(LoadCli, TwoRanksUnderMpirunSplitTheEpoch) {
  TempDir tmp;
  const std::string store = MakeStore(tmp, 101);
  auto r = RunCommand(Mpirun() + " -np 2 " + CliPath() + " load " + store +
                      " --batch 8 --shuffle block --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = JsonFrom(r.output);
  EXPECT_EQ(j["ranks"], 2);
  // 101 records in 7 global batches of 16: 11 repeated, 56 samples per rank.
  EXPECT_EQ(j["samples"], 112);
  EXPECT_EQ(j["per_rank"][0]["batches"], j["per_rank"][1]["batches"]);
}

TEST(StageCli, MpirunPartitionWritesMllogAndStoresThatInspectAndVerify) {
  TempDir tmp;
  const std::string store = MakeStore(tmp);
  const std::string dest = tmp.Sub("node{node}");
  auto r = RunCommand(Mpirun() + " -np 2 " + CliPath() + " stage --from " + store + " --to " +
                      dest + " --mode partition --ranks-per-node 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::map<std::string, nlohmann::json> events;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(":::MLLOG ", 0) != 0) continue;
    auto j = nlohmann::json::parse(line.substr(9), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    for (const char* key : {"namespace", "time_ms", "event_type", "key", "value", "metadata"})
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    EXPECT_TRUE(j["metadata"].contains("file"));
    EXPECT_TRUE(j["metadata"].contains("lineno"));
    events[j["key"]] = j;
  }
  ASSERT_EQ(events.size(), 3u) << r.output;
  EXPECT_EQ(events["staging_start"]["event_type"], "INTERVAL_START");
  EXPECT_EQ(events["staging_start"]["metadata"]["file"].get<std::string>(), "tools/cli/stage.cc");
  EXPECT_EQ(events["staging_stop"]["event_type"], "INTERVAL_END");
  EXPECT_EQ(events["staging_duration"]["event_type"], "POINT_IN_TIME");
  EXPECT_LE(events["staging_start"]["time_ms"].get<uint64_t>(),
            events["staging_stop"]["time_ms"].get<uint64_t>());
  uint64_t records = 0;
  for (int node = 0; node < 2; ++node) {
    const std::string dir = tmp.Sub("node" + std::to_string(node));
    auto v = RunCommand(CliPath() + " verify " + dir);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    auto i = RunCommand(CliPath() + " inspect " + dir + " --json");
    ASSERT_EQ(i.exit_code, 0) << i.output;
    const nlohmann::json manifest = JsonFrom(i.output);
    for (const auto& s : manifest["shards"]) records += s["records"].get<uint64_t>();
  }
  EXPECT_EQ(records, 100u);
}

TEST(StageCli, ReplicateJsonReportsBytesSecondsAndRates) {
  TempDir tmp;
  const std::string store = MakeStore(tmp);
  // MLLOG lines go to stderr with --json; keep stdout alone (RunCommand merges the two).
  auto r = RunCommand("(" + Mpirun() + " -np 2 " + CliPath() + " stage --from " + store +
                      " --to " + tmp.Sub("n{node}") +
                      " --mode replicate --ranks-per-node 1 --json 2>/dev/null)");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = JsonFrom(r.output);
  ASSERT_EQ(j["per_node"].size(), 2u);
  const uint64_t store_bytes = j["store_bytes"];
  EXPECT_EQ(j["bytes_written"].get<uint64_t>(), 2 * store_bytes);
  EXPECT_EQ(j["bytes_read_from_source"].get<uint64_t>(), store_bytes);
  for (const auto& n : j["per_node"]) {
    EXPECT_EQ(n["bytes_written"].get<uint64_t>(), store_bytes);
    EXPECT_GT(n["gb_per_s"].get<double>(), 0.0);
  }
}

TEST(StageCli, GroupThatDoesNotDivideTheNodesIsAClearError) {
  TempDir tmp;
  const std::string store = MakeStore(tmp, 20);
  auto r = RunCommand(Mpirun() + " -np 2 " + CliPath() + " stage --from " + store + " --to " +
                      tmp.Sub("n{node}") + " --mode partition --group 3 --ranks-per-node 1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("group size 3 must divide the 2 nodes"), std::string::npos) << r.output;
}

// A store is untrusted input: a shard named "../outside.tss" would make readers read, and the
// stager write, beside the store. Every command refuses the manifest; nothing is written outside
// the destination.
TEST(StageCli, ShardNameEscapingTheStoreIsRefusedByVerifyLoadAndStage) {
  TempDir tmp;
  const std::string store = MakeStore(tmp, 20);
  const std::string manifest_path = store + "/manifest.json";
  auto manifest = nlohmann::json::parse(std::ifstream(manifest_path));
  // The named file exists and is a valid copy of the shard, so only the name is wrong.
  const std::string first = manifest["shards"][0]["file"];
  std::filesystem::copy_file(store + "/" + first, tmp.Sub("outside.tss"));
  std::filesystem::remove(store + "/" + first);
  manifest["shards"][0]["file"] = "../outside.tss";
  std::ofstream(manifest_path, std::ios::trunc) << manifest.dump(2);
  const std::string error = "manifest " + manifest_path +
                            ": shards[0].file \"../outside.tss\" is not a plain file name";

  std::filesystem::create_directories(tmp.Sub("dst"));
  const std::vector<std::string> commands = {
      "verify " + store, "load " + store + " --batch 4",
      "stage --from " + store + " --to " + tmp.Sub("dst/n{node}"),
      Mpirun() + " -np 2 " + CliPath() + " stage --from " + store + " --to " +
          tmp.Sub("dst/m{node}") + " --mode replicate --ranks-per-node 1"};
  for (const std::string& command : commands) {
    auto r = RunCommand(command.rfind(Mpirun(), 0) == 0 ? command : CliPath() + " " + command);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.output;
    EXPECT_NE(r.output.find(error), std::string::npos) << command << ": " << r.output;
    EXPECT_EQ(r.output.find("verify OK"), std::string::npos) << r.output;
  }
  // Nothing landed beside the destinations.
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp.Sub("dst")))
    EXPECT_TRUE(e.is_directory()) << e.path();
}

}  // namespace
}  // namespace tilestage
