#include "tiling/synth.h"

#include <cmath>
#include <limits>

namespace tilestage {

uint64_t CounterHash(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^
               (stream + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
               counter * 0x94D049BB133111EBull;
  for (int round = 0; round < 2; ++round) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
  }
  return z;
}

double CounterUniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return static_cast<double>(CounterHash(seed, stream, counter) >> 11) * 0x1.0p-53;
}

Sample MakeSynthSample(const SynthSpec& spec, uint64_t index) {
  const int64_t channels = spec.shape.size() >= 3 ? spec.shape[0] : 1;
  const int64_t width = spec.shape.empty() ? 1 : spec.shape.back();
  Array x(spec.dtype, spec.shape);
  const int64_t n = x.NumElements();
  const int64_t per_channel = n / channels;
  const int label = spec.classes > 0
      ? static_cast<int>(CounterHash(spec.seed, index, 0) % static_cast<uint64_t>(spec.classes))
      : 0;
  constexpr double kPi = 3.14159265358979323846;
  constexpr int kWaves = 3;

  std::vector<double> field(per_channel);
  for (int64_t c = 0; c < channels; ++c) {
    std::fill(field.begin(), field.end(), 0.0);
    for (int w = 0; w < kWaves; ++w) {
      const uint64_t stream = (index << 8) ^ (c << 4) ^ w;
      // With labels, the first wave's orientation encodes the class; others are random.
      double angle = 2 * kPi * CounterUniform(spec.seed, stream, 1);
      if (spec.classes > 0 && w == 0) angle = kPi * (label + 0.5) / spec.classes;
      const double freq = (w == 0 ? 0.06 : 0.02 + 0.1 * CounterUniform(spec.seed, stream, 2));
      const double phase = 2 * kPi * CounterUniform(spec.seed, stream, 3);
      const double amp = (w == 0 ? 1.0 : 0.5) * (0.5 + CounterUniform(spec.seed, stream, 4));
      const double kx = freq * std::cos(angle), ky = freq * std::sin(angle);
      for (int64_t i = 0; i < per_channel; ++i) {
        const double px = static_cast<double>(i % width), py = static_cast<double>(i / width);
        field[i] += amp * std::sin(kx * px + ky * py + phase);
      }
    }
    const uint64_t noise_stream = (index << 8) ^ (c << 4) ^ 0xF;
    const double offset = 2.0 * CounterUniform(spec.seed, noise_stream, 0);
    VisitDType(spec.dtype, [&](auto zero) {
      using T = decltype(zero);
      T* out = reinterpret_cast<T*>(x.data.data()) + c * per_channel;
      for (int64_t i = 0; i < per_channel; ++i) {
        // Noise from a cheap per-element hash keeps generation fast at benchmark scale.
        const double noise = 0.1 * (CounterUniform(spec.seed, noise_stream, i + 1) - 0.5);
        const double v = field[i] + offset + noise;  // roughly in [-2, 4]
        if constexpr (std::is_floating_point_v<T>) {
          out[i] = static_cast<T>(v);
        } else {
          constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());
          constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
          const double scaled = std::is_signed_v<T> ? v / 4.0 * hi : (v + 2.0) / 6.0 * hi;
          out[i] = static_cast<T>(std::lround(std::clamp(scaled, lo, hi)));
        }
      }
    });
  }
  Sample sample;
  sample.Add("x", std::move(x));
  if (spec.classes > 0) sample.Add("y", Array::FromVector<int32_t>({1}, {label}));
  sample.meta = {{"index", index}, {"seed", spec.seed}};
  if (spec.classes > 0) sample.meta["label"] = label;
  return sample;
}

}  // namespace tilestage
