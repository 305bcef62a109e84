// Stores: multi-shard round trips, rollover, concurrent writers and readers, and every bad input
// the issue names, each checked for its status code and a message naming file and record.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "tests/common/test_util.h"
#include "tests/tiling/store_fixture.h"
#include "tiling/checksum.h"

namespace tilestage {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::TestStoreSpec;
using testing::WriteTestStore;

TEST(Store, MultiShardRoundTripReadsEverySampleExactly) {
  auto storage = NewMemoryStorage();
  TestStoreSpec spec;
  spec.options.codec = {Codec::kLz4, 3, true};
  spec.synth.classes = 3;
  const Manifest written = WriteTestStore(storage, "/s", spec);
  auto store = Store::Open(storage, "/s");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_GE((*store)->num_shards(), 3u);
  ASSERT_EQ((*store)->size(), spec.samples);
  EXPECT_EQ((*store)->manifest().shards.size(), written.shards.size());
  for (uint64_t i = 0; i < spec.samples; ++i) {
    auto sample = (*store)->Read(i);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    const Sample want = MakeSynthSample(spec.synth, i);
    ASSERT_EQ(sample->fields.size(), 2u);
    EXPECT_EQ(sample->fields[0].array.data, want.fields[0].array.data) << i;
    EXPECT_EQ(sample->fields[1].array.data, want.fields[1].array.data) << i;
    EXPECT_EQ(sample->meta, want.meta);
  }
}

TEST(Store, ShardsRollOverAtTheTargetSize) {
  auto storage = NewMemoryStorage();
  TestStoreSpec spec;  // f32 [2,16,16] = 2 KiB + header per record, 4 KiB aligned, 32 KiB shards
  spec.samples = 40;
  const Manifest m = WriteTestStore(storage, "/s", spec);
  ASSERT_GE(m.shards.size(), 4u);
  uint64_t total = 0;
  for (size_t s = 0; s < m.shards.size(); ++s) {
    total += m.shards[s].records;
    EXPECT_EQ(m.shards[s].file, StrCat("shard-0000", s, ".tss"));
    // Every shard but the last went over the target before being closed, and no earlier.
    auto reader = ShardReader::Open(*storage, "/s/" + m.shards[s].file);
    ASSERT_TRUE(reader.ok());
    const uint64_t n = (*reader)->num_records();
    ASSERT_GE(n, 2u);
    const IndexEntry& last = (*reader)->entry(n - 1);
    const IndexEntry& before_last = (*reader)->entry(n - 2);
    if (s + 1 < m.shards.size()) {
      EXPECT_GE(last.offset + last.stored_size, spec.options.shard_target_bytes);
    }
    EXPECT_LT(before_last.offset + before_last.stored_size, spec.options.shard_target_bytes);
    EXPECT_EQ(*(*reader)->HashFile(), std::stoull(m.shards[s].hash, nullptr, 16));
  }
  EXPECT_EQ(total, 40u);
  EXPECT_EQ(m.TotalRecords(), 40u);
}

TEST(Store, LocateMapsGlobalIndexToShardAndRecord) {
  auto storage = NewMemoryStorage();
  TestStoreSpec spec;
  spec.samples = 30;
  WriteTestStore(storage, "/s", spec);
  auto store = Store::Open(storage, "/s");
  ASSERT_TRUE(store.ok());
  uint64_t global = 0;
  for (size_t s = 0; s < (*store)->num_shards(); ++s) {
    EXPECT_EQ((*store)->shard_offset(s), global);
    for (uint64_t r = 0; r < (*store)->shard(s).num_records(); ++r, ++global) {
      auto loc = (*store)->Locate(global);
      ASSERT_TRUE(loc.ok());
      EXPECT_EQ(loc->shard, s);
      EXPECT_EQ(loc->record, r);
    }
  }
  EXPECT_EQ((*store)->shard_offset((*store)->num_shards()), 30u);
  auto past = (*store)->Read(30);
  EXPECT_EQ(past.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(past.status().message(), HasSubstr("record 30 out of range"));
}

TEST(Store, LocalStoreHonoursAlignmentOnDisk) {
  TempDir tmp;
  TestStoreSpec spec;
  spec.options.codec = {Codec::kZstd, 3, true};
  const Manifest m = WriteTestStore(LocalStorage(), tmp.Sub("s"), spec);
  auto store = Store::Open(LocalStorage(), tmp.Sub("s"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (size_t s = 0; s < (*store)->num_shards(); ++s) {
    const ShardReader& shard = (*store)->shard(s);
    EXPECT_EQ(testing::FileSize(shard.path()), static_cast<long>(m.shards[s].bytes));
    for (uint64_t r = 0; r < shard.num_records(); ++r)
      EXPECT_EQ(shard.entry(r).offset % 4096, 0u) << shard.path() << " record " << r;
  }
  // No temporary files remain next to the published ones.
  for (const auto& e : std::filesystem::directory_iterator(tmp.Sub("s")))
    EXPECT_THAT(e.path().string(), ::testing::Not(HasSubstr(".tmp")));
}

TEST(Store, EmptyStoreHasZeroRecords) {
  auto storage = NewMemoryStorage();
  TestStoreSpec spec;
  spec.samples = 0;
  WriteTestStore(storage, "/s", spec);
  auto store = Store::Open(storage, "/s");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->size(), 0u);
  EXPECT_EQ((*store)->num_shards(), 0u);
}

TEST(Store, ManifestStatisticsAndProvenanceRoundTrip) {
  auto storage = NewMemoryStorage();
  Manifest m = WriteTestStore(storage, "/s");
  m.provenance = MakeProvenance({"tilestage", "synth", "--out", "/s"});
  m.attrs = {{"crs", "EPSG:32633"}, {"geotransform", {1, 2, 3, 4, 5, 6}}};
  m.fields[0].channel_names = {"red", "nir"};
  m.fields[0].units = {"reflectance"};
  ASSERT_TRUE(WriteManifest(*storage, "/s", m).ok());
  auto back = ReadManifest(*storage, "/s");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), m.ToJson());
  EXPECT_EQ(back->provenance["command"], "tilestage synth --out /s");
  EXPECT_EQ(back->fields[0].stats.size(), 2u);
  EXPECT_EQ(back->fields[0].stats[0].count, m.fields[0].stats[0].count);
  EXPECT_DOUBLE_EQ(back->fields[0].stats[1].m2, m.fields[0].stats[1].m2);
}

TEST(Store, RewritingAStoreRemovesTheOldManifestFirst) {
  auto storage = NewMemoryStorage();
  WriteTestStore(storage, "/s");
  ASSERT_TRUE(*storage->Exists("/s/manifest.json"));
  auto writer = StoreWriter::Create(storage, "/s", {});
  ASSERT_TRUE(writer.ok());
  // Until the new writer publishes, the directory does not look like a complete store.
  EXPECT_FALSE(*storage->Exists("/s/manifest.json"));
  EXPECT_FALSE(*storage->Exists("/s/shard-00000.tss"));
  EXPECT_EQ(Store::Open(storage, "/s").status().code(), StatusCode::kNotFound);
}

TEST(StoreWriter, ConcurrentAppendsFromManyThreadsKeepEveryRecordExactlyOnce) {
  auto storage = NewMemoryStorage();
  StoreWriterOptions options;
  options.codec = {Codec::kZstd, 1, true};
  options.shard_target_bytes = 40 << 10;
  auto writer = StoreWriter::Create(storage, "/s", options);
  ASSERT_TRUE(writer.ok());
  constexpr int kThreads = 8, kPerThread = 40;
  const SynthSpec synth{{1, 16, 16}, DType::kU16, 3, 0};
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        Sample s = MakeSynthSample(synth, t * 1000 + k);
        s.meta["thread"] = t;
        if (!(*writer)->Append(s).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  Manifest m;
  m.shards = *(*writer)->Close();
  m.fields.push_back({"x", DType::kU16, {1, 16, 16}, {}, {}, {}});
  ASSERT_TRUE(WriteManifest(*storage, "/s", m).ok());

  auto store = Store::Open(storage, "/s");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_GT((*store)->num_shards(), 1u);
  ASSERT_EQ((*store)->size(), uint64_t{kThreads * kPerThread});
  std::map<uint64_t, int> seen;
  for (uint64_t i = 0; i < (*store)->size(); ++i) {
    auto sample = (*store)->Read(i);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    const uint64_t index = sample->meta["index"].get<uint64_t>();
    ++seen[index];
    EXPECT_EQ(sample->meta["thread"].get<int>(), static_cast<int>(index / 1000));
    EXPECT_EQ(sample->fields[0].array.data, MakeSynthSample(synth, index).fields[0].array.data);
  }
  ASSERT_EQ(seen.size(), size_t{kThreads * kPerThread});
  for (const auto& [index, count] : seen) EXPECT_EQ(count, 1) << index;
}

TEST(Store, ConcurrentReadsFromManyThreadsReturnCorrectSamples) {
  TempDir tmp;
  TestStoreSpec spec;
  spec.samples = 64;
  spec.options.codec = {Codec::kZstd, 3, true};
  WriteTestStore(LocalStorage(), tmp.Sub("s"), spec);
  auto store = Store::Open(LocalStorage(), tmp.Sub("s"));
  ASSERT_TRUE(store.ok());
  std::vector<std::vector<uint8_t>> want;
  for (uint64_t i = 0; i < spec.samples; ++i)
    want.push_back(MakeSynthSample(spec.synth, i).fields[0].array.data);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) {
        const uint64_t i = CounterHash(t, 0, k) % spec.samples;
        auto sample = (*store)->Read(i);
        if (!sample.ok() || sample->fields[0].array.data != want[i]) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Store, VerifyPassesOnAnIntactStore) {
  TempDir tmp;
  WriteTestStore(LocalStorage(), tmp.Sub("s"));
  VerifyReport report;
  Status s = VerifyStore(*LocalStorage(), tmp.Sub("s"), &report);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.records_checked, 24u);
  EXPECT_GE(report.shards_checked, 2u);
  EXPECT_TRUE(report.problems.empty());
}

// ------------------------------------------------------------------------------ bad input

class BadStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.Sub("store");
    manifest_ = WriteTestStore(LocalStorage(), dir_, spec_);
    ASSERT_GE(manifest_.shards.size(), 2u);
    shard0_ = dir_ + "/" + manifest_.shards[0].file;
    shard1_ = dir_ + "/" + manifest_.shards[1].file;
  }
  IndexEntry Entry(const std::string& shard, uint64_t i) {
    auto reader = ShardReader::Open(*LocalStorage(), shard);
    EXPECT_TRUE(reader.ok());
    return (*reader)->entry(i);
  }
  Status OpenStatus() { return Store::Open(LocalStorage(), dir_).status(); }
  Status Verify(VerifyReport* report) { return VerifyStore(*LocalStorage(), dir_, report); }
  void EditManifest(const std::function<void(nlohmann::json&)>& edit) {
    auto j = testing::ReadJsonFile(dir_ + "/manifest.json");
    edit(j);
    testing::WriteJsonFile(dir_ + "/manifest.json", j);
  }

  TempDir tmp_;
  TestStoreSpec spec_;
  std::string dir_, shard0_, shard1_;
  Manifest manifest_;
};

TEST_F(BadStoreTest, TruncatedShardIsDataLossNamingTheShard) {
  testing::TruncateFile(shard1_, testing::FileSize(shard1_) - 100);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard1_));
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
  VerifyReport report;
  EXPECT_EQ(Verify(&report).code(), StatusCode::kDataLoss);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_THAT(report.problems[0], HasSubstr(shard1_));
}

TEST_F(BadStoreTest, ShardTruncatedBelowSuperblockIsDataLoss) {
  testing::TruncateFile(shard0_, 10);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard0_));
  EXPECT_THAT(s.message(), HasSubstr("truncated: 10 bytes"));
}

TEST_F(BadStoreTest, FlippedByteInRecordIsDataLossNamingShardAndRecord) {
  const IndexEntry e = Entry(shard1_, 2);
  testing::FlipByte(shard1_, static_cast<long>(e.offset + e.stored_size / 2));
  auto store = Store::Open(LocalStorage(), dir_);
  ASSERT_TRUE(store.ok()) << "opening only reads superblock, index and footer";
  const uint64_t global = (*store)->shard_offset(1) + 2;
  auto sample = (*store)->Read(global);
  EXPECT_EQ(sample.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(sample.status().message(), HasSubstr(shard1_));
  EXPECT_THAT(sample.status().message(), HasSubstr("record 2: checksum mismatch"));
  // Its neighbours still read.
  EXPECT_TRUE((*store)->Read(global - 1).ok());
  EXPECT_TRUE((*store)->Read(global + 1).ok());

  VerifyReport report;
  EXPECT_EQ(Verify(&report).code(), StatusCode::kDataLoss);
  EXPECT_THAT(report.problems, ::testing::Contains(HasSubstr("record 2: checksum mismatch")));
  EXPECT_THAT(report.problems, ::testing::Contains(HasSubstr("file hash")));
}

TEST_F(BadStoreTest, VerifyReportsTheSameProblemsInShardOrderForAnyThreadCount) {
  const IndexEntry e0 = Entry(shard0_, 1);
  const IndexEntry e1 = Entry(shard1_, 2);
  testing::FlipByte(shard0_, static_cast<long>(e0.offset + e0.stored_size / 2));
  testing::FlipByte(shard1_, static_cast<long>(e1.offset + e1.stored_size / 2));
  std::vector<std::vector<std::string>> seen;
  for (int threads : {1, 2, 4}) {
    VerifyReport report;
    Status s = VerifyStore(*LocalStorage(), dir_, &report, threads);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_THAT(s.message(), HasSubstr(shard0_));
    EXPECT_EQ(report.records_checked, spec_.samples);
    seen.push_back(report.problems);
  }
  ASSERT_EQ(seen[0].size(), 4u);  // per shard: its file hash, then its record
  EXPECT_THAT(seen[0][0], HasSubstr(shard0_ + ": file hash"));
  EXPECT_THAT(seen[0][1], HasSubstr(shard0_ + ": record 1: checksum mismatch"));
  EXPECT_THAT(seen[0][2], HasSubstr(shard1_ + ": file hash"));
  EXPECT_THAT(seen[0][3], HasSubstr(shard1_ + ": record 2: checksum mismatch"));
  EXPECT_EQ(seen[1], seen[0]);
  EXPECT_EQ(seen[2], seen[0]);
}

TEST_F(BadStoreTest, FlippedPaddingByteBetweenRecordsIsAFileHashMismatchOnly) {
  // Records are 4 KiB-aligned: the byte before record 1 is padding no record checksum covers.
  const IndexEntry e = Entry(shard0_, 1);
  ASSERT_GT(e.offset, Entry(shard0_, 0).offset + Entry(shard0_, 0).stored_size);
  testing::FlipByte(shard0_, static_cast<long>(e.offset - 1));
  VerifyReport report;
  EXPECT_EQ(Verify(&report).code(), StatusCode::kDataLoss);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_THAT(report.problems[0], HasSubstr(shard0_ + ": file hash"));
}

TEST(Store, VerifyNamesADamagedRecordLargerThanItsReadBlock) {
  // 3 records of 2 MiB: each spans more than one of verify's 1 MiB read blocks.
  TempDir tmp;
  TestStoreSpec spec;
  spec.synth.shape = {2, 512, 512};
  spec.samples = 3;
  spec.options.shard_target_bytes = 64 << 20;
  const std::string dir = tmp.Sub("s");
  const Manifest m = WriteTestStore(LocalStorage(), dir, spec);
  ASSERT_EQ(m.shards.size(), 1u);
  const std::string shard = dir + "/" + m.shards[0].file;
  VerifyReport intact;
  ASSERT_TRUE(VerifyStore(*LocalStorage(), dir, &intact).ok()) << intact.problems[0];
  auto reader = ShardReader::Open(*LocalStorage(), shard);
  ASSERT_TRUE(reader.ok());
  const IndexEntry e = (*reader)->entry(1);
  ASSERT_GT(e.stored_size, 1u << 20);
  testing::FlipByte(shard, static_cast<long>(e.offset + e.stored_size - 10));
  VerifyReport report;
  EXPECT_EQ(VerifyStore(*LocalStorage(), dir, &report).code(), StatusCode::kDataLoss);
  EXPECT_THAT(report.problems,
              ::testing::Contains(HasSubstr(shard + ": record 1: checksum mismatch")));
  EXPECT_EQ(report.problems.size(), 2u);  // the record and the file hash
}

TEST_F(BadStoreTest, FlippedByteInIndexIsDataLossNamingShard) {
  const long index_offset =
      testing::FileSize(shard0_) - kFooterBytes - manifest_.shards[0].records * kIndexEntryBytes;
  testing::FlipByte(shard0_, index_offset + kIndexEntryBytes + 3);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard0_));
  EXPECT_THAT(s.message(), HasSubstr("index checksum mismatch"));
}

TEST_F(BadStoreTest, FlippedByteInFooterIsDataLoss) {
  testing::FlipByte(shard0_, -30);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard0_));
  EXPECT_THAT(s.message(), HasSubstr("footer checksum mismatch"));
}

TEST_F(BadStoreTest, WrongMagicIsDataLossNamingShard) {
  testing::FlipByte(shard0_, 0);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard0_));
  EXPECT_THAT(s.message(), HasSubstr("bad magic"));
}

TEST_F(BadStoreTest, UnknownVersionIsDataLossNamingVersion) {
  // A well-formed superblock from a future format version (checksum recomputed).
  auto bytes = *LocalStorage()->ReadAll(shard0_);
  const uint32_t version = 7;
  std::memcpy(bytes.data() + 8, &version, 4);
  const uint64_t sum = Hash64({bytes.data(), 56});
  std::memcpy(bytes.data() + 56, &sum, 8);
  ASSERT_TRUE(LocalStorage()->WriteAtomic(shard0_, bytes).ok());
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard0_));
  EXPECT_THAT(s.message(), HasSubstr("unknown format version 7"));
}

TEST_F(BadStoreTest, MissingShardFileIsNotFoundNamingIt) {
  std::filesystem::remove(shard1_);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(shard1_));
  VerifyReport report;
  EXPECT_EQ(Verify(&report).code(), StatusCode::kNotFound);
  EXPECT_THAT(report.problems, ::testing::Contains(HasSubstr(shard1_)));
}

TEST_F(BadStoreTest, ManifestRecordCountDisagreeingWithShardIsDataLoss) {
  EditManifest([](nlohmann::json& j) {
    j["shards"][0]["records"] = j["shards"][0]["records"].get<int>() + 1;
    j["samples"] = j["samples"].get<int>() + 1;  // consistent, so the shard is what disagrees
  });
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard0_));
  EXPECT_THAT(s.message(), HasSubstr(StrCat(manifest_.shards[0].records, " records, manifest says ",
                                            manifest_.shards[0].records + 1)));
  VerifyReport report;
  EXPECT_EQ(Verify(&report).code(), StatusCode::kDataLoss);
}

TEST_F(BadStoreTest, ManifestByteSizeDisagreeingWithShardIsDataLoss) {
  EditManifest([](nlohmann::json& j) {
    j["bytes"] = j["bytes"].get<uint64_t>() - j["shards"][1]["bytes"].get<uint64_t>() + 12345;
    j["shards"][1]["bytes"] = 12345;
  });
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard1_));
  EXPECT_THAT(s.message(), HasSubstr("manifest says 12345"));
}

TEST_F(BadStoreTest, ManifestHashDisagreeingWithShardFailsVerify) {
  EditManifest([](nlohmann::json& j) { j["shards"][1]["hash"] = "0123456789abcdef"; });
  VerifyReport report;
  Status s = Verify(&report);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(shard1_));
  EXPECT_THAT(s.message(), HasSubstr("!= manifest hash 0123456789abcdef"));
  EXPECT_EQ(report.problems.size(), 1u);
}

TEST_F(BadStoreTest, MalformedManifestIsDataLossNamingIt) {
  std::ofstream(dir_ + "/manifest.json", std::ios::trunc) << "{\"format\": \"tilestage\", ";
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(dir_ + "/manifest.json"));
}

TEST_F(BadStoreTest, ManifestMissingShardListIsDataLoss) {
  EditManifest([](nlohmann::json& j) { j.erase("shards"); });
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("shards"));
}

TEST_F(BadStoreTest, DirectoryWithoutManifestIsNotFound) {
  std::filesystem::remove(dir_ + "/manifest.json");
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(dir_));
  EXPECT_THAT(s.message(), HasSubstr("manifest.json"));
}

TEST(Store, MissingStoreDirectoryIsNotFoundNamingIt) {
  TempDir tmp;
  const std::string dir = tmp.Sub("does-not-exist");
  auto store = Store::Open(LocalStorage(), dir);
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(store.status().message(), HasSubstr(dir));
  VerifyReport report;
  Status s = VerifyStore(*LocalStorage(), dir, &report);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(dir));
}

}  // namespace
}  // namespace tilestage
