// CF attribute handling: axis classification from attributes and unpacking with fills/ranges.
#include "ingest/cf_attrs.h"

#include <gtest/gtest.h>
#include <netcdf.h>

#include <cmath>

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
