// Shard files: round trips of records with several fields and metadata, alignment, and the byte
// layout checked field by field against tiling/FORMAT.md with libxxhash as the independent hash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#define XXH_INLINE_ALL
#include <sys/mman.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "tests/common/test_util.h"
#include "tiling/shard.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

using ::testing::HasSubstr;

template <typename T>
T Load(const std::vector<uint8_t>& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

uint64_t Xxh3(const uint8_t* p, size_t n) { return XXH3_64bits(p, n); }

// A sample with three fields of different dtypes and ranks (including a 0-d scalar), and nested
// metadata.
Sample MixedSample(uint64_t i) {
  Sample s = MakeSynthSample({{3, 8 + static_cast<int64_t>(i % 3), 8}, DType::kF32, 9, 0}, i);
  s.Add("y", Array::FromVector<int32_t>({2}, {static_cast<int32_t>(i), -static_cast<int32_t>(i)}));
  s.Add("scalar", Array::FromVector<double>({}, {0.5 * static_cast<double>(i)}));
  s.Add("mask", Array::FromVector<uint8_t>({2, 2}, {1, 0, 0, static_cast<uint8_t>(i)}));
  s.meta = {{"source", "tile_" + std::to_string(i) + ".tif"},
            {"window", {i, 2 * i, 8, 8}},
            {"time", "2020-01-01T00:00:00Z"},
            {"nested", {{"ok", true}, {"unicode", "\xc3\xa9t\xc3\xa9"}}}};
  return s;
}

void ExpectSameSample(const Sample& a, const Sample& b) {
  ASSERT_EQ(a.fields.size(), b.fields.size());
  for (size_t k = 0; k < a.fields.size(); ++k) {
    EXPECT_EQ(a.fields[k].name, b.fields[k].name);
    EXPECT_EQ(a.fields[k].array.dtype, b.fields[k].array.dtype);
    EXPECT_EQ(a.fields[k].array.shape, b.fields[k].array.shape);
    EXPECT_EQ(a.fields[k].array.data, b.fields[k].array.data) << a.fields[k].name;
  }
  EXPECT_EQ(a.meta, b.meta);
}

struct WrittenShard {
  std::vector<Sample> samples;
  ShardInfo info;
};

WrittenShard WriteShard(Storage& storage, const std::string& path, const CodecSpec& codec,
                        uint32_t alignment, int n) {
  WrittenShard out;
  auto writer = ShardWriter::Create(storage, path, {alignment});
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  for (int i = 0; i < n; ++i) {
    out.samples.push_back(MixedSample(i));
    auto rec = EncodeRecord(out.samples.back(), codec);
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_TRUE((*writer)->Append(*rec).ok());
  }
  auto info = (*writer)->Finish();
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  out.info = *info;
  return out;
}

class ShardRoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ShardRoundTripTest, FieldsShapesAndMetadataArePreserved) {
  auto storage = NewMemoryStorage();
  const CodecSpec codec = *ParseCodec(GetParam());
  WrittenShard w = WriteShard(*storage, "/a.tss", codec, kDefaultAlignment, 7);
  EXPECT_EQ(w.info.file, "a.tss");
  EXPECT_EQ(w.info.records, 7u);
  auto reader = ShardReader::Open(*storage, "/a.tss");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_EQ((*reader)->num_records(), 7u);
  EXPECT_EQ((*reader)->file_size(), w.info.bytes);
  EXPECT_EQ(*(*reader)->HashFile(), w.info.hash);
  for (uint64_t i = 0; i < 7; ++i) {
    auto sample = (*reader)->Read(i);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    ExpectSameSample(*sample, w.samples[i]);
    EXPECT_EQ((*reader)->entry(i).codec, codec.codec);
    EXPECT_EQ((*reader)->entry(i).shuffled, codec.shuffle);
  }
}

IndexEntry EntryFor(const EncodedRecord& rec) {
  IndexEntry e;
  e.stored_size = rec.stored.size();
  e.raw_size = rec.raw_size;
  e.checksum = rec.checksum;
  e.codec = rec.codec.codec;
  e.shuffled = rec.codec.shuffle;
  return e;
}

// The loader's in-place view of a record shows what the decoder reads, and an uncompressed,
// unshuffled field is a span into the stored bytes themselves (no copy).
TEST_P(ShardRoundTripTest, RecordViewLocatesTheFieldsThatDecodeRecordReads) {
  const CodecSpec codec = *ParseCodec(GetParam());
  std::vector<FieldView> views;
  std::vector<std::vector<uint8_t>> scratch;
  for (uint64_t i = 0; i < 3; ++i) {
    const Sample sample = MixedSample(i);
    auto rec = EncodeRecord(sample, codec);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    const IndexEntry e = EntryFor(*rec);
    ASSERT_TRUE(ParseRecordView(rec->stored, e, "record", &views, &scratch).ok());
    ASSERT_EQ(views.size(), sample.fields.size());
    for (size_t k = 0; k < views.size(); ++k) {
      const Field& f = sample.fields[k];
      EXPECT_EQ(views[k].name, f.name);
      EXPECT_EQ(views[k].dtype, f.array.dtype);
      EXPECT_EQ(views[k].shape, f.array.shape);
      EXPECT_EQ(std::vector<uint8_t>(views[k].data.begin(), views[k].data.end()), f.array.data)
          << f.name;
      const bool in_stored = views[k].data.data() >= rec->stored.data() &&
                             views[k].data.data() < rec->stored.data() + rec->stored.size();
      EXPECT_EQ(in_stored, codec.codec == Codec::kNone && !codec.shuffle) << f.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, ShardRoundTripTest,
                         ::testing::Values("none", "none+shuffle", "lz4", "lz4+shuffle", "zstd:1",
                                           "zstd:7+shuffle"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

TEST(Shard, EveryRecordOffsetIsAlignedTo4096) {
  auto storage = NewMemoryStorage();
  WriteShard(*storage, "/a.tss", {Codec::kZstd, 3, true}, 4096, 9);
  auto reader = ShardReader::Open(*storage, "/a.tss");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->alignment(), 4096u);
  for (uint64_t i = 0; i < 9; ++i) EXPECT_EQ((*reader)->entry(i).offset % 4096, 0u) << i;
  // The index starts on a boundary too.
  const uint64_t index_offset = (*reader)->file_size() - kFooterBytes - 9 * kIndexEntryBytes;
  EXPECT_EQ(index_offset % 4096, 0u);
}

TEST(Shard, AlignmentOnePacksRecordsBackToBack) {
  auto storage = NewMemoryStorage();
  WriteShard(*storage, "/a.tss", {Codec::kLz4, 3, false}, 1, 5);
  auto reader = ShardReader::Open(*storage, "/a.tss");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->entry(0).offset, kSuperblockBytes);
  for (uint64_t i = 1; i < 5; ++i)
    EXPECT_EQ((*reader)->entry(i).offset,
              (*reader)->entry(i - 1).offset + (*reader)->entry(i - 1).stored_size);
}

TEST(Shard, NonPowerOfTwoAlignmentIsInvalidArgument) {
  auto storage = NewMemoryStorage();
  auto writer = ShardWriter::Create(*storage, "/a.tss", {3000});
  EXPECT_EQ(writer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(writer.status().message(), HasSubstr("3000"));
}

TEST(Shard, EmptyShardOpensWithZeroRecords) {
  auto storage = NewMemoryStorage();
  WriteShard(*storage, "/e.tss", {}, 4096, 0);
  auto reader = ShardReader::Open(*storage, "/e.tss");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->num_records(), 0u);
  EXPECT_EQ((*reader)->Read(0).status().code(), StatusCode::kInvalidArgument);
}

TEST(Shard, AppendAfterFinishIsFailedPrecondition) {
  auto storage = NewMemoryStorage();
  auto writer = ShardWriter::Create(*storage, "/a.tss");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto rec = EncodeRecord(MixedSample(0), {});
  EXPECT_EQ((*writer)->Append(*rec).code(), StatusCode::kFailedPrecondition);
}

TEST(Shard, EncodeRecordRejectsBadSamples) {
  EXPECT_EQ(EncodeRecord(Sample{}, {}).status().code(), StatusCode::kInvalidArgument);
  Sample bad_size;
  Array a(DType::kF32, {2, 2});
  a.data.resize(5);
  bad_size.Add("x", a);
  auto r = EncodeRecord(bad_size, {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'x'"));
  Sample no_name;
  no_name.Add("", Array(DType::kU8, {1}));
  EXPECT_EQ(EncodeRecord(no_name, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(Shard, ReadIntoReusesOneSampleAcrossChangingLayouts) {
  auto storage = NewMemoryStorage();
  for (const char* codec : {"none", "zstd:3+shuffle"}) {
    SCOPED_TRACE(codec);
    WrittenShard w = WriteShard(*storage, "/r.tss", *ParseCodec(codec), 4096, 6);
    auto reader = ShardReader::Open(*storage, "/r.tss");
    ASSERT_TRUE(reader.ok());
    Sample reused;
    reused.Add("stale", Array(DType::kF64, {100}));  // replaced by the record's own fields
    for (uint64_t i : {0, 1, 2, 2, 5, 3, 0}) {       // shapes of x change with i % 3
      ASSERT_TRUE((*reader)->ReadInto(i, &reused).ok());
      ExpectSameSample(reused, w.samples[i]);
    }
  }
}

// An uncompressed field whose table entry claims more stored bytes than its raw size (the record
// grown to hold them, checksum recomputed) would overrun the field's buffer when copied by its
// stored size: the reader, the decoder and the loader's view all refuse it.
TEST(Shard, UncompressedFieldStoredLargerThanRawIsDataLoss) {
  Sample s;
  s.Add("m", Array::FromVector<uint8_t>({4}, {1, 2, 3, 4}));
  auto rec = EncodeRecord(s, {});
  ASSERT_TRUE(rec.ok());
  // Fixed header (16 bytes), then name length, "m", dtype, ndim, one dim, raw size: stored size.
  constexpr size_t kStoredSizeAt = 16 + 2 + 1 + 1 + 1 + 8 + 8;
  ASSERT_EQ(Load<uint64_t>(rec->stored, kStoredSizeAt), 4u);
  const uint64_t claimed = 8;
  std::memcpy(rec->stored.data() + kStoredSizeAt, &claimed, sizeof claimed);
  rec->stored.insert(rec->stored.end(), {9, 9, 9, 9});
  rec->checksum = Xxh3(rec->stored.data(), rec->stored.size());

  std::vector<FieldView> views;
  std::vector<std::vector<uint8_t>> scratch;
  Status view = ParseRecordView(rec->stored, EntryFor(*rec), "record 0", &views, &scratch);
  EXPECT_EQ(view.code(), StatusCode::kDataLoss);
  EXPECT_THAT(view.message(), HasSubstr("record 0: field 'm': stored 8 bytes, raw 4"));
  auto decoded = DecodeRecord(rec->stored, EntryFor(*rec), "record 0");
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);

  auto storage = NewMemoryStorage();
  auto writer = ShardWriter::Create(*storage, "/o.tss");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(*rec).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto reader = ShardReader::Open(*storage, "/o.tss");
  ASSERT_TRUE(reader.ok());
  auto read = (*reader)->Read(0);
  EXPECT_EQ(read.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("shard /o.tss: record 0: field 'm': stored 8"));
}

TEST(Shard, RecordMetadataNestedBeyondTheBoundIsDataLossNamingTheRecord) {
  Sample s = MixedSample(1);
  s.meta["deep"] = nlohmann::json::parse(std::string(100, '[') + std::string(100, ']'));
  auto rec = EncodeRecord(s, {});
  ASSERT_TRUE(rec.ok());
  auto decoded = DecodeRecord(rec->stored, EntryFor(*rec), "shard /d.tss: record 0");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(decoded.status().message(),
            "shard /d.tss: record 0: metadata: nested more than 64 levels deep");
}

TEST(Shard, VerifyNamesTheRecordWhoseMetadataIsNotJsonThoughItsChecksumMatches) {
  auto storage = NewMemoryStorage();
  auto writer = ShardWriter::Create(*storage, "/v.tss");
  ASSERT_TRUE(writer.ok());
  std::string broken_meta;
  for (int i = 0; i < 2; ++i) {
    Sample s = MixedSample(i);
    s.meta = {{"name", "tile"}};
    auto rec = EncodeRecord(s, {});
    ASSERT_TRUE(rec.ok());
    if (i == 1) {  // a writer's bug, not a flipped byte: the checksum covers the broken text
      const std::string key = "\"name\":";
      auto at = std::search(rec->stored.begin(), rec->stored.end(), key.begin(), key.end());
      ASSERT_NE(at, rec->stored.end());
      at[key.size() - 1] = ';';
      broken_meta = "{\"name\";\"tile\"}";
      rec->checksum = Xxh3(rec->stored.data(), rec->stored.size());
    }
    ASSERT_TRUE((*writer)->Append(*rec).ok());
  }
  ASSERT_TRUE((*writer)->Finish().ok());
  size_t bad_byte = 0;
  try {
    ADD_FAILURE() << "parsed " << nlohmann::json::parse(broken_meta);
  } catch (const nlohmann::json::parse_error& e) {
    bad_byte = e.byte;
  }
  ASSERT_GT(bad_byte, 0u);
  auto reader = ShardReader::Open(*storage, "/v.tss");
  ASSERT_TRUE(reader.ok());
  std::vector<Status> problems;
  ASSERT_TRUE((*reader)->VerifyRecords(&problems).ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].code(), StatusCode::kDataLoss);
  EXPECT_EQ(problems[0].message(),
            "shard /v.tss: record 1: metadata: not valid JSON at byte " + std::to_string(bad_byte));
}

// verify hashes a local shard through a mapping of it (MapForReading) and any other through reads
// into a buffer: both give the file's hash and name the same damaged record, here one whose
// byte lies in the third 1 MiB block.
TEST(Shard, VerifyRecordsMappedGivesTheSameHashAndProblemsAsRead) {
  testing::TempDir tmp;
  const std::string path = tmp.Sub("m.tss");
  auto writer = ShardWriter::Create(*LocalStorage(), path);
  ASSERT_TRUE(writer.ok());
  for (uint64_t i = 0; i < 24; ++i) {  // 24 records of 192 KiB
    auto rec = EncodeRecord(MakeSynthSample({{3, 128, 128}, DType::kF32, 5, 0}, i), {});
    ASSERT_TRUE(rec.ok());
    ASSERT_TRUE((*writer)->Append(*rec).ok());
  }
  ASSERT_TRUE((*writer)->Finish().ok());
  auto before = ShardReader::Open(*LocalStorage(), path);
  ASSERT_TRUE(before.ok());
  const IndexEntry damaged = (*before)->entry(13);
  ASSERT_GT(damaged.offset, 2u << 20);
  testing::FlipByte(path, static_cast<long>(damaged.offset + damaged.stored_size / 2));
  auto reader = ShardReader::Open(*LocalStorage(), path);
  ASSERT_TRUE(reader.ok());
  const auto file_hash = (*reader)->HashFile();
  ASSERT_TRUE(file_hash.ok());
  std::vector<Status> read_problems, mapped_problems;
  const auto read_hash = (*reader)->VerifyRecords(&read_problems);
  auto map = MapForReading(path, (*reader)->file_size());
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  const auto mapped_hash = (*reader)->VerifyRecords(&mapped_problems, *map);
  ::munmap(const_cast<uint8_t*>(map->data()), map->size());
  ASSERT_TRUE(read_hash.ok()) << read_hash.status().ToString();
  ASSERT_TRUE(mapped_hash.ok()) << mapped_hash.status().ToString();
  EXPECT_EQ(*read_hash, *file_hash);
  EXPECT_EQ(*mapped_hash, *file_hash);
  ASSERT_EQ(read_problems.size(), 1u);
  ASSERT_EQ(mapped_problems.size(), 1u);
  EXPECT_THAT(mapped_problems[0].message(), HasSubstr(path + ": record 13: checksum mismatch"));
  EXPECT_EQ(mapped_problems[0].message(), read_problems[0].message());
}

TEST(Shard, UncompressedRecordWithHeaderLargerThanFourKiBReadsBack) {
  auto storage = NewMemoryStorage();
  Sample s = MixedSample(1);
  s.meta["long"] = std::string(10000, 'm');  // header (metadata) > 4 KiB
  auto writer = ShardWriter::Create(*storage, "/h.tss");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(*EncodeRecord(s, {})).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto reader = ShardReader::Open(*storage, "/h.tss");
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Read(0);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameSample(*back, s);
}

TEST(Shard, UncompressedRecordLargerThanTheProbeReadsBack) {
  auto storage = NewMemoryStorage();
  Sample s = MakeSynthSample({{3, 100, 100}, DType::kU16, 5, 3}, 9);  // x 60 KB, then y
  auto writer = ShardWriter::Create(*storage, "/big.tss");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(*EncodeRecord(s, {})).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto reader = ShardReader::Open(*storage, "/big.tss");
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Read(0);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameSample(*back, s);
}

TEST(Shard, ReadWithoutChecksumVerificationReturnsTheSameSamples) {
  auto storage = NewMemoryStorage();
  for (const char* codec : {"none", "lz4+shuffle"}) {
    WrittenShard w = WriteShard(*storage, "/n.tss", *ParseCodec(codec), 4096, 4);
    auto reader = ShardReader::Open(*storage, "/n.tss");
    ASSERT_TRUE(reader.ok());
    ReadOptions options;
    options.verify_checksum = false;
    Sample sample;
    for (uint64_t i = 0; i < 4; ++i) {
      ASSERT_TRUE((*reader)->ReadInto(i, &sample, options).ok()) << codec;
      ExpectSameSample(sample, w.samples[i]);
    }
  }
}

class UncompressedDamageTest : public ::testing::TestWithParam<int> {};

// A flipped byte anywhere in an uncompressed record (header, first payload, far in the last
// payload) is a checksum mismatch naming the record, whichever read path handles it.
TEST_P(UncompressedDamageTest, FlippedByteIsChecksumMismatch) {
  auto storage = NewMemoryStorage();
  Sample s = MakeSynthSample({{2, 64, 64}, DType::kF32, 5, 3}, 1);
  auto writer = ShardWriter::Create(*storage, "/d.tss");
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*writer)->Append(*EncodeRecord(s, {})).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  std::vector<uint8_t> bytes = *storage->ReadAll("/d.tss");
  auto reader = ShardReader::Open(*storage, "/d.tss");
  ASSERT_TRUE(reader.ok());
  const IndexEntry e = (*reader)->entry(1);
  const uint64_t at = GetParam() >= 0 ? e.offset + GetParam() : e.offset + e.stored_size - 1;
  bytes[at] ^= 0x10;
  ASSERT_TRUE(storage->WriteAtomic("/d.tss", bytes).ok());
  reader = ShardReader::Open(*storage, "/d.tss");
  ASSERT_TRUE(reader.ok());
  auto back = (*reader)->Read(1);
  EXPECT_EQ(back.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(back.status().message(), HasSubstr("/d.tss: record 1: checksum mismatch"));
  EXPECT_TRUE((*reader)->Read(0).ok());
  EXPECT_TRUE((*reader)->Read(2).ok());
}

INSTANTIATE_TEST_SUITE_P(Positions, UncompressedDamageTest,
                         ::testing::Values(0, 5, 13, 20, 200, 5000, -1));

// The byte layout, decoded here by hand from FORMAT.md, with libxxhash's XXH3 as the checksum.
TEST(ShardFormat, BytesFollowFormatMd) {
  auto storage = NewMemoryStorage();
  WrittenShard w = WriteShard(*storage, "/f.tss", {Codec::kNone, 3, false}, 4096, 3);
  const std::vector<uint8_t> file = *storage->ReadAll("/f.tss");
  ASSERT_EQ(file.size(), w.info.bytes);
  EXPECT_EQ(Xxh3(file.data(), file.size()), w.info.hash);

  // Superblock.
  EXPECT_EQ(std::string(file.begin(), file.begin() + 8), std::string("TSSHARD\0", 8));
  EXPECT_EQ(Load<uint32_t>(file, 8), 1u);
  EXPECT_EQ(Load<uint32_t>(file, 12), 1u);
  EXPECT_EQ(Load<uint32_t>(file, 16), 4096u);
  for (size_t i = 20; i < 56; ++i) EXPECT_EQ(file[i], 0) << i;
  EXPECT_EQ(Load<uint64_t>(file, 56), Xxh3(file.data(), 56));

  // Footer.
  const size_t f = file.size() - 64;
  EXPECT_EQ(std::string(file.begin() + f, file.begin() + f + 8), "TSFOOTER");
  EXPECT_EQ(Load<uint32_t>(file, f + 8), 1u);
  EXPECT_EQ(Load<uint32_t>(file, f + 12), 48u);
  const uint64_t index_offset = Load<uint64_t>(file, f + 16);
  const uint64_t count = Load<uint64_t>(file, f + 24);
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(index_offset + count * 48 + 64, file.size());
  EXPECT_EQ(Load<uint64_t>(file, f + 32), Xxh3(file.data() + index_offset, count * 48));
  EXPECT_EQ(Load<uint64_t>(file, f + 56), Xxh3(file.data() + f, 56));

  for (uint64_t r = 0; r < count; ++r) {
    const size_t e = index_offset + r * 48;
    const uint64_t offset = Load<uint64_t>(file, e), stored = Load<uint64_t>(file, e + 8);
    const uint64_t raw = Load<uint64_t>(file, e + 16);
    EXPECT_EQ(offset % 4096, 0u);
    EXPECT_EQ(Load<uint64_t>(file, e + 24), Xxh3(file.data() + offset, stored));
    EXPECT_EQ(file[e + 32], 0);  // codec none
    EXPECT_EQ(file[e + 33], 0);  // not shuffled
    // Record header: magic, field table, metadata, then raw payloads (codec none).
    EXPECT_EQ(std::string(file.begin() + offset, file.begin() + offset + 4), "TREC");
    const uint16_t nfields = Load<uint16_t>(file, offset + 4);
    ASSERT_EQ(nfields, 4);
    const uint32_t meta_bytes = Load<uint32_t>(file, offset + 8);
    const uint32_t header_bytes = Load<uint32_t>(file, offset + 12);
    size_t p = offset + 16;
    uint64_t raw_total = header_bytes, payload = offset + header_bytes;
    for (int k = 0; k < nfields; ++k) {
      const uint16_t name_len = Load<uint16_t>(file, p);
      const std::string name(file.begin() + p + 2, file.begin() + p + 2 + name_len);
      p += 2 + name_len;
      const uint8_t dtype = file[p], ndim = file[p + 1];
      p += 2;
      const Array& want = w.samples[r].fields[k].array;
      EXPECT_EQ(name, w.samples[r].fields[k].name);
      EXPECT_EQ(dtype, static_cast<uint8_t>(want.dtype));
      ASSERT_EQ(ndim, want.shape.size());
      for (int d = 0; d < ndim; ++d, p += 8) EXPECT_EQ(Load<int64_t>(file, p), want.shape[d]);
      const uint64_t raw_bytes = Load<uint64_t>(file, p),
                     stored_bytes = Load<uint64_t>(file, p + 8);
      p += 16;
      EXPECT_EQ(raw_bytes, want.data.size());
      EXPECT_EQ(stored_bytes, raw_bytes);
      EXPECT_TRUE(std::equal(want.data.begin(), want.data.end(), file.begin() + payload)) << name;
      payload += stored_bytes;
      raw_total += raw_bytes;
    }
    EXPECT_EQ(p + meta_bytes, offset + header_bytes);
    EXPECT_EQ(nlohmann::json::parse(file.begin() + p, file.begin() + p + meta_bytes),
              w.samples[r].meta);
    EXPECT_EQ(payload, offset + stored);
    EXPECT_EQ(raw_total, raw);
  }
}

TEST(ShardFormat, ShuffleFlagIsSetInTheIndex) {
  auto storage = NewMemoryStorage();
  WriteShard(*storage, "/s.tss", {Codec::kLz4, 3, true}, 4096, 1);
  const std::vector<uint8_t> file = *storage->ReadAll("/s.tss");
  const uint64_t index_offset = Load<uint64_t>(file, file.size() - 64 + 16);
  EXPECT_EQ(file[index_offset + 32], 1);  // lz4
  EXPECT_EQ(file[index_offset + 33], 1);  // shuffled
}

}  // namespace
}  // namespace tilestage
