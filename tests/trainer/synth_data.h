// In-memory training data from tiling/synth.h for the trainer tests: x normalized with the
// dataset's own mean and standard deviation, y the class label (as float) when classes > 0.
#pragma once

#include <cmath>
#include <memory>

#include "tiling/synth.h"
#include "trainer/batch_source.h"

namespace tilestage::trainer::testing {

inline std::shared_ptr<InMemoryData> MakeSynthData(int64_t count, std::vector<int64_t> shape,
                                                   int classes, uint64_t seed = 3) {
  auto data = std::make_shared<InMemoryData>();
  data->x_shape = shape;
  data->classes = classes;
  SynthSpec spec;
  spec.shape = shape;
  spec.seed = seed;
  spec.classes = classes;
  for (int64_t i = 0; i < count; ++i) {
    Sample s = MakeSynthSample(spec, uint64_t(i));
    auto x = s.Find("x")->As<float>();
    data->x.insert(data->x.end(), x.begin(), x.end());
    if (classes > 0) data->y.push_back(float(s.Find("y")->As<int32_t>()[0]));
  }
  if (classes > 0) data->y_shape = {1};
  double mean = 0.0, sq = 0.0;
  for (float v : data->x) mean += v;
  mean /= double(data->x.size());
  for (float v : data->x) sq += (v - mean) * (v - mean);
  const double stdev = std::sqrt(sq / double(data->x.size()));
  for (float& v : data->x) v = float((v - mean) / stdev);
  return data;
}

}  // namespace tilestage::trainer::testing

namespace tilestage::trainer::testing {

// A small learnable task: one plane wave of period 6 px per tile, its orientation
// pi * (label + 0.5) / classes the label, random phase and amplitude, plus noise; keyed by
// (seed, index) like tiling/synth.h.
inline std::shared_ptr<InMemoryData> MakeOrientationData(int64_t count, int64_t size, int classes,
                                                         uint64_t seed) {
  auto data = std::make_shared<InMemoryData>();
  data->x_shape = {1, size, size};
  data->y_shape = {1};
  data->classes = classes;
  for (int64_t i = 0; i < count; ++i) {
    const int label = int(CounterHash(seed, uint64_t(i), 0) % uint64_t(classes));
    const double angle = M_PI * (label + 0.5) / classes;
    const double k = 2.0 * M_PI / 6.0;
    const double phase = 2.0 * M_PI * CounterUniform(seed, uint64_t(i), 1);
    const double amp = 0.5 + CounterUniform(seed, uint64_t(i), 2);
    for (int64_t py = 0; py < size; ++py) {
      for (int64_t px = 0; px < size; ++px) {
        const double noise = 0.2 * (CounterUniform(seed, uint64_t(i), 3 + py * size + px) - 0.5);
        data->x.push_back(float(
            amp * std::sin(k * (std::cos(angle) * px + std::sin(angle) * py) + phase) + noise));
      }
    }
    data->y.push_back(float(label));
  }
  return data;
}

}  // namespace tilestage::trainer::testing
