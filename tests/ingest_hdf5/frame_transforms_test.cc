// FrameTransform against a direct, naive computation of crop -> bin -> clip -> log1p|sqrt.
#include "ingest/frame_transforms.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/ingest_hdf5/fixtures.h"

namespace tilestage::ingest {
namespace {

// The straightforward definition, in double, written independently of the library's loops.
std::vector<double> Direct(const std::vector<double>& frame, int64_t w, int64_t y0, int64_t x0,
                           int64_t ch, int64_t cw, int64_t k, std::optional<double> clip,
                           FrameScale scale) {
  std::vector<double> out;
  for (int64_t by = 0; by < ch / k; ++by) {
    for (int64_t bx = 0; bx < cw / k; ++bx) {
      double sum = 0;
      for (int64_t i = 0; i < k * k; ++i)
        sum += frame[static_cast<size_t>((y0 + by * k + i / k) * w + x0 + bx * k + i % k)];
      if (clip) sum = std::max(sum, *clip);
      if (scale == FrameScale::kLog1p) sum = std::log1p(sum);
      if (scale == FrameScale::kSqrt) sum = std::sqrt(sum);
      out.push_back(sum);
    }
  }
  return out;
}

Array Frame(int64_t h, int64_t w, double offset) {
  auto values = testing::MakeFrames<float>(1, h, w);
  for (auto& v : values) v = static_cast<float>(v + offset);
  return Array::FromVector<float>({h, w}, values);
}

std::vector<double> AsDoubles(const Array& a) {
  std::vector<double> v;
  for (int64_t i = 0; i < a.NumElements(); ++i) v.push_back(ElementAsDouble(a, i));
  return v;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::abs(want[i]))) << "element " << i;
}

TEST(FrameTransform, CentredCropKeepsDtypeAndPicksTheMiddle) {
  auto frames = testing::MakeFrames<uint16_t>(1, 10, 12);
  Array frame = Array::FromVector<uint16_t>({10, 12}, frames);
  auto t = FrameTransform::Parse("4,6", 1, false, false, std::nullopt);
  ASSERT_TRUE(t.ok());
  auto out = t->ApplyToFrame(frame, "f");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->dtype, DType::kU16);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{4, 6}));
  std::vector<double> src(frames.begin(), frames.end());
  EXPECT_EQ(AsDoubles(*out), Direct(src, 12, 3, 3, 4, 6, 1, std::nullopt, FrameScale::kNone));
}

TEST(FrameTransform, BoxCropBinClipLog1pMatchDirectComputation) {
  Array frame = Frame(16, 20, -30.0);  // negative values, so clip-min matters
  auto t = FrameTransform::Parse("2,3,12,16", 2, true, false, 0.0);
  ASSERT_TRUE(t.ok());
  auto out = t->ApplyToFrame(frame, "f");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->dtype, DType::kF32);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{6, 8}));
  ExpectNear(AsDoubles(*out),
             Direct(AsDoubles(frame), 20, 2, 3, 12, 16, 2, 0.0, FrameScale::kLog1p));
}

TEST(FrameTransform, SqrtAfterClipOnIntegerInput) {
  auto frames = testing::MakeFrames<int32_t>(1, 8, 8);
  for (auto& v : frames) v -= 20;
  Array frame = Array::FromVector<int32_t>({8, 8}, frames);
  auto t = FrameTransform::Parse("", 1, false, true, 1.5);
  ASSERT_TRUE(t.ok());
  auto out = t->ApplyToFrame(frame, "f");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->dtype, DType::kF32);
  std::vector<double> src(frames.begin(), frames.end());
  ExpectNear(AsDoubles(*out), Direct(src, 8, 0, 0, 8, 8, 1, 1.5, FrameScale::kSqrt));
}

TEST(FrameTransform, BinSumsBlocksOfDoubles) {
  auto values = testing::MakeFrames<double>(1, 9, 9);
  Array frame = Array::FromVector<double>({9, 9}, values);
  auto t = FrameTransform::Parse("", 3, false, false, std::nullopt);
  ASSERT_TRUE(t.ok());
  auto out = t->ApplyToFrame(frame, "f");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->dtype, DType::kF64);
  EXPECT_EQ(AsDoubles(*out), Direct(values, 9, 0, 0, 9, 9, 3, std::nullopt, FrameScale::kNone));
}

TEST(FrameTransform, U16LookupTableEqualsPerPixelFloatMath) {
  std::vector<uint16_t> all(65536);
  for (size_t v = 0; v < all.size(); ++v) all[v] = static_cast<uint16_t>(v);
  Array frame = Array::FromVector<uint16_t>({256, 256}, all);
  for (bool log1p : {true, false}) {
    auto t = FrameTransform::Parse("", 1, log1p, !log1p, 3.0);
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(t->u16_table);
    auto out = t->ApplyToFrame(frame, "f");
    ASSERT_TRUE(out.ok());
    auto got = out->As<float>();
    for (size_t v = 0; v < all.size(); ++v) {
      const float x = std::max(static_cast<float>(v), 3.0f);
      const float want = log1p ? std::log1p(x) : std::sqrt(x);
      ASSERT_EQ(got[v], want) << "value " << v;  // bit-identical, not just close
    }
  }
}

TEST(FrameTransform, U16LookupOfOddWidthBoxEqualsPerPixelFloatMath) {
  // A box 13 wide: whole vectors of 8 plus a scalar tail in each row.
  std::vector<uint16_t> all(65536);
  for (size_t v = 0; v < all.size(); ++v) all[v] = static_cast<uint16_t>(v * 40503u);
  Array frame = Array::FromVector<uint16_t>({256, 256}, all);
  auto t = FrameTransform::Parse("5,3,250,13", 1, true, false, std::nullopt);
  ASSERT_TRUE(t.ok());
  auto out = t->ApplyToFrame(frame, "f");
  ASSERT_TRUE(out.ok());
  auto got = out->As<float>();
  ASSERT_EQ(got.size(), 250u * 13u);
  for (int64_t y = 0; y < 250; ++y) {
    for (int64_t x = 0; x < 13; ++x) {
      const float want =
          std::log1p(static_cast<float>(all[static_cast<size_t>((5 + y) * 256 + 3 + x)]));
      ASSERT_EQ(got[static_cast<size_t>(y * 13 + x)], want) << y << "," << x;
    }
  }
}

TEST(FrameTransform, CropLargerThanFrameIsInvalid) {
  auto t = FrameTransform::Parse("20,20", 1, false, false, std::nullopt);
  ASSERT_TRUE(t.ok());
  auto box = t->Plan(16, 30, "file.h5 frame 0");
  ASSERT_FALSE(box.ok());
  EXPECT_EQ(box.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(box.status().message().find("does not fit a 16x30 frame"), std::string::npos)
      << box.status().message();
}

TEST(FrameTransform, BinThatDoesNotDivideIsInvalid) {
  auto t = FrameTransform::Parse("", 4, false, false, std::nullopt);
  ASSERT_TRUE(t.ok());
  auto box = t->Plan(2167, 2070, "eiger");
  ASSERT_FALSE(box.ok());
  EXPECT_NE(box.status().message().find("--bin 4 does not divide"), std::string::npos)
      << box.status().message();
}

TEST(FrameTransform, BadOptionsAreInvalid) {
  EXPECT_FALSE(FrameTransform::Parse("", 1, true, true, std::nullopt).ok());
  EXPECT_FALSE(FrameTransform::Parse("1,2,3", 1, false, false, std::nullopt).ok());
  EXPECT_FALSE(FrameTransform::Parse("a,b", 1, false, false, std::nullopt).ok());
  EXPECT_FALSE(FrameTransform::Parse("", 0, false, false, std::nullopt).ok());
  EXPECT_TRUE(FrameTransform::Parse("", 1, false, false, std::nullopt)->IsIdentity());
}

}  // namespace
}  // namespace tilestage::ingest
