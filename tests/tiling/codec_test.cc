// Codec round trips for every dtype with and without shuffle, the shuffle permutation itself, and
// damaged compressed blocks.
#include "tiling/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "tiling/synth.h"

namespace tilestage {
namespace {

using ::testing::HasSubstr;

const DType kAllDTypes[] = {DType::kU8,  DType::kI8,  DType::kU16, DType::kI16,
                            DType::kU32, DType::kI32, DType::kF32, DType::kF64};

// Synthetic smooth data plus the dtype's extremes (and NaN/inf for floats), so the round trip
// covers every byte pattern class.
Array TestArray(DType dtype) {
  Array a = MakeSynthSample({{2, 33, 17}, dtype, 11, 0}, 3).fields[0].array;
  VisitDType(dtype, [&](auto zero) {
    using T = decltype(zero);
    auto v = a.As<T>();
    v[0] = std::numeric_limits<T>::lowest();
    v[1] = std::numeric_limits<T>::max();
    v[2] = T{0};
    if constexpr (std::is_floating_point_v<T>) {
      v[3] = std::numeric_limits<T>::quiet_NaN();
      v[4] = -std::numeric_limits<T>::infinity();
      v[5] = std::numeric_limits<T>::denorm_min();
    }
  });
  return a;
}

using CodecCase = std::tuple<DType, Codec, bool>;

class CodecRoundTripTest : public ::testing::TestWithParam<CodecCase> {};

TEST_P(CodecRoundTripTest, DecodesToTheOriginalBytes) {
  const auto [dtype, codec, shuffle] = GetParam();
  const Array a = TestArray(dtype);
  const CodecSpec spec{codec, 5, shuffle};
  std::vector<uint8_t> stored = {0xAB};  // EncodeBlock appends: prior bytes must survive
  ASSERT_TRUE(EncodeBlock(spec, a.data, DTypeSize(dtype), &stored).ok());
  ASSERT_EQ(stored[0], 0xAB);
  std::vector<uint8_t> raw(a.data.size(), 0xEE);
  Status s = DecodeBlock(codec, shuffle, std::span(stored).subspan(1), DTypeSize(dtype), raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(raw, a.data);  // bytewise, so NaN payloads count too
  if (codec == Codec::kNone) {
    EXPECT_EQ(stored.size() - 1, a.data.size());
  }
}

INSTANTIATE_TEST_SUITE_P(AllDTypesAndCodecs, CodecRoundTripTest,
                         ::testing::Combine(::testing::ValuesIn(kAllDTypes),
                                            ::testing::Values(Codec::kNone, Codec::kLz4,
                                                              Codec::kZstd),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<CodecCase>& info) {
                           return StrCat(DTypeName(std::get<0>(info.param)), "_",
                                         CodecName(std::get<1>(info.param)),
                                         std::get<2>(info.param) ? "_shuffle" : "");
                         });

// A field with a zero dimension has no bytes: its empty (null) spans must encode and decode
// without touching memory.
TEST_P(CodecRoundTripTest, EmptyInputRoundTripsToNothing) {
  const auto [dtype, codec, shuffle] = GetParam();
  const CodecSpec spec{codec, 5, shuffle};
  std::vector<uint8_t> stored;
  ASSERT_TRUE(EncodeBlock(spec, {}, DTypeSize(dtype), &stored).ok());
  if (codec == Codec::kNone) {
    EXPECT_TRUE(stored.empty());
  }
  std::vector<uint8_t> raw;
  Status s = DecodeBlock(codec, shuffle, stored, DTypeSize(dtype), raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // The same frame cannot claim bytes it does not hold.
  std::vector<uint8_t> one(1);
  EXPECT_EQ(DecodeBlock(codec, shuffle, stored, DTypeSize(dtype), one).code(),
            StatusCode::kDataLoss);
}

TEST(ByteShuffle, EmptyInputWritesNothing) {
  for (size_t elem_size : {1, 2, 3, 4, 8, 16}) {
    ByteShuffle({}, elem_size, nullptr);
    ByteUnshuffle({}, elem_size, nullptr);
    uint8_t guard = 0x5A;
    ByteShuffle({}, elem_size, &guard);
    ByteUnshuffle({}, elem_size, &guard);
    EXPECT_EQ(guard, 0x5A) << elem_size;
  }
}

TEST(ByteShuffle, GroupsBytesBySignificance) {
  // Three 4-byte elements: independent truth written out by hand.
  const std::vector<uint8_t> in = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23};
  std::vector<uint8_t> out(in.size());
  ByteShuffle(in, 4, out.data());
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23}));
  std::vector<uint8_t> back(in.size());
  ByteUnshuffle(out, 4, back.data());
  EXPECT_EQ(back, in);
}

TEST(ByteShuffle, EveryElementSizeMatchesTheDefinitionAndRoundTrips) {
  // Sizes with their own fast loops (2, 4, 8) and the generic one (3), with ragged tails.
  for (size_t elem_size : {2u, 3u, 4u, 8u}) {
    for (size_t bytes : {size_t{0}, size_t{7}, size_t{4096}, size_t{4099}, size_t{100003}}) {
      std::vector<uint8_t> in(bytes);
      for (size_t i = 0; i < bytes; ++i) in[i] = static_cast<uint8_t>(i * 131 + (i >> 8));
      std::vector<uint8_t> out(bytes), back(bytes);
      ByteShuffle(in, elem_size, out.data());
      const size_t n = bytes / elem_size;
      for (size_t i = 0; i < n; ++i)
        for (size_t b = 0; b < elem_size; ++b)
          ASSERT_EQ(out[b * n + i], in[i * elem_size + b]) << elem_size << " " << bytes;
      for (size_t t = n * elem_size; t < bytes; ++t) ASSERT_EQ(out[t], in[t]);
      ByteUnshuffle(out, elem_size, back.data());
      ASSERT_EQ(back, in) << "element size " << elem_size << ", " << bytes << " bytes";
    }
  }
}

TEST(ByteSwap, ReversesTheBytesOfEachElementAndLeavesOtherSizesAlone) {
  for (size_t elem_size : {1u, 2u, 3u, 4u, 8u}) {
    std::vector<uint8_t> data(8 * 9 + 5);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
    const std::vector<uint8_t> original = data;
    ByteSwap(data, elem_size);
    const bool swaps = elem_size == 2 || elem_size == 4 || elem_size == 8;
    const size_t n = data.size() / elem_size;
    for (size_t i = 0; i < n; ++i)
      for (size_t b = 0; b < elem_size; ++b)
        ASSERT_EQ(data[i * elem_size + b],
                  original[i * elem_size + (swaps ? elem_size - 1 - b : b)])
            << "element size " << elem_size << ", element " << i;
    for (size_t t = n * elem_size; t < data.size(); ++t) ASSERT_EQ(data[t], original[t]);
  }
}

TEST(ByteShuffle, NoneWithShuffleStoresShuffledBytes) {
  const std::vector<uint8_t> raw = {1, 2, 3, 4};  // two u16
  std::vector<uint8_t> stored;
  ASSERT_TRUE(EncodeBlock({Codec::kNone, 3, true}, raw, 2, &stored).ok());
  EXPECT_EQ(stored, (std::vector<uint8_t>{1, 3, 2, 4}));
}

TEST(Codec, ShuffleMakesSmoothFloatsCompressBetter) {
  const Array a = MakeSynthSample({{4, 64, 64}, DType::kF32, 1, 0}, 0).fields[0].array;
  std::vector<uint8_t> plain, shuffled;
  ASSERT_TRUE(EncodeBlock({Codec::kZstd, 3, false}, a.data, 4, &plain).ok());
  ASSERT_TRUE(EncodeBlock({Codec::kZstd, 3, true}, a.data, 4, &shuffled).ok());
  EXPECT_LT(shuffled.size(), plain.size());
  EXPECT_LT(shuffled.size(), a.data.size());
}

class CorruptBlockTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CorruptBlockTest, FlippedByteOrTruncationIsDataLoss) {
  const Codec codec = GetParam();
  const Array a = TestArray(DType::kU16);
  std::vector<uint8_t> stored;
  ASSERT_TRUE(EncodeBlock({codec, 3, false}, a.data, 2, &stored).ok());
  std::vector<uint8_t> raw(a.data.size());

  std::vector<uint8_t> truncated(stored.begin(), stored.begin() + stored.size() / 2);
  Status s = DecodeBlock(codec, false, truncated, 2, raw);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();

  // Garbage in place of the block (a flipped byte may decode "successfully" to wrong bytes in
  // lz4, which is why every record also carries a checksum).
  if (codec != Codec::kNone) {  // for none, any bytes of the right size are a valid block
    std::vector<uint8_t> garbage(stored.size(), 0xFF);
    s = DecodeBlock(codec, false, garbage, 2, raw);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  }

  std::vector<uint8_t> too_small(raw.size() - 2);
  s = DecodeBlock(codec, false, stored, 2, too_small);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CorruptBlockTest,
                         ::testing::Values(Codec::kNone, Codec::kLz4, Codec::kZstd),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

TEST(Codec, ZstdFlippedByteInFrameIsDataLoss) {
  const Array a = TestArray(DType::kF32);
  std::vector<uint8_t> stored;
  ASSERT_TRUE(EncodeBlock({Codec::kZstd, 3, false}, a.data, 4, &stored).ok());
  stored[1] ^= 0xFF;  // inside the frame magic
  std::vector<uint8_t> raw(a.data.size());
  Status s = DecodeBlock(Codec::kZstd, false, stored, 4, raw);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("zstd"));
}

TEST(ParseCodec, AcceptsDocumentedSpellings) {
  auto spec = ParseCodec("zstd:9+shuffle");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->codec, Codec::kZstd);
  EXPECT_EQ(spec->level, 9);
  EXPECT_TRUE(spec->shuffle);
  EXPECT_EQ(spec->ToString(), "zstd:9+shuffle");
  EXPECT_EQ(ParseCodec("lz4")->codec, Codec::kLz4);
  EXPECT_EQ(ParseCodec("none+shuffle")->ToString(), "none+shuffle");
}

TEST(ParseCodec, RejectsUnknownNamesAndLevelsWithMessage) {
  for (const char* bad : {"gzip", "zstd:0", "zstd:99", "lz4:3", "zstd+bitshuffle", "zstd:x"}) {
    auto spec = ParseCodec(bad);
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(spec.status().message(), HasSubstr(bad));
  }
}

}  // namespace
}  // namespace tilestage
