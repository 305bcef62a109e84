#include "bench/e2e/progress.h"

#include <chrono>
#include <cstdio>

namespace tilestage::bench {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress() : t0_(SteadySeconds()) {}

void Progress::Line(const std::string& text) const {
  std::fprintf(stderr, "[e2e %7.1fs] %s\n", Elapsed(), text.c_str());
  std::fflush(stderr);
}

double Progress::Elapsed() const { return SteadySeconds() - t0_; }

std::string FormatFixed(double value, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, value);
  return buf;
}

}  // namespace tilestage::bench
