// CF attribute handling: axis classification from attributes and unpacking with fills/ranges.
#include "ingest/cf_attrs.h"

#include <gtest/gtest.h>
#include <netcdf.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace tilestage::ingest {
namespace {

AxisAttrs Attrs(std::string axis, std::string standard_name, std::string units,
                std::string positive) {
  AxisAttrs a;
  a.axis = std::move(axis);
  a.standard_name = std::move(standard_name);
  a.units = std::move(units);
  a.positive = std::move(positive);
  return a;
}

TEST(CfAxes, RecognisedByAttributesNotNames) {
  EXPECT_EQ(ClassifyAxis(Attrs("X", "", "", "")), AxisKind::kLongitude);
  EXPECT_EQ(ClassifyAxis(Attrs("y", "", "", "")), AxisKind::kLatitude);
  EXPECT_EQ(ClassifyAxis(Attrs("", "air_pressure", "", "")), AxisKind::kVertical);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "degrees_north", "")), AxisKind::kLatitude);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "degree_E", "")), AxisKind::kLongitude);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "hPa", "")), AxisKind::kVertical);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "millibars", "")), AxisKind::kVertical);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "m", "up")), AxisKind::kVertical);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "hours since 1900-01-01", "")), AxisKind::kTime);
  EXPECT_EQ(ClassifyAxis(Attrs("", "time", "yyyymm", "")), AxisKind::kTime);
  // What uvt.nc and T2m_1x1.nc carry on their one-step "time": not CF, so not a time axis.
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "Month", "")), AxisKind::kUnknown);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "yyyymm", "")), AxisKind::kUnknown);
  EXPECT_EQ(ClassifyAxis(Attrs("", "", "", "")), AxisKind::kUnknown);
}

TEST(CfUnpack, PackedShortWithFillMissingAndRange) {
  CfPacking p;
  p.stored_type = NC_SHORT;
  p.scale_factor = 0.5;
  p.add_offset = 100.0;
  p.packed = true;
  p.missing = {-32767, -1};
  p.valid_min = -1000;
  p.valid_max = 1000;
  const int16_t raw[] = {0, 2, -32767, -1, 1001, -1000, 1000, -1001};
  float out[8];
  const uint64_t valid = UnpackToFloat(p, raw, 8, out);
  EXPECT_EQ(valid, 4u);
  EXPECT_FLOAT_EQ(out[0], 100.0f);
  EXPECT_FLOAT_EQ(out[1], 101.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_TRUE(std::isnan(out[3]));
  EXPECT_TRUE(std::isnan(out[4]));
  EXPECT_FLOAT_EQ(out[5], -400.0f);
  EXPECT_FLOAT_EQ(out[6], 600.0f);
  EXPECT_TRUE(std::isnan(out[7]));
}

TEST(CfUnpack, FloatFillNaNAndStride) {
  CfPacking p;
  p.stored_type = NC_FLOAT;
  p.missing = {1e36};
  const float raw[] = {1.5f, 1e36f, NAN, -2.0f};
  double out[8] = {0};
  EXPECT_EQ(UnpackToFloat(p, raw, 4, out, 2), 2u);
  EXPECT_DOUBLE_EQ(out[0], 1.5);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_TRUE(std::isnan(out[4]));
  EXPECT_DOUBLE_EQ(out[6], -2.0);
  EXPECT_DOUBLE_EQ(out[1], 0.0);  // stride leaves the gaps alone
}

TEST(CfUnpack, UnsignedBytesUnpackAsUnsigned) {
  CfPacking p;
  p.stored_type = NC_UBYTE;
  p.scale_factor = 2.0;
  p.packed = true;
  const uint8_t raw[] = {200, 255};
  float out[2];
  EXPECT_EQ(UnpackToFloat(p, raw, 2, out), 2u);
  EXPECT_FLOAT_EQ(out[0], 400.0f);
  EXPECT_FLOAT_EQ(out[1], 510.0f);
}

}  // namespace
}  // namespace tilestage::ingest

namespace tilestage::ingest {
namespace {

TEST(CfUnpack, EveryMissingValueOfAListIsApplied) {
  CfPacking p;
  p.stored_type = NC_INT;
  p.missing = {-1, -2, -3, -4};  // _FillValue plus a three-value missing_value
  const int32_t raw[] = {-1, -2, -3, -4, 5, -3};
  for (ptrdiff_t stride : {1, 2}) {
    float out[12];
    EXPECT_EQ(UnpackToFloat(p, raw, 6, out, stride), 1u);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(std::isnan(out[i * stride]), i != 4) << i;
    EXPECT_FLOAT_EQ(out[4 * stride], 5.0f);
  }
}

// A step's channels lie back to back in one buffer, so a float channel after a byte channel
// starts at an odd address; every path (unit stride, strided, extra missing values) must read it.
TEST(CfUnpack, ValuesAtAnOddAddressUnpackLikeAlignedOnes) {
  CfPacking p;
  p.stored_type = NC_FLOAT;
  p.missing = {-9.0, -8.0, -7.0};
  const float values[] = {1.5f, -9.0f, 3.25f, -7.0f, 1e6f, -0.5f, 2.0f, -8.0f, 4.0f};
  constexpr size_t kN = std::size(values);
  alignas(8) unsigned char buffer[1 + sizeof values];
  std::memcpy(buffer + 1, values, sizeof values);
  for (ptrdiff_t stride : {1, 2}) {
    float want[2 * kN] = {}, got[2 * kN] = {};
    const uint64_t want_valid = UnpackToFloat(p, values, kN, want, stride);
    EXPECT_EQ(UnpackToFloat(p, buffer + 1, kN, got, stride), want_valid);
    EXPECT_EQ(want_valid, 6u);
    EXPECT_EQ(std::memcmp(want, got, sizeof want), 0) << "stride " << stride;
  }
}

TEST(CfUnpack, DoubleFillOnAFloatVariableStillMatches) {
  CfPacking p;
  p.stored_type = NC_FLOAT;
  p.missing = {1e20};  // not exactly representable as a float
  const float raw[] = {1e20f, 2.0f};
  float out[2];
  EXPECT_EQ(UnpackToFloat(p, raw, 2, out), 1u);
  EXPECT_TRUE(std::isnan(out[0]));
}

}  // namespace
}  // namespace tilestage::ingest

namespace tilestage::ingest {
namespace {

// The unit-stride loop runs four values at a time; the strided loop one at a time. Both must give
// the same bits and counts for every stored type, with fills, a valid range and a tail that is
// not a multiple of four.
template <typename Stored, typename Out>
void ExpectVectorPathEqualsScalarPath(int nc_type, bool packed) {
  CfPacking p;
  p.stored_type = nc_type;
  p.packed = packed;
  if (packed) {
    p.scale_factor = 0.0123;
    p.add_offset = 271.5;
  }
  p.missing = {static_cast<double>(static_cast<Stored>(7)), static_cast<double>(Stored{})};
  p.valid_max = 100;
  constexpr size_t kValues = 1003;
  std::vector<Stored> raw(kValues);
  for (size_t i = 0; i < kValues; ++i) raw[i] = static_cast<Stored>((i * 37) % 113);
  if constexpr (std::is_floating_point_v<Stored>) raw[5] = std::numeric_limits<Stored>::quiet_NaN();
  std::vector<Out> unit(kValues), strided(2 * kValues);
  const uint64_t unit_valid = UnpackToFloat(p, raw.data(), kValues, unit.data(), 1);
  const uint64_t strided_valid = UnpackToFloat(p, raw.data(), kValues, strided.data(), 2);
  EXPECT_EQ(unit_valid, strided_valid) << NcTypeName(nc_type);
  EXPECT_GT(unit_valid, 0u);
  EXPECT_LT(unit_valid, kValues);
  for (size_t i = 0; i < kValues; ++i) {
    const Out a = unit[i], b = strided[2 * i];
    ASSERT_TRUE((std::isnan(a) && std::isnan(b)) || a == b)
        << NcTypeName(nc_type) << " value " << i << ": " << a << " vs " << b;
  }
}

TEST(CfUnpack, VectorPathEqualsScalarPathForEveryStoredType) {
  for (bool packed : {false, true}) {
    ExpectVectorPathEqualsScalarPath<int8_t, float>(NC_BYTE, packed);
    ExpectVectorPathEqualsScalarPath<uint8_t, float>(NC_UBYTE, packed);
    ExpectVectorPathEqualsScalarPath<int16_t, float>(NC_SHORT, packed);
    ExpectVectorPathEqualsScalarPath<uint16_t, double>(NC_USHORT, packed);
    ExpectVectorPathEqualsScalarPath<int32_t, float>(NC_INT, packed);
    ExpectVectorPathEqualsScalarPath<uint32_t, double>(NC_UINT, packed);
    ExpectVectorPathEqualsScalarPath<int64_t, float>(NC_INT64, packed);
    ExpectVectorPathEqualsScalarPath<uint64_t, double>(NC_UINT64, packed);
    ExpectVectorPathEqualsScalarPath<float, float>(NC_FLOAT, packed);
    ExpectVectorPathEqualsScalarPath<double, float>(NC_DOUBLE, packed);
    ExpectVectorPathEqualsScalarPath<double, double>(NC_DOUBLE, packed);
  }
}

}  // namespace
}  // namespace tilestage::ingest
