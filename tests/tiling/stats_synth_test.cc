// Channel statistics against a direct two-pass computation (with NaN, nodata and masks, every
// dtype) and Welford's update, exact merging of partial statistics, and the synthetic generator's determinism and compressibility.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <span>
#include <type_traits>

#include "tiling/codec.h"
#include "tiling/shard.h"
#include "tiling/stats.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

struct TwoPass {
  uint64_t count = 0, total = 0;
  double mean = 0, var = 0, min = INFINITY, max = -INFINITY;
};

// The textbook definition: mean first, then squared deviations; no streaming.
TwoPass DirectStats(const std::vector<double>& values, std::optional<double> nodata) {
  TwoPass t;
  double sum = 0;
  for (double v : values) {
    ++t.total;
    if (std::isnan(v) || (nodata && v == *nodata)) continue;
    ++t.count;
    sum += v;
    t.min = std::min(t.min, v);
    t.max = std::max(t.max, v);
  }
  t.mean = t.count ? sum / static_cast<double>(t.count) : 0;
  double ss = 0;
  for (double v : values)
    if (!std::isnan(v) && !(nodata && v == *nodata)) ss += (v - t.mean) * (v - t.mean);
  t.var = t.count ? ss / static_cast<double>(t.count) : 0;
  return t;
}

void ExpectMatches(const ChannelStats& s, const TwoPass& t) {
  EXPECT_EQ(s.count, t.count);
  EXPECT_EQ(s.total, t.total);
  EXPECT_NEAR(s.mean, t.mean, 1e-12 * (1 + std::abs(t.mean)));
  EXPECT_NEAR(s.variance(), t.var, 1e-10 * (1 + t.var));
  EXPECT_NEAR(s.std(), std::sqrt(t.var), 1e-10 * (1 + std::sqrt(t.var)));
  if (t.count) {
    EXPECT_EQ(s.min, t.min);
    EXPECT_EQ(s.max, t.max);
  }
  EXPECT_DOUBLE_EQ(s.valid_fraction(),
                   t.total ? static_cast<double>(t.count) / static_cast<double>(t.total) : 0.0);
}

// [C, H, W] f32 with a large offset (stresses naive sum-of-squares), NaNs and nodata values.
Array FloatArrayWithGaps(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  Array a(DType::kF32, {c, h, w});
  auto v = a.As<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    const double u = CounterUniform(seed, 1, i);
    v[i] = static_cast<float>(1000.0 + 10.0 * u + static_cast<double>(i / (h * w)));
    if (i % 17 == 3) v[i] = NAN;
    if (i % 23 == 5) v[i] = -9999.0f;
  }
  return a;
}

std::vector<double> Channel(const Array& a, int64_t c) {
  const int64_t per = a.NumElements() / NumChannels(a);
  std::vector<double> out;
  for (int64_t i = 0; i < per; ++i) out.push_back(ElementAsDouble(a, c * per + i));
  return out;
}

TEST(ChannelStats, MatchesTwoPassWithNanAndNodata) {
  const Array a = FloatArrayWithGaps(3, 20, 30, 1);
  const auto stats = ComputeChannelStats(a, -9999.0);
  ASSERT_EQ(stats.size(), 3u);
  for (int64_t c = 0; c < 3; ++c) {
    SCOPED_TRACE(c);
    const TwoPass t = DirectStats(Channel(a, c), -9999.0);
    EXPECT_LT(t.count, t.total);
    ExpectMatches(stats[c], t);
  }
}

TEST(ChannelStats, WithoutNodataOnlyNanIsInvalid) {
  const Array a = FloatArrayWithGaps(2, 10, 10, 2);
  const auto stats = ComputeChannelStats(a);
  for (int64_t c = 0; c < 2; ++c) ExpectMatches(stats[c], DirectStats(Channel(a, c), std::nullopt));
  EXPECT_EQ(stats[0].min, -9999.0);
}

TEST(ChannelStats, IntegerArrayWithNodataZero) {
  Array a = MakeSynthSample({{2, 16, 16}, DType::kU16, 4, 0}, 0).fields[0].array;
  for (size_t i = 0; i < a.As<uint16_t>().size(); i += 5) a.As<uint16_t>()[i] = 0;
  const auto stats = ComputeChannelStats(a, 0.0);
  for (int64_t c = 0; c < 2; ++c) ExpectMatches(stats[c], DirectStats(Channel(a, c), 0.0));
}

TEST(ChannelStats, LowRankArrayIsOneChannel) {
  const Array a = Array::FromVector<double>({4}, {1, 2, 3, NAN});
  const auto stats = ComputeChannelStats(a);
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].count, 3u);
  EXPECT_EQ(stats[0].total, 4u);
  EXPECT_DOUBLE_EQ(stats[0].mean, 2.0);
  EXPECT_DOUBLE_EQ(stats[0].variance(), 2.0 / 3.0);
}

TEST(ChannelStats, MergeOfPartialsEqualsStatsOfTheUnion) {
  // Three tiles of one [2, H, W] field, merged in order, against the two-pass of all values.
  std::vector<Array> parts = {FloatArrayWithGaps(2, 5, 7, 10), FloatArrayWithGaps(2, 11, 3, 11),
                              FloatArrayWithGaps(2, 1, 40, 12)};
  std::vector<ChannelStats> merged;
  std::vector<std::vector<double>> union_values(2);
  for (const Array& part : parts) {
    MergeChannelStats(merged, ComputeChannelStats(part, -9999.0));
    for (int64_t c = 0; c < 2; ++c) {
      auto v = Channel(part, c);
      union_values[c].insert(union_values[c].end(), v.begin(), v.end());
    }
  }
  for (int64_t c = 0; c < 2; ++c) ExpectMatches(merged[c], DirectStats(union_values[c], -9999.0));
}

TEST(ChannelStats, MergeWithEmptyKeepsTotalsAndValues) {
  ChannelStats empty;
  empty.AddInvalid(5);
  ChannelStats some;
  for (double v : {1.0, 2.0, 6.0}) some.Add(v);
  ChannelStats a = empty;
  a.Merge(some);
  ChannelStats b = some;
  b.Merge(empty);
  for (const ChannelStats* s : {&a, &b}) {
    EXPECT_EQ(s->count, 3u);
    EXPECT_EQ(s->total, 8u);
    EXPECT_DOUBLE_EQ(s->mean, 3.0);
    EXPECT_DOUBLE_EQ(s->min, 1.0);
    EXPECT_DOUBLE_EQ(s->max, 6.0);
    EXPECT_DOUBLE_EQ(s->variance(), 14.0 / 3.0);
  }
}

TEST(ChannelStats, JsonRoundTripKeepsMergeableState) {
  ChannelStats s;
  for (double v : {3.0, -1.0, 7.5}) s.Add(v);
  s.AddInvalid(2);
  auto back = ChannelStats::FromJson(s.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->count, 3u);
  EXPECT_EQ(back->total, 5u);
  EXPECT_DOUBLE_EQ(back->mean, s.mean);
  EXPECT_DOUBLE_EQ(back->m2, s.m2);
  EXPECT_DOUBLE_EQ(back->min, -1.0);
  EXPECT_DOUBLE_EQ(back->max, 7.5);
  EXPECT_DOUBLE_EQ(s.ToJson()["valid_fraction"].get<double>(), 0.6);
}

TEST(ChannelStats, EmptyChannelHasNullMinMaxInJson) {
  ChannelStats s;
  s.AddInvalid(4);
  const auto j = s.ToJson();
  EXPECT_TRUE(j["min"].is_null());
  EXPECT_TRUE(j["max"].is_null());
  auto back = ChannelStats::FromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->count, 0u);
  EXPECT_EQ(back->total, 4u);
}

TEST(ChannelStats, InfiniteValuesRoundTripThroughJsonAsStrings) {
  ChannelStats s;
  for (double v : {1.0, std::numeric_limits<double>::infinity(), -2.0}) s.Add(v);
  const auto j = s.ToJson();
  EXPECT_EQ(j["max"], "inf");
  EXPECT_EQ(j["min"], -2.0);
  ASSERT_FALSE(std::isfinite(s.mean));  // Welford's update turns inf - inf into NaN
  EXPECT_TRUE(j["mean"].is_string() && j["m2"].is_string()) << j.dump();
  // What a manifest writer stores, read back as a manifest reader does.
  auto back = ChannelStats::FromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->count, 3u);
  EXPECT_EQ(back->max, std::numeric_limits<double>::infinity());
  EXPECT_EQ(std::isnan(back->mean), std::isnan(s.mean));
  EXPECT_EQ(std::isnan(back->m2), std::isnan(s.m2));
  auto bad = j;
  bad["mean"] = "lots";
  EXPECT_EQ(ChannelStats::FromJson(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(ChannelStats, FromJsonRejectsEntriesWithoutMoments) {
  EXPECT_EQ(ChannelStats::FromJson({{"mean", 1.0}}).status().code(), StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------------------------ synth

TEST(Synth, SameSeedAndIndexGiveSameBytes) {
  for (DType dtype : {DType::kF32, DType::kU16, DType::kI8, DType::kF64}) {
    const SynthSpec spec{{3, 32, 32}, dtype, 42, 5};
    const Sample a = MakeSynthSample(spec, 17), b = MakeSynthSample(spec, 17);
    EXPECT_EQ(a.fields[0].array.data, b.fields[0].array.data);
    EXPECT_EQ(a.fields[1].array.data, b.fields[1].array.data);
    EXPECT_EQ(a.meta, b.meta);
  }
}

TEST(Synth, DifferentSamplesSeedsAndChannelsDiffer) {
  const SynthSpec spec{{2, 32, 32}, DType::kF32, 1, 0};
  const Array a = MakeSynthSample(spec, 0).fields[0].array;
  EXPECT_NE(a.data, MakeSynthSample(spec, 1).fields[0].array.data);
  SynthSpec other_seed = spec;
  other_seed.seed = 2;
  EXPECT_NE(a.data, MakeSynthSample(other_seed, 0).fields[0].array.data);
  const auto half = a.data.size() / 2;
  EXPECT_FALSE(std::equal(a.data.begin(), a.data.begin() + half, a.data.begin() + half));
}

TEST(Synth, ValuesAreNotConstantAndVaryAcrossTheRange) {
  const Array a = MakeSynthSample({{1, 64, 64}, DType::kU16, 3, 0}, 5).fields[0].array;
  std::set<uint16_t> distinct(a.As<uint16_t>().begin(), a.As<uint16_t>().end());
  EXPECT_GT(distinct.size(), 1000u);
  const auto stats = ComputeChannelStats(a);
  EXPECT_GT(stats[0].std(), 1000.0);
}

class SynthCompressionTest : public ::testing::TestWithParam<DType> {};

TEST_P(SynthCompressionTest, ZstdWithShuffleCompresses) {
  const SynthSpec spec{{3, 64, 64}, GetParam(), 9, 0};
  uint64_t raw = 0, stored = 0;
  for (uint64_t i = 0; i < 8; ++i) {
    auto rec = EncodeRecord(MakeSynthSample(spec, i), {Codec::kZstd, 3, true});
    ASSERT_TRUE(rec.ok());
    raw += rec->raw_size;
    stored += rec->stored.size();
  }
  const double ratio = static_cast<double>(raw) / static_cast<double>(stored);
  EXPECT_GT(ratio, 1.0) << DTypeName(GetParam());
}

INSTANTIATE_TEST_SUITE_P(FloatAndIntegerTiles, SynthCompressionTest,
                         ::testing::Values(DType::kF32, DType::kU16, DType::kU8, DType::kF64),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(Synth, LabelsAreInRangeAndMatchMetadata) {
  const SynthSpec spec{{1, 16, 16}, DType::kF32, 3, 4};
  std::set<int> labels;
  for (uint64_t i = 0; i < 64; ++i) {
    const Sample s = MakeSynthSample(spec, i);
    ASSERT_EQ(s.fields.size(), 2u);
    const int y = s.fields[1].array.As<int32_t>()[0];
    EXPECT_GE(y, 0);
    EXPECT_LT(y, 4);
    EXPECT_EQ(s.meta["label"].get<int>(), y);
    labels.insert(y);
  }
  EXPECT_EQ(labels.size(), 4u);
}

TEST(Synth, CounterUniformIsInUnitInterval) {
  double sum = 0;
  for (uint64_t k = 0; k < 10000; ++k) {
    const double u = CounterUniform(5, 6, k);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  EXPECT_EQ(CounterHash(1, 2, 3), CounterHash(1, 2, 3));
  EXPECT_NE(CounterHash(1, 2, 3), CounterHash(1, 2, 4));
}

// Welford's update value by value (ChannelStats::Add) over v[begin, end): the reference the
// kernel's integer, byte and lane paths are checked against.
template <typename T>
ChannelStats Welford(std::span<const T> v, size_t begin, size_t end, const uint8_t* valid) {
  ChannelStats s;
  for (size_t i = begin; i < end; ++i) {
    if (std::isnan(static_cast<double>(v[i])) || (valid && !valid[i]))
      s.AddInvalid();
    else
      s.Add(static_cast<double>(v[i]));
  }
  return s;
}

void ExpectMatchesWelford(const ChannelStats& fast, const ChannelStats& slow, double mean_rel) {
  EXPECT_EQ(fast.count, slow.count);
  EXPECT_EQ(fast.total, slow.total);
  EXPECT_NEAR(fast.mean, slow.mean, mean_rel * std::fabs(slow.mean));
  EXPECT_NEAR(fast.m2, slow.m2, 1e-9 * slow.m2);
  EXPECT_EQ(fast.min, slow.min);
  EXPECT_EQ(fast.max, slow.max);
}

TEST(ChannelStatsKernel, IntegerFastPathMatchesWelford) {
  Array a(DType::kU16, {2, 3, 5});
  auto v = a.As<uint16_t>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>((i * 977) % 65535);
  std::vector<uint8_t> valid(v.size(), 1);
  valid[3] = 0;
  valid[20] = 0;
  const auto fast = ComputeChannelStats(a, valid.data());
  for (size_t c = 0; c < 2; ++c)
    ExpectMatchesWelford(fast[c], Welford<uint16_t>(v, c * 15, (c + 1) * 15, valid.data()), 1e-9);
}

// The 8- and 16-bit kernel sums in 32-bit lanes per chunk of 2^16 values: the type's extremes
// over several chunks, masked and not, must come out exact.
TEST(ChannelStatsKernel, SmallIntegerExtremesOverSeveralChunksAreExact) {
  const int64_t n = 3 * 65536 + 6;
  std::vector<uint8_t> every_seventh_invalid(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) every_seventh_invalid[i] = i % 7 != 0;
  auto highest = [&](auto zero, DType dtype) {
    using T = decltype(zero);
    Array top(dtype, {1, 1, n});
    for (auto& x : top.As<T>()) x = std::numeric_limits<T>::max();
    const double max = std::numeric_limits<T>::max();
    for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr),
                                static_cast<const uint8_t*>(every_seventh_invalid.data())}) {
      const ChannelStats s = ComputeChannelStats(top, mask)[0];
      EXPECT_EQ(s.count, mask ? static_cast<uint64_t>(n - (n + 6) / 7) : static_cast<uint64_t>(n))
          << DTypeName(dtype);
      EXPECT_EQ(s.mean, max) << DTypeName(dtype);
      EXPECT_EQ(s.m2, 0.0) << DTypeName(dtype);
      EXPECT_EQ(s.min, max) << DTypeName(dtype);
      EXPECT_EQ(s.max, max) << DTypeName(dtype);
    }
  };
  highest(uint16_t{}, DType::kU16);
  highest(uint8_t{}, DType::kU8);
  highest(int8_t{}, DType::kI8);
  // Alternating lowest and highest: mean halfway, every squared deviation ((max - min) / 2)^2.
  auto alternate = [&](auto zero, DType dtype) {
    using T = decltype(zero);
    Array a(dtype, {1, 1, n});
    auto v = a.As<T>();
    for (int64_t i = 0; i < n; ++i)
      v[i] = i % 2 ? std::numeric_limits<T>::max() : std::numeric_limits<T>::lowest();
    const ChannelStats s = ComputeChannelStats(a, nullptr)[0];
    const double half_range =
        (double(std::numeric_limits<T>::max()) - double(std::numeric_limits<T>::lowest())) / 2;
    EXPECT_EQ(s.mean,
              (double(std::numeric_limits<T>::lowest()) + std::numeric_limits<T>::max()) / 2)
        << DTypeName(dtype);
    EXPECT_EQ(s.m2, double(n) * half_range * half_range) << DTypeName(dtype);
    EXPECT_EQ(s.min, double(std::numeric_limits<T>::lowest())) << DTypeName(dtype);
    EXPECT_EQ(s.max, double(std::numeric_limits<T>::max())) << DTypeName(dtype);
  };
  alternate(int16_t{}, DType::kI16);
  alternate(int8_t{}, DType::kI8);
  alternate(uint8_t{}, DType::kU8);
}

TEST(ChannelStatsKernel, ByteFastPathMatchesWelfordOnLargeTiles) {
  // More values than one 32-bit accumulation chunk, all 255 at the end (the overflow edge).
  Array a(DType::kU8, {2, 300, 300});
  auto v = a.As<uint8_t>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 90000 > 70000 ? 255 : (i * 131) % 256;
  const auto fast = ComputeChannelStats(a, nullptr);
  const size_t plane = v.size() / 2;
  for (size_t c = 0; c < 2; ++c)
    ExpectMatchesWelford(fast[c], Welford<uint8_t>(v, c * plane, (c + 1) * plane, nullptr), 1e-12);
}

TEST(ChannelStatsKernel, FloatLanesMatchWelfordWithAndWithoutInvalidValues) {
  // 3 channels of 1001 values (not a multiple of the lane count), around a large mean.
  Array a(DType::kF32, {3, 7, 143});
  auto v = a.As<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = 50000.0f + static_cast<float>((i * 7919) % 2003);
  const size_t plane = v.size() / 3;
  v[plane + 5] = std::numeric_limits<float>::quiet_NaN();  // channel 1: a NaN, no mask
  std::vector<uint8_t> valid(v.size(), 1);
  valid[2 * plane + 9] = 0;  // channel 2: masked out
  const uint8_t* masks[] = {nullptr, valid.data()};
  for (const uint8_t* mask : masks) {
    const auto fast = ComputeChannelStats(a, mask);
    for (size_t c = 0; c < 3; ++c) {
      SCOPED_TRACE(StrCat("channel ", c));
      ExpectMatchesWelford(fast[c], Welford<float>(v, c * plane, (c + 1) * plane, mask), 1e-12);
    }
  }
}

TEST(ChannelStatsKernel, FarOutlierFirstMatchesWelford) {
  // The statistics sum deviations from the first valid value in one pass; a first value far from
  // all others makes those sums cancel digits, and the result must still match Welford.
  for (const bool masked : {false, true}) {
    Array a(DType::kF64, {1, 500, 400});
    auto v = a.As<double>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = 1e7 + 1e-3 * static_cast<double>(i % 97);
    v[0] = -1e9;
    std::vector<uint8_t> valid(v.size(), 1);
    valid[1] = 0;
    const uint8_t* mask = masked ? valid.data() : nullptr;
    const auto fast = ComputeChannelStats(a, mask);
    ExpectMatchesWelford(fast[0], Welford<double>(v, 0, v.size(), mask), 1e-12);
    EXPECT_EQ(fast[0].min, -1e9);
  }
}

TEST(ChannelStatsKernel, InfinityIsAValidValueThatMakesTheMeanInfinite) {
  Array a(DType::kF32, {1, 4, 8});
  auto v = a.As<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  v[17] = std::numeric_limits<float>::infinity();
  const auto stats = ComputeChannelStats(a, nullptr);
  EXPECT_EQ(stats[0].count, 32u);
  EXPECT_EQ(stats[0].max, std::numeric_limits<double>::infinity());
  EXPECT_EQ(stats[0].min, 0.0);
  EXPECT_TRUE(std::isinf(stats[0].mean));
}

// The kernel against the textbook two-pass computation in double, for every dtype, on lengths that
// are not multiples of the vector width, with NaN (floats), nodata and a mask.
TEST(ChannelStatsKernel, EveryDTypeMatchesDirectDoubleComputationOnOddLengths) {
  for (const DType dtype : {DType::kU8, DType::kI8, DType::kU16, DType::kI16, DType::kU32,
                            DType::kI32, DType::kF32, DType::kF64}) {
    for (const int64_t n : {1, 7, 17, 1001, 70001}) {
      Array a(dtype, {2, 1, n});
      std::vector<double> values(static_cast<size_t>(2 * n));
      VisitDType(dtype, [&](auto zero) {
        using T = decltype(zero);
        T* v = reinterpret_cast<T*>(a.data.data());
        for (size_t i = 0; i < values.size(); ++i) {
          // Spread over the type's range for small types, around a large offset for wide ones.
          const double x = sizeof(T) <= 2 ? static_cast<double>((i * 7919) % 251) - 120.0
                                          : 1e6 + static_cast<double>((i * 7919) % 100003) / 8;
          v[i] = static_cast<T>(std::is_signed_v<T> || x >= 0 ? x : -x);
          if constexpr (std::is_floating_point_v<T>)
            if (i % 13 == 5) v[i] = std::numeric_limits<T>::quiet_NaN();
          values[i] = static_cast<double>(v[i]);
        }
      });
      const double nodata = values[values.size() / 2];
      std::vector<uint8_t> mask(values.size());
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 11 != 3;
      for (const int variant : {0, 1, 2}) {  // plain, nodata, mask
        const auto stats = variant == 0   ? ComputeChannelStats(a)
                           : variant == 1 ? ComputeChannelStats(a, nodata)
                                          : ComputeChannelStats(a, mask.data());
        ASSERT_EQ(stats.size(), 2u);
        for (int64_t c = 0; c < 2; ++c) {
          std::vector<double> channel(values.begin() + c * n, values.begin() + (c + 1) * n);
          if (variant == 2)
            for (int64_t i = 0; i < n; ++i)
              if (!mask[c * n + i]) channel[i] = std::nan("");
          const TwoPass direct =
              DirectStats(channel, variant == 1 ? std::optional<double>(nodata) : std::nullopt);
          const std::string what = StrCat(DTypeName(dtype), " n=", n, " variant ", variant,
                                          " channel ", c);
          EXPECT_EQ(stats[c].count, direct.count) << what;
          EXPECT_EQ(stats[c].total, direct.total) << what;
          EXPECT_NEAR(stats[c].mean, direct.mean, 1e-13 * std::fabs(direct.mean)) << what;
          EXPECT_NEAR(stats[c].variance(), direct.var, 1e-10 * direct.var + 1e-12) << what;
          if (direct.count) {
            EXPECT_EQ(stats[c].min, direct.min) << what;
            EXPECT_EQ(stats[c].max, direct.max) << what;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace tilestage
