// The pure-numpy reader (tools/python/tilestage_reader.py), run with Debian's python3, against the
// C++ reader: a store with every dtype, six codec variants, two alignments and many shards;
// every value of every record is compared bitwise with .npy files written from Store::Read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "tests/common/test_util.h"
#include "tiling/npy.h"
#include "tiling/store.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

struct WriterCase {
  const char* prefix;
  const char* codec;
  uint32_t alignment;
};
constexpr WriterCase kWriters[] = {{"a-", "zstd:3+shuffle", 4096}, {"b-", "lz4", 4096},
                                   {"c-", "none+shuffle", 1},      {"d-", "none", 4096},
                                   {"e-", "lz4+shuffle", 1},       {"f-", "zstd:1", 4096}};
constexpr int kRecordsPerWriter = 5;

template <typename T>
Array RandomArray(std::vector<int64_t> shape, uint64_t seed) {
  Array a(DTypeOf<T>(), std::move(shape));
  auto v = a.As<T>();
  for (size_t i = 0; i < v.size(); ++i) {
    const uint64_t bits = CounterHash(seed, 99, i);
    if constexpr (std::is_floating_point_v<T>) {
      v[i] = static_cast<T>(100.0 * (CounterUniform(seed, 98, i) - 0.5) + std::sin(i * 0.1));
    } else {
      std::memcpy(&v[i], &bits, sizeof(T));
    }
  }
  return a;
}

// Record k: every dtype, shapes that vary with k, special float values, nested metadata.
Sample MixedSample(uint64_t k) {
  Sample s;
  Array x = MakeSynthSample({{2, 5 + static_cast<int64_t>(k % 3), 7}, DType::kF32, 3, 0}, k)
                .fields[0]
                .array;
  x.As<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  x.As<float>()[1] = -0.0f;
  x.As<float>()[2] = std::numeric_limits<float>::infinity();
  s.Add("x", std::move(x));
  s.Add("y", Array::FromVector<int32_t>({1}, {static_cast<int32_t>(k % 4)}));
  s.Add("u8", RandomArray<uint8_t>({4, 3}, k));
  s.Add("i8", RandomArray<int8_t>({5}, k + 100));
  s.Add("u16", RandomArray<uint16_t>({2, 6}, k + 200));
  s.Add("i16", RandomArray<int16_t>({7}, k + 300));
  s.Add("u32", RandomArray<uint32_t>({2, 2}, k + 400));
  s.Add("f64", RandomArray<double>({3, 1}, k + 500));
  s.Add("scalar", Array::FromVector<double>({}, {k * 0.25}));
  s.meta = {{"index", k},
            {"source", "file_" + std::to_string(k) + ".tif"},
            {"window", {k, k + 1, 7, 7}},
            {"nested", {{"t", 1.5}, {"s", "\xc3\xa9"}}}};
  return s;
}

// Plain writes: reference files need no fsync, and hundreds of them would slow the test.
void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

class PythonReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_.Sub("store");
    ref_ = tmp_.Sub("ref");
    ASSERT_TRUE(LocalStorage()->CreateDirs(ref_).ok());
    Manifest manifest;
    manifest.kind = "test";
    uint64_t k = 0;
    for (const WriterCase& w : kWriters) {
      StoreWriterOptions options;
      options.codec = *ParseCodec(w.codec);
      options.alignment = w.alignment;
      options.shard_prefix = w.prefix;
      options.shard_target_bytes = w.alignment == 1 ? 2500 : 9000;  // 2-3 records per shard
      auto writer = StoreWriter::Create(LocalStorage(), store_, options);
      ASSERT_TRUE(writer.ok()) << writer.status().ToString();
      for (int r = 0; r < kRecordsPerWriter; ++r)
        ASSERT_TRUE((*writer)->Append(MixedSample(k++)).ok());
      auto shards = (*writer)->Close();
      ASSERT_TRUE(shards.ok());
      ASSERT_GE(shards->size(), 2u) << w.prefix;
      manifest.shards.insert(manifest.shards.end(), shards->begin(), shards->end());
    }
    for (const Field& f : MixedSample(0).fields)
      manifest.fields.push_back({f.name,
                                 f.array.dtype,
                                 f.name == "x" ? std::vector<int64_t>{} : f.array.shape,
                                 {},
                                 {},
                                 {}});
    ASSERT_TRUE(WriteManifest(*LocalStorage(), store_, manifest).ok());

    // Reference: what the C++ reader returns, as .npy and JSON.
    auto store = Store::Open(LocalStorage(), store_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_EQ((*store)->size(), k);
    for (uint64_t i = 0; i < k; ++i) {
      auto sample = (*store)->Read(i);
      ASSERT_TRUE(sample.ok()) << sample.status().ToString();
      ASSERT_EQ(sample->fields[2].array.data, MixedSample(i).fields[2].array.data);
      for (const Field& f : sample->fields) {
        WriteFile(StrCat(ref_, "/", i, "_", f.name, ".npy"), EncodeNpy(f.array));
        expected_values_ += f.array.NumElements();
        ++expected_fields_;
      }
      const std::string meta = sample->meta.dump();
      WriteFile(StrCat(ref_, "/", i, ".json"), {meta.begin(), meta.end()});
    }
    records_ = k;
  }

  testing::CommandResult RunCheck(const std::string& args) {
    return testing::RunCommand(StrCat(
        "TILESTAGE_PYTHON_DIR=", testing::SourceDir(), "/tools/python ", testing::PythonPath(), " ",
        testing::SourceDir(), "/tests/tiling/python_reader_check.py ", args));
  }

  TempDir tmp_;
  std::string store_, ref_;
  uint64_t records_ = 0;
  int64_t expected_values_ = 0, expected_fields_ = 0;
};

TEST_F(PythonReaderTest, ReadsEveryValueTheCppReaderReads) {
  auto r = RunCheck(StrCat("compare ", store_, " ", ref_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(StrCat("compared records=", records_, " fields=",
                                         expected_fields_, " values=", expected_values_)));
}

TEST_F(PythonReaderTest, FlippedRecordByteRaisesDataLossNamingShardAndRecord) {
  const std::string shard = store_ + "/b-shard-00001.tss";
  auto reader = ShardReader::Open(*LocalStorage(), shard);
  ASSERT_TRUE(reader.ok());
  const IndexEntry e = (*reader)->entry(1);
  testing::FlipByte(shard, static_cast<long>(e.offset + e.stored_size - 3));
  auto store = Store::Open(LocalStorage(), store_);
  ASSERT_TRUE(store.ok());
  uint64_t global = 0;
  for (size_t s = 0; s < (*store)->num_shards(); ++s)
    if ((*store)->shard(s).path() == shard) global = (*store)->shard_offset(s) + 1;
  ASSERT_GT(global, 0u);
  auto r = RunCheck(StrCat("expect-error ", store_, " ", global));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr(StrCat("DataLossError: shard ", shard, ": record 1: checksum mismatch")));
}

TEST_F(PythonReaderTest, TruncatedShardRaisesDataLossNamingShard) {
  const std::string shard = store_ + "/e-shard-00000.tss";
  testing::TruncateFile(shard, testing::FileSize(shard) - 10);
  auto r = RunCheck(StrCat("open-error ", store_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(StrCat("DataLossError: shard ", shard, ": truncated")));
}

TEST_F(PythonReaderTest, ShardNameEscapingTheStoreRaisesDataLoss) {
  // A valid copy of the shard sits beside the store, where "../" would lead.
  const std::string shard = "e-shard-00000.tss";
  std::filesystem::copy_file(store_ + "/" + shard, tmp_.Sub(shard));
  const std::string manifest = store_ + "/manifest.json";
  nlohmann::json m = nlohmann::json::parse(std::ifstream(manifest));
  m["shards"][0]["file"] = "../" + shard;
  std::ofstream(manifest) << m.dump();
  auto r = RunCheck(StrCat("open-error ", store_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(StrCat("DataLossError: ", manifest, ": shard file '../", shard,
                                         "' is not a plain file name inside the store")));
}

TEST_F(PythonReaderTest, MissingStoreDirectoryRaisesStoreNotFound) {
  auto r = RunCheck(StrCat("open-error ", tmp_.Sub("nowhere")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(StrCat("StoreNotFoundError: store directory ",
                                         tmp_.Sub("nowhere"), " does not exist")));
}

TEST_F(PythonReaderTest, TorchDatasetReturnsTheSameValues) {
  auto r = RunCheck(StrCat("torch ", store_, " ", ref_));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr(StrCat("torch compared records=", records_, " fields=", expected_fields_)));
}

}  // namespace
}  // namespace tilestage
