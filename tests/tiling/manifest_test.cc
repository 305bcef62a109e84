// The manifest reader refuses every malformed manifest with DataLoss naming manifest.json and the
// field, and reads a valid one: a table of single edits of a real store's manifest.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/tiling/manifest_mutations.h"
#include "tests/tiling/store_fixture.h"
#include "tiling/json_read.h"
#include "tiling/manifest.h"
#include "tiling/storage.h"

namespace tilestage {
namespace {

using ::testing::HasSubstr;
using testing::ManifestMutation;

class ManifestReaderTest : public ::testing::TestWithParam<ManifestMutation> {
 protected:
  void SetUp() override {
    testing::TestStoreSpec spec;
    spec.synth.classes = 3;
    testing::WriteTestStore(storage_, "/s", spec);
    auto bytes = storage_->ReadAll("/s/manifest.json");
    ASSERT_TRUE(bytes.ok());
    valid_ = nlohmann::json::parse(bytes->begin(), bytes->end());
    valid_["provenance"] = MakeProvenance({"tilestage", "synth"});
  }
  Result<Manifest> Read(const std::string& text) {
    EXPECT_TRUE(storage_->WriteAtomic("/s/manifest.json",
                                      {reinterpret_cast<const uint8_t*>(text.data()), text.size()})
                    .ok());
    return ReadManifest(*storage_, "/s");
  }

  std::shared_ptr<Storage> storage_ = NewMemoryStorage();
  nlohmann::json valid_;
};

TEST_P(ManifestReaderTest, IsDataLossNamingTheFileAndTheField) {
  ASSERT_TRUE(Read(valid_.dump()).ok()) << "the unedited manifest must read";
  nlohmann::json j = valid_;
  GetParam().edit(j);
  auto m = Read(j.dump());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(), HasSubstr("manifest /s/manifest.json: "));
  EXPECT_THAT(m.status().message(), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(Mutations, ManifestReaderTest,
                         ::testing::ValuesIn(testing::ManifestMutations()),
                         [](const ::testing::TestParamInfo<ManifestMutation>& info) {
                           return info.param.name;
                         });

TEST(ManifestReader, AttrsNestedAMillionDeepIsDataLossNotAStackOverflow) {
  auto storage = NewMemoryStorage();
  testing::WriteTestStore(storage, "/s");
  auto bytes = storage->ReadAll("/s/manifest.json");
  ASSERT_TRUE(bytes.ok());
  std::string text(bytes->begin(), bytes->end());
  const std::string attrs = "\"attrs\": {}";
  const size_t at = text.find(attrs);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, attrs.size(), "\"attrs\": {\"deep\": " + testing::DeeplyNested(1000000) + "}");
  ASSERT_TRUE(
      storage->WriteAtomic("/s/manifest.json", {reinterpret_cast<const uint8_t*>(text.data()),
                                                text.size()})
          .ok());
  auto m = ReadManifest(*storage, "/s");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(),
              HasSubstr("manifest /s/manifest.json: nested more than 64 levels deep"));
}

TEST(ManifestReader, AttrsNestedModeratelyStillRead) {
  auto storage = NewMemoryStorage();
  Manifest written = testing::WriteTestStore(storage, "/s");
  nlohmann::json deep = nlohmann::json::parse(testing::DeeplyNested(40));
  written.attrs["deep"] = deep;
  ASSERT_TRUE(WriteManifest(*storage, "/s", written).ok());
  auto m = ReadManifest(*storage, "/s");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->attrs["deep"], deep);
  EXPECT_EQ(m->shards.size(), written.shards.size());
}

TEST(ManifestReader, InvalidJsonIsDataLossNamingTheFile) {
  auto storage = NewMemoryStorage();
  testing::WriteTestStore(storage, "/s");
  const std::string text = "{\"format\": \"tilestage\", ";
  ASSERT_TRUE(
      storage->WriteAtomic("/s/manifest.json", {reinterpret_cast<const uint8_t*>(text.data()),
                                                text.size()})
          .ok());
  auto m = ReadManifest(*storage, "/s");
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(), HasSubstr("manifest /s/manifest.json: not valid JSON"));
}

TEST(ManifestReader, ManifestLargerThanAnyStoreNeedsIsRefusedBeforeReading) {
  const std::string dir = ::testing::TempDir() + "/huge_manifest";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/manifest.json";
  std::ofstream(path).close();
  // Sparse: the reader must refuse it from its size, without reading 600 MiB.
  ASSERT_EQ(::truncate(path.c_str(), 600ll << 20), 0);
  auto m = ReadManifest(*LocalStorage(), dir);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(),
              HasSubstr("manifest " + path + ": 629145600 bytes, more than the 536870912"));
  std::filesystem::remove_all(dir);
}

TEST(BoundedJson, InvalidJsonNamesThePlaceAndTheByte) {
  auto j = ParseBoundedJson(std::string("{\"a\": [1, 2,, 3]}"), "checkpoint /c/state.json");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(j.status().message(), "checkpoint /c/state.json: not valid JSON at byte 13");
}

TEST(BoundedJson, NestingAtTheBoundReadsAndOneDeeperIsRefused) {
  auto at_bound = ParseBoundedJson(testing::DeeplyNested(kMaxJsonDepth), "x");
  ASSERT_TRUE(at_bound.ok()) << at_bound.status().ToString();
  EXPECT_EQ(*at_bound, nlohmann::json::parse(testing::DeeplyNested(kMaxJsonDepth)));
  auto deeper = ParseBoundedJson(testing::DeeplyNested(kMaxJsonDepth + 1), "x");
  ASSERT_FALSE(deeper.ok());
  EXPECT_EQ(deeper.status().message(), "x: nested more than 64 levels deep");
}

TEST(BoundedJson, CheckGivesTheParsersVerdictOnTheSameBytes) {
  const std::vector<std::string> documents = {"{\"a\": [1, 2.5, \"x\", null, true]}",
                                              "{\"a\": [1, 2,, 3]}",
                                              "[1] 2",
                                              "",
                                              "{\"a\":",
                                              testing::DeeplyNested(kMaxJsonDepth),
                                              testing::DeeplyNested(kMaxJsonDepth + 1)};
  for (const std::string& text : documents) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(text.data()),
                                         text.size());
    const Status checked = CheckBoundedJson(bytes, "x");
    const Status parsed = ParseBoundedJson(bytes, "x").status();
    EXPECT_EQ(checked.code(), parsed.code()) << text;
    EXPECT_EQ(checked.message(), parsed.message()) << text;
    if (text.size() < 100) {  // nlohmann's own verdict where the depth bound does not apply
      EXPECT_EQ(checked.ok(), nlohmann::json::accept(text)) << text;
    }
  }
}

}  // namespace
}  // namespace tilestage
