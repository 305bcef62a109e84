// The ingest driver against an in-memory Source whose pixels are a known function of position:
// every stored tile is compared with a direct cut of that function, statistics with a direct
// computation over the kept tiles, and runs with 1 and 4 threads with each other.
#include "ingest/driver.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <string>

#include "tests/common/test_util.h"
#include "tiling/checksum.h"
#include "tiling/store.h"

namespace tilestage::ingest {
namespace {

constexpr uint16_t kNodata = 0;

// Value of channel c at (row, col) of item i; kNodata in a block so some tiles are invalid.
uint16_t PixelValue(int64_t i, int64_t c, int64_t r, int64_t col) {
  if (r < 8 && col < 8) return kNodata;  // top-left corner of every item is nodata
  return static_cast<uint16_t>(1 + (i * 7919 + c * 104729 + r * 131 + col * 17) % 4000);
}
int32_t LabelValue(int64_t i, int64_t r, int64_t col) {
  return static_cast<int32_t>((r + col + i) % 5);
}

class MemorySource : public Source {
 public:
  MemorySource(std::vector<std::pair<int64_t, int64_t>> sizes, int fail_item = -1)
      : fail_item_(fail_item) {
    schema_.x = {DType::kU16, {"b1", "b2"}, {"dn", "dn"}, {kNodata, kNodata}};
    schema_.y = FieldInfo{DType::kI32, {"label"}, {}, {}};
    for (size_t i = 0; i < sizes.size(); ++i) {
      ItemInfo info;
      info.name = "item" + std::to_string(i);
      info.height = sizes[i].first;
      info.width = sizes[i].second;
      info.meta = {{"t", static_cast<int>(i)}};
      items_.push_back(info);
    }
  }
  // Input files each item names for the provenance hashes.
  void SetFiles(const std::vector<std::string>& files) {
    for (auto& item : items_) item.files = files;
  }
  std::string kind() const override { return "memory"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(items_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_[index]; }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override {
    return std::unique_ptr<ItemReader>(new Reader(this));
  }
  void AddTileMeta(int64_t item, const Region& w, nlohmann::json* meta) const override {
    (*meta)["extra"] = item * 1000 + w.row;
  }
  nlohmann::json ManifestAttrs() const override { return {{"memory", true}}; }

 private:
  class Reader : public ItemReader {
   public:
    explicit Reader(const MemorySource* s) : s_(s) {}
    Status Read(int64_t item, const Region& region, RegionData* out) override {
      if (item == s_->fail_item_ && region.row > 0)
        return DataLoss("item", item, ": cannot read row ", region.row);
      out->x = Array(DType::kU16, {2, region.height, region.width});
      out->y = Array(DType::kI32, {1, region.height, region.width});
      auto x = out->x.As<uint16_t>();
      auto y = out->y.As<int32_t>();
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t r = 0; r < region.height; ++r)
          for (int64_t col = 0; col < region.width; ++col)
            x[(c * region.height + r) * region.width + col] =
                PixelValue(item, c, region.row + r, region.col + col);
      for (int64_t r = 0; r < region.height; ++r)
        for (int64_t col = 0; col < region.width; ++col)
          y[r * region.width + col] = LabelValue(item, region.row + r, region.col + col);
      return Status::Ok();
    }

   private:
    const MemorySource* s_;
  };

  SourceSchema schema_;
  std::vector<ItemInfo> items_;
  int fail_item_;
};

DriverOptions Options(const std::string& out, int threads) {
  DriverOptions o;
  o.out = out;
  o.tile = TileSpec{false, 8, 8, 8, 8, EdgePolicy::kShift};
  o.codec = *ParseCodec("zstd");
  o.shard_target_bytes = 16 << 10;
  o.threads = threads;
  o.hash_sources = false;
  return o;
}

TEST(Driver, TilesEqualDirectCutAndStatisticsMatchDirectComputation) {
  testing::TempDir dir;
  MemorySource source({{20, 30}, {16, 16}, {9, 40}});
  auto summary = RunIngest(source, Options(dir.path(), 2));
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto store = Store::Open(LocalStorage(), dir.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->size(), summary->tiles_written);
  // Shift: rows {0,8,12} x cols {0,8,16,22} = 12, {0,8}x{0,8} = 4, {0,1}x{0,8,...,32} = 10;
  // the top-left tile of each item is all nodata and dropped.
  EXPECT_EQ(summary->tiles_considered, 12u + 4u + 10u);
  EXPECT_EQ(summary->tiles_dropped, 3u);
  std::vector<ChannelStats> direct(2);
  for (uint64_t i = 0; i < (*store)->size(); ++i) {
    auto sample = (*store)->Read(i);
    ASSERT_TRUE(sample.ok());
    const int64_t item = sample->meta.at("item");
    const auto w = sample->meta.at("window");
    EXPECT_EQ(sample->meta.at("t"), item);
    EXPECT_EQ(sample->meta.at("extra"), item * 1000 + w[0].get<int64_t>());
    const Array* x = sample->Find("x");
    const Array* y = sample->Find("y");
    ASSERT_TRUE(x && y);
    ASSERT_EQ(x->shape, (std::vector<int64_t>{2, 8, 8}));
    auto xv = x->As<uint16_t>();
    auto yv = y->As<int32_t>();
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t r = 0; r < 8; ++r)
        for (int64_t col = 0; col < 8; ++col) {
          const uint16_t want =
              PixelValue(item, c, w[0].get<int64_t>() + r, w[1].get<int64_t>() + col);
          ASSERT_EQ(xv[(c * 8 + r) * 8 + col], want);
          if (want != kNodata)
            direct[c].Add(want);
          else
            direct[c].AddInvalid();
          if (c == 0) {
            ASSERT_EQ(yv[r * 8 + col],
                      LabelValue(item, w[0].get<int64_t>() + r, w[1].get<int64_t>() + col));
          }
        }
  }
  const FieldSchema* xs = (*store)->manifest().FindField("x");
  ASSERT_NE(xs, nullptr);
  ASSERT_EQ(xs->stats.size(), 2u);
  for (int c = 0; c < 2; ++c) {
    EXPECT_EQ(xs->stats[c].count, direct[c].count);
    EXPECT_EQ(xs->stats[c].total, direct[c].total);
    EXPECT_NEAR(xs->stats[c].mean, direct[c].mean, 1e-9 * direct[c].mean);
    EXPECT_NEAR(xs->stats[c].std(), direct[c].std(), 1e-9 * direct[c].std());
    EXPECT_EQ(xs->stats[c].min, direct[c].min);
    EXPECT_EQ(xs->stats[c].max, direct[c].max);
  }
  EXPECT_EQ((*store)->manifest().kind, "memory");
  EXPECT_EQ((*store)->manifest().attrs.at("memory"), true);
  EXPECT_EQ((*store)->manifest().attrs.at("ingest").at("tiles_dropped"), 3);
  VerifyReport report;
  EXPECT_TRUE(VerifyStore(*LocalStorage(), dir.path(), &report).ok());
}

TEST(Driver, SameRecordsAndBitIdenticalStatisticsForAnyThreadCount) {
  MemorySource source({{40, 33}, {25, 64}, {17, 17}, {64, 9}});
  testing::TempDir one_dir;
  ASSERT_TRUE(RunIngest(source, Options(one_dir.path(), 1)).ok());
  auto one = Store::Open(LocalStorage(), one_dir.path());
  ASSERT_TRUE(one.ok());
  for (int threads : {2, 4}) {
    SCOPED_TRACE(StrCat(threads, " threads"));
    testing::TempDir dir;
    ASSERT_TRUE(RunIngest(source, Options(dir.path(), threads)).ok());
    auto many = Store::Open(LocalStorage(), dir.path());
    ASSERT_TRUE(many.ok());
    // Each thread wrote shards of its own lane, listed in lane order.
    std::set<std::string> lanes;
    for (const auto& s : (*many)->manifest().shards)
      lanes.insert(s.file.substr(0, s.file.find("shard-")));
    EXPECT_EQ(lanes.size(), static_cast<size_t>(threads));
    ASSERT_EQ((*one)->size(), (*many)->size());
    for (uint64_t i = 0; i < (*one)->size(); ++i) {
      auto ra = (*one)->Read(i);
      auto rb = (*many)->Read(i);
      ASSERT_TRUE(ra.ok() && rb.ok());
      EXPECT_EQ(ra->fields[0].array.data, rb->fields[0].array.data);
      EXPECT_EQ(ra->fields[1].array.data, rb->fields[1].array.data);
      EXPECT_EQ(ra->meta, rb->meta);
    }
    const auto& fa = (*one)->manifest().fields;
    const auto& fb = (*many)->manifest().fields;
    for (size_t f = 0; f < fa.size(); ++f)
      for (size_t c = 0; c < fa[f].stats.size(); ++c) {
        EXPECT_EQ(fa[f].stats[c].mean, fb[f].stats[c].mean);  // bit-identical, not just close
        EXPECT_EQ(fa[f].stats[c].m2, fb[f].stats[c].m2);
        EXPECT_EQ(fa[f].stats[c].count, fb[f].stats[c].count);
        EXPECT_EQ(fa[f].stats[c].min, fb[f].stats[c].min);
        EXPECT_EQ(fa[f].stats[c].max, fb[f].stats[c].max);
      }
  }
}

TEST(Driver, FailureInOneLaneRemovesTheShardsEveryLaneFinished) {
  testing::TempDir dir;
  // Lane 1 (items 2 and 3) finishes 16 KiB shards of item 2 before item 3 fails.
  MemorySource source({{64, 64}, {64, 64}, {64, 64}, {64, 64}}, /*fail_item=*/3);
  DriverOptions o = Options(dir.path(), 2);
  o.codec = *ParseCodec("none");
  auto summary = RunIngest(source, o);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(summary.status().message().find("item3: cannot read row"), std::string::npos)
      << summary.status().ToString();
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    ADD_FAILURE() << "left behind: " << e.path();
  VerifyReport report;
  EXPECT_EQ(VerifyStore(*LocalStorage(), dir.path(), &report).code(), StatusCode::kNotFound);
}

TEST(Driver, SourceHashesInTheProvenanceEqualAOneShotHashOfEachFile) {
  testing::TempDir dir;
  // One file larger than a 64 MiB hashing piece (and not a multiple of it), one small.
  const std::string big = dir.Sub("big.bin"), small = dir.Sub("small.bin");
  std::vector<uint8_t> big_bytes((64u << 20) + 1234), small_bytes(100);
  for (size_t i = 0; i < big_bytes.size(); ++i) big_bytes[i] = static_cast<uint8_t>(i * 31 >> 7);
  for (size_t i = 0; i < small_bytes.size(); ++i) small_bytes[i] = static_cast<uint8_t>(i);
  testing::WriteFile(big, big_bytes);
  testing::WriteFile(small, small_bytes);
  MemorySource source({{16, 16}});
  source.SetFiles({big, small});
  DriverOptions o = Options(dir.Sub("store"), 2);
  o.hash_sources = true;
  auto summary = RunIngest(source, o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto store = Store::Open(LocalStorage(), dir.Sub("store"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const auto& sources = (*store)->manifest().provenance.at("sources");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].at("path"), big);
  EXPECT_EQ(sources[0].at("bytes"), big_bytes.size());
  EXPECT_EQ(sources[0].at("xxh3"), HashToHex(Hash64(big_bytes)));
  EXPECT_EQ(sources[1].at("xxh3"), HashToHex(Hash64(small_bytes)));
}

// A file changed after its early hash was taken shows the early hash: the driver took it.
TEST(Driver, TakesEarlySourceHashesAndHashesTheFilesTheyLack) {
  testing::TempDir dir;
  const std::string early_file = dir.Sub("early.tif"), late_file = dir.Sub("late.tif");
  const std::vector<uint8_t> before(5000, 4), after(5000, 5), late(300, 6);
  testing::WriteFile(early_file, before);
  testing::WriteFile(late_file, late);
  auto early = std::make_shared<EarlySourceHashes>(
      std::vector<std::string>{std::filesystem::relative(early_file).string()});
  std::atomic<bool> stop{false};
  ASSERT_TRUE(early->Take(early_file, stop).has_value());  // hashed: now change the file
  testing::WriteFile(early_file, after);

  MemorySource source({{16, 16}});
  source.SetFiles({early_file, late_file});
  DriverOptions o = Options(dir.Sub("store"), 2);
  o.hash_sources = true;
  o.early_hashes = early;
  auto summary = RunIngest(source, o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto store = Store::Open(LocalStorage(), o.out);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const auto& sources = (*store)->manifest().provenance.at("sources");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].at("path"), early_file);
  EXPECT_EQ(sources[0].at("xxh3"), HashToHex(Hash64(before)));  // the early hash, not re-read
  EXPECT_EQ(sources[1].at("path"), late_file);
  EXPECT_EQ(sources[1].at("xxh3"), HashToHex(Hash64(late)));
}

TEST(Driver, PadFillsWithNodataAndCountsPaddingAsInvalid) {
  testing::TempDir dir;
  MemorySource source({{12, 12}});
  DriverOptions o = Options(dir.path(), 2);
  o.tile.edge = EdgePolicy::kPad;
  o.min_valid = 0.5;  // the corner tiles are 4x4 real of 8x8: 25% valid, dropped
  auto summary = RunIngest(source, o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->tiles_considered, 4u);
  // (0,0) all nodata; (0,8) and (8,0) 50% real; (8,8) 25%.
  EXPECT_EQ(summary->tiles_written, 2u);
  auto store = Store::Open(LocalStorage(), dir.path());
  ASSERT_TRUE(store.ok());
  auto s = (*store)->Read(0);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->meta.at("padded"), true);
  EXPECT_DOUBLE_EQ(s->meta.at("valid_fraction").get<double>(), 0.5);
  auto x = s->Find("x")->As<uint16_t>();
  EXPECT_EQ(x[0 * 8 + 7], kNodata);  // column 15 of row 0 is outside the item
}

TEST(Driver, FloatConversionTurnsInvalidIntoNaN) {
  testing::TempDir dir;
  MemorySource source({{16, 16}});
  DriverOptions o = Options(dir.path(), 1);
  o.x_dtype = DType::kF32;
  o.tile = TileSpec{false, 16, 16, 16, 16, EdgePolicy::kDrop};
  auto summary = RunIngest(source, o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto store = Store::Open(LocalStorage(), dir.path());
  ASSERT_TRUE(store.ok());
  auto s = (*store)->Read(0);
  ASSERT_TRUE(s.ok());
  const Array* x = s->Find("x");
  ASSERT_EQ(x->dtype, DType::kF32);
  EXPECT_TRUE(std::isnan(x->As<float>()[0]));
  EXPECT_EQ(x->As<float>()[16 * 8 + 8], static_cast<float>(PixelValue(0, 0, 8, 8)));
}

TEST(Driver, ReadErrorLeavesNoManifestAndNoShards) {
  testing::TempDir dir;
  MemorySource source({{16, 16}, {64, 64}, {16, 16}}, /*fail_item=*/1);
  auto summary = RunIngest(source, Options(dir.path(), 2));
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(summary.status().message().find("cannot read row"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("manifest.json")));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    ADD_FAILURE() << "left behind: " << e.path();
  VerifyReport report;
  EXPECT_FALSE(VerifyStore(*LocalStorage(), dir.path(), &report).ok());
}

TEST(Driver, AllTilesDroppedIsAnErrorWithoutManifest) {
  testing::TempDir dir;
  MemorySource source({{8, 8}});  // exactly the nodata corner
  auto summary = RunIngest(source, Options(dir.path(), 1));
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(summary.status().message().find("no tiles"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("manifest.json")));
}

TEST(Driver, TileLargerThanItemFailsBeforeTouchingTheStore) {
  testing::TempDir dir;
  MemorySource source({{16, 16}});
  DriverOptions o = Options(dir.Sub("store"), 1);
  o.tile = TileSpec{false, 32, 32, 32, 32, EdgePolicy::kShift};
  auto summary = RunIngest(source, o);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(summary.status().message().find("item0"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("store")));
}

// A float source without nodata: NaN is its only invalid value, and one value is infinite.
class NanFloatSource : public Source {
 public:
  static float Value(int64_t item, int64_t c, int64_t r, int64_t col) {
    if (c == 1 && r < 4 && col < 8) return std::numeric_limits<float>::quiet_NaN();
    if (c == 2 && r == col) return std::numeric_limits<float>::quiet_NaN();
    if (c == 0 && r == 9 && col == 3) return std::numeric_limits<float>::infinity();
    return 1000.0f * static_cast<float>(c) + 0.25f * static_cast<float>(r * 16 + col + item);
  }
  NanFloatSource() {
    schema_.x = {DType::kF32, {"a", "b", "c"}, {}, {}};
    for (int i = 0; i < 2; ++i) items_.push_back({"item" + std::to_string(i), 16, 16, {}, {}});
  }
  std::string kind() const override { return "nan-float"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(items_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_[index]; }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override {
    return std::unique_ptr<ItemReader>(new Reader());
  }

 private:
  class Reader : public ItemReader {
   public:
    Status Read(int64_t item, const Region& region, RegionData* out) override {
      out->x = Array(DType::kF32, {3, region.height, region.width});
      auto x = out->x.As<float>();
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t r = 0; r < region.height; ++r)
          for (int64_t col = 0; col < region.width; ++col)
            x[(c * region.height + r) * region.width + col] =
                Value(item, c, region.row + r, region.col + col);
      return Status::Ok();
    }
  };
  SourceSchema schema_;
  std::vector<ItemInfo> items_;
};

TEST(Driver, NanIsTheOnlyInvalidFloatValueInFractionsDropsAndStatistics) {
  for (const DType out : {DType::kF32, DType::kF64}) {
    testing::TempDir dir;
    NanFloatSource source;
    DriverOptions o = Options(dir.path(), 2);
    o.tile = TileSpec{false, 8, 8, 8, 8, EdgePolicy::kDrop};
    o.x_dtype = out;
    o.min_valid = 0.5;
    auto summary = RunIngest(source, o);
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    auto store = Store::Open(LocalStorage(), dir.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // Direct computation: which tiles pass, with what valid fraction, and the statistics of the
    // kept tiles' values.
    std::vector<ChannelStats> direct(3);
    std::vector<double> fractions;
    for (int64_t item = 0; item < 2; ++item)
      for (int64_t r0 = 0; r0 < 16; r0 += 8)
        for (int64_t c0 = 0; c0 < 16; c0 += 8) {
          int64_t all_valid = 0;
          for (int64_t r = r0; r < r0 + 8; ++r)
            for (int64_t col = c0; col < c0 + 8; ++col) {
              bool ok = true;
              for (int64_t c = 0; c < 3; ++c)
                ok &= !std::isnan(NanFloatSource::Value(item, c, r, col));
              all_valid += ok;
            }
          const double fraction = all_valid / 64.0;
          if (fraction < 0.5) continue;
          fractions.push_back(fraction);
          for (int64_t c = 0; c < 3; ++c)
            for (int64_t r = r0; r < r0 + 8; ++r)
              for (int64_t col = c0; col < c0 + 8; ++col) {
                const float v = NanFloatSource::Value(item, c, r, col);
                if (std::isnan(v))
                  direct[c].AddInvalid();
                else
                  direct[c].Add(v);
              }
        }
    ASSERT_EQ((*store)->size(), fractions.size()) << DTypeName(out);
    EXPECT_EQ(summary->tiles_dropped, 8u - fractions.size());
    for (uint64_t i = 0; i < (*store)->size(); ++i) {
      auto sample = (*store)->Read(i);
      ASSERT_TRUE(sample.ok());
      EXPECT_EQ(sample->Find("x")->dtype, out);
      EXPECT_DOUBLE_EQ(sample->meta.at("valid_fraction").get<double>(), fractions[i]) << i;
    }
    const FieldSchema* xs = (*store)->manifest().FindField("x");
    ASSERT_NE(xs, nullptr);
    EXPECT_EQ(xs->stats[0].max, std::numeric_limits<double>::infinity());
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(xs->stats[c].count, direct[c].count) << "channel " << c;
      EXPECT_EQ(xs->stats[c].total, direct[c].total);
      EXPECT_EQ(xs->stats[c].min, direct[c].min);
      if (c == 0) continue;  // the infinity makes channel 0's mean infinite
      EXPECT_NEAR(xs->stats[c].mean, direct[c].mean, 1e-12 * direct[c].mean);
      EXPECT_NEAR(xs->stats[c].m2, direct[c].m2, 1e-9 * direct[c].m2);
      EXPECT_EQ(xs->stats[c].max, direct[c].max);
    }
  }
}

}  // namespace
}  // namespace tilestage::ingest
