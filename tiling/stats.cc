#include "tiling/stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "tiling/vector4.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tilestage {

void ChannelStats::Merge(const ChannelStats& o) {
  total += o.total;
  if (o.count == 0) return;
  if (count == 0) {
    const uint64_t t = total;
    *this = o;
    total = t;
    return;
  }
  const double n_a = static_cast<double>(count), n_b = static_cast<double>(o.count);
  const double n = n_a + n_b;
  const double delta = o.mean - mean;
  mean += delta * n_b / n;
  m2 += o.m2 + delta * delta * n_a * n_b / n;
  count += o.count;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

double ChannelStats::std() const { return std::sqrt(variance()); }

namespace {

// JSON has no infinity or NaN; an infinite value in the data (valid: only NaN is invalid) makes
// the mean, std and extremes infinite, so those are written as the strings numpy prints.
nlohmann::json NumberToJson(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

Result<double> NumberFromJson(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return InvalidArgument("statistics entry: no ", key);
  const nlohmann::json& v = *it;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  return InvalidArgument("statistics entry: ", key, " is ", v.dump(),
                         ", expected a number, \"inf\", \"-inf\" or \"nan\"");
}

}  // namespace

nlohmann::json ChannelStats::ToJson() const {
  nlohmann::json j = {{"count", count},
                      {"total", total},
                      {"mean", NumberToJson(mean)},
                      {"std", NumberToJson(std())},
                      {"m2", NumberToJson(m2)},
                      {"valid_fraction", valid_fraction()}};
  // An empty channel has no extremes: null min/max.
  j["min"] = count ? NumberToJson(min) : nlohmann::json(nullptr);
  j["max"] = count ? NumberToJson(max) : nlohmann::json(nullptr);
  return j;
}

Result<ChannelStats> ChannelStats::FromJson(const nlohmann::json& j) {
  ChannelStats s;
  if (!j.is_object() || !j.contains("count") || !j.contains("mean") || !j.contains("m2"))
    return InvalidArgument("statistics entry needs count, mean and m2: ", j.dump());
  // Non-negative integers parse as number_unsigned; a float or negative count is malformed.
  const nlohmann::json& count = j.at("count");
  const nlohmann::json& total = j.contains("total") ? j.at("total") : count;
  if (!count.is_number_unsigned() || !total.is_number_unsigned())
    return InvalidArgument("statistics entry: count ", count.dump(), " and total ", total.dump(),
                           " must be non-negative integers");
  s.count = count.get<uint64_t>();
  s.total = total.get<uint64_t>();
  if (s.count > s.total)
    return InvalidArgument("statistics entry: count ", s.count, " exceeds total ", s.total);
  TS_ASSIGN_OR_RETURN(s.mean, NumberFromJson(j, "mean"));
  TS_ASSIGN_OR_RETURN(s.m2, NumberFromJson(j, "m2"));
  if (s.count) {
    TS_ASSIGN_OR_RETURN(s.min, NumberFromJson(j, "min"));
    TS_ASSIGN_OR_RETURN(s.max, NumberFromJson(j, "max"));
  }
  return s;
}

int64_t NumChannels(const Array& array) { return array.shape.size() >= 3 ? array.shape[0] : 1; }

namespace {

// ------------------------------------------------------------------ per-channel kernels

// Integer types up to 16 bits: exact integer sums (vectorizable, no per-value division), turned
// into Welford's (mean, m2) once per tile. Others: two passes in double.
// Floats and 32/64-bit integers: sums in double, in 16 independent lanes (four vectors of four)
// combined in a fixed order at the end, so the result depends only on the values, not on the
// buffer, the thread count or the instruction set. Written with GCC vector types because the
// compiler does not vectorize the conditional (NaN-skipping) loops by itself. WideStats below
// makes one pass over the values, and a second only when the first could lose precision.
enum class Validity { kAll, kNotNan, kMaskedNotNan };

// All-ones lanes where the value counts: not NaN, and (kMaskedNotNan) its mask byte is not 0.
template <Validity kValidity>
[[gnu::always_inline]] inline void ValidLanes(const Double4& x, const uint8_t* valid, Int4* ok) {
  *ok = x == x;
  if constexpr (kValidity == Validity::kMaskedNotNan) {
    Four<uint8_t>::type b;
    std::memcpy(&b, valid, sizeof b);
    *ok &= __builtin_convertvector(b, Int4) != 0;
  }
}

// Whether value i counts (the scalar form of ValidLanes).
template <typename T, Validity kValidity>
[[gnu::always_inline]] inline bool ValidAt(const T* v, const uint8_t* valid, int64_t i) {
  if constexpr (kValidity == Validity::kAll) return true;
  bool ok = v[i] == v[i];
  if constexpr (kValidity == Validity::kMaskedNotNan) ok = ok && valid[i] != 0;
  return ok;
}

// One pass over the valid values: sums of d = x - shift and d * d, then mean = shift + S1 / count
// and m2 = S2 - S1 * S1 / count. The shift keeps the sums small; see WideStats for its choice.
template <typename T, Validity kValidity>
[[gnu::always_inline]] inline ChannelStats ShiftedStats(const T* v, const uint8_t* valid, int64_t n,
                                                        double shift) {
  constexpr int kVectors = 4, kWidth = 4 * kVectors;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ChannelStats s;
  s.total = static_cast<uint64_t>(n);
  const int64_t body = n - n % kWidth;
  Double4 sum[kVectors] = {}, sum_sq[kVectors] = {}, lo[kVectors], hi[kVectors];
  Int4 count[kVectors] = {};
  for (int k = 0; k < kVectors; ++k) {
    lo[k] = Double4{} + kInf;
    hi[k] = Double4{} - kInf;
  }
  for (int64_t i = 0; i < body; i += kWidth) {
    for (int k = 0; k < kVectors; ++k) {
      Double4 x;
      LoadDouble4(v + i + 4 * k, &x);
      Double4 d = x - shift;
      Double4 x_lo = x, x_hi = x;
      if constexpr (kValidity != Validity::kAll) {
        Int4 ok;
        ValidLanes<kValidity>(x, valid + i + 4 * k, &ok);
        d = ok ? d : 0.0;
        x_lo = ok ? x : kInf;
        x_hi = ok ? x : -kInf;
        count[k] -= ok;  // all-ones is -1
      }
      sum[k] += d;
      sum_sq[k] += d * d;
      lo[k] = x_lo < lo[k] ? x_lo : lo[k];
      hi[k] = x_hi > hi[k] ? x_hi : hi[k];
    }
  }
  double s1 = 0.0, s2 = 0.0, min = kInf, max = -kInf;
  uint64_t total_count = kValidity == Validity::kAll ? static_cast<uint64_t>(n) : 0;
  for (int k = 0; k < kVectors; ++k)
    for (int j = 0; j < 4; ++j) {
      s1 += sum[k][j];
      s2 += sum_sq[k][j];
      min = std::min(min, lo[k][j]);
      max = std::max(max, hi[k][j]);
      if constexpr (kValidity != Validity::kAll) total_count += static_cast<uint64_t>(count[k][j]);
    }
  for (int64_t i = body; i < n; ++i) {
    if (!ValidAt<T, kValidity>(v, valid, i)) continue;
    const double x = static_cast<double>(v[i]);
    s1 += x - shift;
    s2 += (x - shift) * (x - shift);
    min = std::min(min, x);
    max = std::max(max, x);
    if constexpr (kValidity != Validity::kAll) ++total_count;
  }
  if (total_count == 0) return s;
  const double count_d = static_cast<double>(total_count);
  s.count = total_count;
  s.mean = shift + s1 / count_d;
  s.m2 = s2 - s1 * (s1 / count_d);
  s.min = min;
  s.max = max;
  return s;
}

// Statistics in one pass, shifted by the first valid value. S1 * S1 / count, which the pass
// subtracts from S2, is count * (mean - shift)^2, and about log10 of its ratio to m2 digits cancel;
// beyond kMaxCancelled (4 of a double's 16 digits) a second pass shifts by the mean just found,
// which makes S1 nearly 0: the classic two-pass formula.
template <typename T, Validity kValidity>
[[gnu::always_inline]] inline ChannelStats WideStats(const T* v, const uint8_t* valid, int64_t n) {
  constexpr double kMaxCancelled = 1e4;
  int64_t first = 0;
  while (first < n && !ValidAt<T, kValidity>(v, valid, first)) ++first;
  if (first == n) {
    ChannelStats none;
    none.total = static_cast<uint64_t>(n);
    return none;
  }
  const double shift = static_cast<double>(v[first]);
  const ChannelStats s = ShiftedStats<T, kValidity>(v, valid, n, shift);
  const double shifted_part = static_cast<double>(s.count) * (s.mean - shift) * (s.mean - shift);
  // Not finite: a NaN where every value was taken as valid (FloatStats starts again, skipping
  // NaN), or an infinity, which leaves the mean infinite and m2 undefined.
  if (shifted_part <= kMaxCancelled * s.m2 || !std::isfinite(s.mean)) return s;
  return ShiftedStats<T, kValidity>(v, valid, n, s.mean);
}

// Fully valid data (the common case) first, without the per-lane tests; a NaN or infinity makes
// the mean non-finite and the NaN-skipping version takes over.
template <typename T>
[[gnu::always_inline]] inline ChannelStats FloatStats(const T* v, const uint8_t* valid, int64_t n) {
  if (valid) return WideStats<T, Validity::kMaskedNotNan>(v, valid, n);
  if constexpr (std::is_floating_point_v<T>) {
    const ChannelStats s = WideStats<T, Validity::kAll>(v, nullptr, n);
    if (std::isfinite(s.mean)) return s;
    return WideStats<T, Validity::kNotNan>(v, nullptr, n);
  } else {
    return WideStats<T, Validity::kAll>(v, nullptr, n);
  }
}

// The float loops are the hottest of a float ingest (NetCDF): compiled once more for AVX2, twice
// the lanes per instruction, and picked at load time. AVX2 without FMA keeps every operation, so
// both versions give bit-identical results.
TS_AVX2_CLONES ChannelStats F32Stats(const float* v, const uint8_t* valid, int64_t n) {
  return FloatStats(v, valid, n);
}
TS_AVX2_CLONES ChannelStats F64Stats(const double* v, const uint8_t* valid, int64_t n) {
  return FloatStats(v, valid, n);
}

// Sums of one chunk of 8- or 16-bit values, offset by a bias that makes them unsigned (x + bias
// in [0, 2^16)): exact for chunks of up to 2^16 values.
struct BiasedSums {
  uint64_t sum = 0;     // of x + bias
  uint64_t sum_sq = 0;  // of (x + bias)^2
  uint32_t count = 0;
  uint32_t lo = ~0u, hi = 0;  // of x + bias, over the values that count
};

// 8- and 16-bit integers in 32-bit lanes the compiler vectorizes (AVX2 clones below). With
// x + bias = 256 h + l (h, l < 256), none of the sums of h * h, h * l, l * l and x + bias over a
// chunk of 2^16 values can overflow 32 bits, and the sum of squares follows from them exactly.
// Invalid values (kMasked) add nothing and are left out of min and max.
template <typename T, bool kMasked>
[[gnu::always_inline]] inline BiasedSums SmallIntChunk(const T* v, const uint8_t* valid,
                                                       int64_t n) {
  constexpr int32_t kBias = std::is_signed_v<T> ? -int32_t{std::numeric_limits<T>::lowest()} : 0;
  uint32_t hh = 0, hl = 0, ll = 0, biased_sum = 0, valid_count = 0;
  uint32_t biased_lo = ~0u, biased_hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    // Masks, not branches or selects, so the loop vectorizes: all ones where the value counts.
    const uint32_t keep = kMasked ? 0u - static_cast<uint32_t>(valid[i] != 0) : ~0u;
    const uint32_t x = static_cast<uint32_t>(static_cast<int32_t>(v[i]) + kBias) & keep;
    const uint32_t h = x >> 8, l = x & 255;
    hh += h * h;
    hl += h * l;
    ll += l * l;
    biased_sum += x;
    valid_count += keep & 1;
    biased_lo = std::min(biased_lo, x | ~keep);
    biased_hi = std::max(biased_hi, x);
  }
  BiasedSums s;
  s.sum = biased_sum;
  s.sum_sq = (uint64_t{hh} << 16) + (uint64_t{hl} << 9) + ll;
  s.count = valid_count;
  s.lo = biased_lo;
  s.hi = biased_hi;
  return s;
}

#if defined(__SSE2__)
// Every byte of a chunk valid (the common case of 8-bit imagery): psadbw sums 16 bytes at once
// and pmaddwd squares and pairs them, about 2x the vectorized loop above (14 against 6 GB/s on
// one core, same sums). `flip` 0x80 turns int8 into its biased byte, x + 128.
BiasedSums ByteChunk(const uint8_t* v, int64_t n, uint8_t flip) {
  const __m128i zero = _mm_setzero_si128(), flip16 = _mm_set1_epi8(static_cast<char>(flip));
  __m128i sum = zero, sum_sq = zero, lo = _mm_set1_epi8(-1), hi = zero;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i x =
        _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)), flip16);
    sum = _mm_add_epi64(sum, _mm_sad_epu8(x, zero));
    const __m128i a = _mm_unpacklo_epi8(x, zero), b = _mm_unpackhi_epi8(x, zero);
    sum_sq = _mm_add_epi32(sum_sq, _mm_add_epi32(_mm_madd_epi16(a, a), _mm_madd_epi16(b, b)));
    lo = _mm_min_epu8(lo, x);
    hi = _mm_max_epu8(hi, x);
  }
  alignas(16) uint64_t sums[2];
  alignas(16) uint32_t squares[4];
  alignas(16) uint8_t los[16], his[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(sums), sum);
  _mm_store_si128(reinterpret_cast<__m128i*>(squares), sum_sq);
  _mm_store_si128(reinterpret_cast<__m128i*>(los), lo);
  _mm_store_si128(reinterpret_cast<__m128i*>(his), hi);
  BiasedSums s;
  s.sum = sums[0] + sums[1];
  for (uint32_t q : squares) s.sum_sq += q;
  for (int k = 0; k < 16; ++k) {
    s.lo = std::min<uint32_t>(s.lo, los[k]);
    s.hi = std::max<uint32_t>(s.hi, his[k]);
  }
  for (; i < n; ++i) {
    const uint32_t x = v[i] ^ flip;
    s.sum += x;
    s.sum_sq += x * x;
    s.lo = std::min(s.lo, x);
    s.hi = std::max(s.hi, x);
  }
  s.count = static_cast<uint32_t>(n);
  return s;
}
#endif

template <typename T>
[[gnu::always_inline]] inline ChannelStats SmallIntStats(const T* v, const uint8_t* valid,
                                                         int64_t n) {
  constexpr int32_t kBias = std::is_signed_v<T> ? -int32_t{std::numeric_limits<T>::lowest()} : 0;
  ChannelStats s;
  s.total = static_cast<uint64_t>(n);
  __int128 sum = 0;
  unsigned __int128 sumsq = 0;
  uint64_t count = 0;
  uint32_t biased_lo = ~0u, biased_hi = 0;
  for (int64_t start = 0; start < n; start += 65536) {
    const int64_t m = std::min<int64_t>(n - start, 65536);
    BiasedSums c;
    if (valid) {
      c = SmallIntChunk<T, true>(v + start, valid + start, m);
    } else {
#if defined(__SSE2__)
      if constexpr (sizeof(T) == 1)
        c = ByteChunk(reinterpret_cast<const uint8_t*>(v + start), m, kBias ? 0x80 : 0);
      else
#endif
        c = SmallIntChunk<T, false>(v + start, nullptr, m);
    }
    // Sum of (x - bias)^2 = sum of x^2 - 2 bias sum of x + count bias^2, x the biased values.
    const __int128 bias = kBias, k = c.count, s1 = c.sum;
    sum += s1 - k * bias;
    sumsq += static_cast<unsigned __int128>(__int128{c.sum_sq} - 2 * bias * s1 + k * bias * bias);
    count += c.count;
    if (c.count) {
      biased_lo = std::min(biased_lo, c.lo);
      biased_hi = std::max(biased_hi, c.hi);
    }
  }
  s.count = count;
  if (count) {
    const __int128 n128 = count;
    const __int128 numerator = n128 * static_cast<__int128>(sumsq) - sum * sum;
    s.mean = static_cast<double>(sum) / static_cast<double>(count);
    s.m2 = static_cast<double>(numerator) / static_cast<double>(count);
    s.min = static_cast<double>(static_cast<int32_t>(biased_lo) - kBias);
    s.max = static_cast<double>(static_cast<int32_t>(biased_hi) - kBias);
  }
  return s;
}

TS_AVX2_CLONES ChannelStats U8Stats(const uint8_t* v, const uint8_t* valid, int64_t n) {
  return SmallIntStats(v, valid, n);
}
TS_AVX2_CLONES ChannelStats I8Stats(const int8_t* v, const uint8_t* valid, int64_t n) {
  return SmallIntStats(v, valid, n);
}
TS_AVX2_CLONES ChannelStats U16Stats(const uint16_t* v, const uint8_t* valid, int64_t n) {
  return SmallIntStats(v, valid, n);
}
TS_AVX2_CLONES ChannelStats I16Stats(const int16_t* v, const uint8_t* valid, int64_t n) {
  return SmallIntStats(v, valid, n);
}

template <typename T>
ChannelStats ChannelStatsOf(const T* v, const uint8_t* valid, int64_t n) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return U8Stats(v, valid, n);
  } else if constexpr (std::is_same_v<T, int8_t>) {
    return I8Stats(v, valid, n);
  } else if constexpr (std::is_same_v<T, uint16_t>) {
    return U16Stats(v, valid, n);
  } else if constexpr (std::is_same_v<T, int16_t>) {
    return I16Stats(v, valid, n);
  } else if constexpr (std::is_same_v<T, float>) {
    return F32Stats(v, valid, n);
  } else if constexpr (std::is_same_v<T, double>) {
    return F64Stats(v, valid, n);
  } else {
    return FloatStats(v, valid, n);
  }
}

}  // namespace

std::vector<ChannelStats> ComputeChannelStats(const Array& array, const uint8_t* valid) {
  const int64_t channels = NumChannels(array);
  const int64_t plane = channels ? array.NumElements() / channels : 0;
  std::vector<ChannelStats> stats(channels);
  VisitDType(array.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* v = reinterpret_cast<const T*>(array.data.data());
    for (int64_t c = 0; c < channels; ++c) {
      const uint8_t* channel_valid = valid ? valid + c * plane : nullptr;
      // A channel without an invalid value takes the faster unmasked path.
      if (channel_valid && !std::memchr(channel_valid, 0, static_cast<size_t>(plane)))
        channel_valid = nullptr;
      stats[c] = ChannelStatsOf<T>(v + c * plane, channel_valid, plane);
    }
  });
  return stats;
}

std::vector<ChannelStats> ComputeChannelStats(const Array& array, std::optional<double> nodata) {
  if (!nodata) return ComputeChannelStats(array, nullptr);
  std::vector<uint8_t> valid(static_cast<size_t>(array.NumElements()));
  VisitDType(array.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* v = reinterpret_cast<const T*>(array.data.data());
    for (size_t i = 0; i < valid.size(); ++i) valid[i] = static_cast<double>(v[i]) != *nodata;
  });
  return ComputeChannelStats(array, valid.data());
}

void MergeChannelStats(std::vector<ChannelStats>& into, const std::vector<ChannelStats>& from) {
  if (into.empty()) into.resize(from.size());
  for (size_t c = 0; c < from.size() && c < into.size(); ++c) into[c].Merge(from[c]);
}

}  // namespace tilestage
