// A store is never lost: ingesting over an existing store is refused without `overwrite`, and an
// overwrite crashed at every possible point (the fault-injecting storage stops every change after
// the N-th, as a dying process would) leaves exactly one complete, verifiable store: the old one
// or the new one. The next run cleans up whatever the crash left.
#include <gtest/gtest.h>

#include "ingest/driver.h"
#include "tiling/store.h"

namespace tilestage::ingest {
namespace {

// Items of `size` x `size` pixels, one u16 channel whose values say which run wrote them.
class TaggedSource : public Source {
 public:
  TaggedSource(int items, int64_t size, uint16_t tag) : tag_(tag) {
    schema_.x = {DType::kU16, {"b"}, {}, {}};
    for (int i = 0; i < items; ++i) items_.push_back({"item" + std::to_string(i), size, size, {}, {}});
  }
  std::string kind() const override { return "tagged"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(items_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_[index]; }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override {
    return std::unique_ptr<ItemReader>(new Reader(tag_));
  }

 private:
  class Reader : public ItemReader {
   public:
    explicit Reader(uint16_t tag) : tag_(tag) {}
    Status Read(int64_t, const Region& region, RegionData* out) override {
      out->x = Array(DType::kU16, {1, region.height, region.width});
      for (auto& v : out->x.As<uint16_t>()) v = tag_;
      return Status::Ok();
    }
    uint16_t tag_;
  };
  SourceSchema schema_;
  std::vector<ItemInfo> items_;
  uint16_t tag_;
};

DriverOptions Options(std::shared_ptr<Storage> storage, bool overwrite) {
  DriverOptions o;
  o.storage = std::move(storage);
  o.out = "/data/store";
  o.tile = TileSpec{false, 8, 8, 8, 8, EdgePolicy::kShift};
  o.shard_target_bytes = 2 << 10;  // several shards: many points to crash at
  o.threads = 1;
  o.hash_sources = false;
  o.overwrite = overwrite;
  return o;
}

// The tag of the complete store at dir (verified end to end), or 0 when there is none.
uint16_t CompleteStoreTag(const std::shared_ptr<Storage>& storage, const std::string& dir) {
  VerifyReport report;
  if (!VerifyStore(*storage, dir, &report).ok()) return 0;
  auto store = Store::Open(storage, dir);
  if (!store.ok() || (*store)->size() == 0) return 0;
  auto first = (*store)->Read(0);
  return first.ok() ? first->fields[0].array.As<uint16_t>()[0] : 0;
}

TEST(Overwrite, ExistingStoreIsRefusedWithoutOverwriteAndLeftUntouched) {
  auto storage = NewMemoryStorage();
  ASSERT_TRUE(RunIngest(TaggedSource(2, 16, 1), Options(storage, false)).ok());
  auto before = storage->ReadAll("/data/store/manifest.json");
  ASSERT_TRUE(before.ok());
  auto again = RunIngest(TaggedSource(3, 16, 2), Options(storage, false));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find("/data/store"), std::string::npos);
  EXPECT_NE(again.status().message().find("--overwrite"), std::string::npos)
      << again.status().message();
  EXPECT_EQ(*storage->ReadAll("/data/store/manifest.json"), *before);
  EXPECT_EQ(CompleteStoreTag(storage, "/data/store"), 1);
}

TEST(Overwrite, ReplacesTheStoreAndLeavesNoStagingBehind) {
  for (bool no_exchange : {false, true}) {
    SCOPED_TRACE(no_exchange ? "two renames" : "exchange");
    FaultOptions faults;
    faults.no_exchange = no_exchange;
    auto storage = NewFaultInjectingStorage(NewMemoryStorage(), faults);
    ASSERT_TRUE(RunIngest(TaggedSource(2, 16, 1), Options(storage, false)).ok());
    auto summary = RunIngest(TaggedSource(3, 16, 2), Options(storage, true));
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    EXPECT_EQ(CompleteStoreTag(storage, "/data/store"), 2);
    EXPECT_EQ((*Store::Open(storage, "/data/store"))->size(), 3u * 4u);
    EXPECT_EQ(*storage->List("/data"), std::vector<std::string>{"store"});
  }
}

// Crashes the overwrite after every number of changes until it completes: after each crash the
// store directory holds exactly one complete store (old, or new once the swap happened), and a
// rerun with overwrite succeeds and cleans up.
TEST(Overwrite, CrashAtAnyPointLeavesExactlyOneCompleteStore) {
  for (bool no_exchange : {false, true}) {
    SCOPED_TRACE(no_exchange ? "two renames" : "exchange");
    int crashes = 0, leftovers = 0;
    for (uint64_t n = 0;; ++n) {
      SCOPED_TRACE("crash after " + std::to_string(n) + " changes");
      auto memory = NewMemoryStorage();
      ASSERT_TRUE(RunIngest(TaggedSource(2, 16, 1), Options(memory, false)).ok());
      FaultOptions faults;
      faults.crash_after_changes = n;
      faults.no_exchange = no_exchange;
      auto crashing = NewFaultInjectingStorage(memory, faults);
      const bool finished = RunIngest(TaggedSource(3, 16, 2), Options(crashing, true)).ok();
      // What a reader sees after the crash; with two renames the one moment without a store at
      // the path (between them) is repaired by the next run's recovery, so look after it too.
      uint16_t tag = CompleteStoreTag(memory, "/data/store");
      if (no_exchange && tag == 0) {
        ASSERT_TRUE(RecoverStore(*memory, "/data/store").ok());
        tag = CompleteStoreTag(memory, "/data/store");
      }
      ASSERT_TRUE(tag == 1 || tag == 2) << "no complete store after the crash";
      const bool clean = *memory->List("/data") == std::vector<std::string>{"store"};
      if (finished) {
        EXPECT_EQ(tag, 2);
        if (clean) break;
        // Crashed while removing the old store after the swap: the new store is in place and the
        // old one waits in the staging directory for the next run to remove it.
        ++leftovers;
      } else {
        ++crashes;
      }
      // The next run starts from whatever was left, and leaves only the new store.
      auto rerun = RunIngest(TaggedSource(3, 16, 2), Options(memory, true));
      ASSERT_TRUE(rerun.ok()) << rerun.status().ToString();
      EXPECT_EQ(CompleteStoreTag(memory, "/data/store"), 2);
      EXPECT_EQ(*memory->List("/data"), std::vector<std::string>{"store"});
      ASSERT_LT(n, 10000u) << "the ingest never completes";
    }
    EXPECT_GT(crashes, 10);  // shards, manifest, swap: many distinct points were hit
    EXPECT_GE(leftovers, 1);  // a crash after the swap, while the old store was being removed
  }
}

}  // namespace
}  // namespace tilestage::ingest
