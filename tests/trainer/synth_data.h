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
