#include "bench/e2e/progress.h"

#include <chrono>
#include <cstdio>
#include <utility>

namespace tilestage::bench {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress() : Progress("e2e") {}

Progress::Progress(std::string tag) : tag_(std::move(tag)), t0_(SteadySeconds()) {}

void Progress::Line(const std::string& text) const {
  std::fprintf(stderr, "[%s %7.1fs] %s\n", tag_.c_str(), Elapsed(), text.c_str());
  std::fflush(stderr);
}

double Progress::Elapsed() const { return SteadySeconds() - t0_; }

std::string FormatFixed(double value, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, value);
  return buf;
}

}  // namespace tilestage::bench
