// The manifest reader refuses every malformed manifest with DataLoss naming manifest.json and the
// field, and reads a valid one: a table of single edits of a real store's manifest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/tiling/manifest_mutations.h"
#include "tests/tiling/store_fixture.h"
#include "tiling/manifest.h"

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

}  // namespace
}  // namespace tilestage
