// Central finite differences against analytic gradients, for the layer and model tests.
// The forward passes run in float32, so the scalar under test is accumulated in double and the
// step is large (1e-2, with Richardson extrapolation) so rounding stays well below the
// tolerance; a checker test shows
// that a 3% error in one gradient entry is caught.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tiling/synth.h"

namespace tilestage::trainer::testing {

struct FdReport {
  int64_t checked = 0;
  int64_t failures = 0;
  double worst_error = 0.0;  // |numeric - analytic| / (atol + rtol * |analytic|), fail above 1
  std::string first_failure;
};

// Perturbs values[i] for every i in [0, n) with stride `stride`, re-evaluating loss().
inline FdReport CheckGradient(const std::function<double()>& loss, float* values,
                              const std::vector<float>& analytic, const std::string& what,
                              int64_t stride = 1, float eps = 1e-2f, double atol = 1e-3,
                              double rtol = 2e-2) {
  FdReport report;
  for (int64_t i = 0; i < int64_t(analytic.size()); i += stride) {
    const float saved = values[i];
    auto central = [&](float h) {
      values[i] = saved + h;
      const double plus = loss();
      values[i] = saved - h;
      const double minus = loss();
      values[i] = saved;
      return (plus - minus) / (double(values[i] + h) - double(values[i] - h));
    };
    // Richardson extrapolation of two central differences cancels the O(h^2) curvature term,
    // so the step can stay large enough for float32 rounding to be negligible.
    const double numeric = (4.0 * central(eps * 0.5f) - central(eps)) / 3.0;
    const double error = std::abs(numeric - analytic[i]) / (atol + rtol * std::abs(analytic[i]));
    ++report.checked;
    report.worst_error = std::max(report.worst_error, error);
    if (error > 1.0) {
      if (report.failures == 0) {
        report.first_failure = what + "[" + std::to_string(i) + "]: numeric " +
                               std::to_string(numeric) + " analytic " + std::to_string(analytic[i]);
      }
      ++report.failures;
    }
  }
  return report;
}

// Deterministic values in [-scale, scale).
inline std::vector<float> RandomVector(int64_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = float((2.0 * CounterUniform(seed, 77, i) - 1.0) * scale);
  return v;
}

// sum_i r_i y_i in double: a scalar whose gradient wrt y is r.
inline double Project(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0.0;
  for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * double(r[i]);
  return s;
}

}  // namespace tilestage::trainer::testing
