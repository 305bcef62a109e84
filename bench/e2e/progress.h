// A benchmark run's clock and its progress lines on stderr ("[e2e   12.3s] ingest geotiff: 1 file";
// the tag names the command).
//
// Thread-safety: SteadySeconds is thread-safe; Progress is immutable after construction and each
// Line is one fprintf, so threads may share one (their lines do not interleave mid-line).
#pragma once

#include <string>

namespace tilestage::bench {

// Seconds on the steady clock (for differences only).
double SteadySeconds();

class Progress {
 public:
  Progress();  // tagged "e2e"
  explicit Progress(std::string tag);
  void Line(const std::string& text) const;
  double Elapsed() const;

 private:
  std::string tag_;
  double t0_;
};

// printf("%.*f"), for progress lines and tables.
std::string FormatFixed(double value, int precision = 2);

}  // namespace tilestage::bench
