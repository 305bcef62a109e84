// Per-channel statistics for normalization: count, mean, std, min, max and valid fraction.
//
// ComputeChannelStats is the one kernel for a block of values (a tile, a sample): exact integer
// sums for integers up to 16 bits, vectorized sums in double in a fixed lane order for the rest
// (a second pass when the first could lose precision), so its result depends only on the values,
// not on the thread count or instruction set. Partial results from tiles, files and ranks are
// merged with Chan et al.'s pairwise formula into the statistics of the union; merging in a fixed
// order (e.g. by tile or file number) makes the result independent of thread and rank counts.
// Add() is Welford's update, one value at a time. Value types: not synchronized.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "tiling/sample.h"
#include "tiling/status.h"

namespace tilestage {

struct ChannelStats {
  uint64_t count = 0;  // valid values seen
  uint64_t total = 0;  // all values seen, valid or not
  double mean = 0.0;
  double m2 = 0.0;  // sum of squared deviations from the mean
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();

  void Add(double value) {
    ++count;
    ++total;
    const double delta = value - mean;
    mean += delta / static_cast<double>(count);
    m2 += delta * (value - mean);
    if (value < min) min = value;
    if (value > max) max = value;
  }
  void AddInvalid(uint64_t n = 1) { total += n; }
  void Merge(const ChannelStats& other);
  double variance() const { return count ? m2 / static_cast<double>(count) : 0.0; }
  double std() const;
  double valid_fraction() const {
    return total ? static_cast<double>(count) / static_cast<double>(total) : 0.0;
  }

  nlohmann::json ToJson() const;
  static Result<ChannelStats> FromJson(const nlohmann::json& j);
};

// Statistics of a channel-first array ([C, ...]; arrays of rank < 3 are one channel). NaN, and
// values equal to nodata when given, count as invalid.
std::vector<ChannelStats> ComputeChannelStats(const Array& array,
                                              std::optional<double> nodata = std::nullopt);
// The same with a validity mask: `valid` (may be null) is [C, ...] like the array, 0 = invalid;
// NaN is always invalid.
std::vector<ChannelStats> ComputeChannelStats(const Array& array, const uint8_t* valid);
void MergeChannelStats(std::vector<ChannelStats>& into, const std::vector<ChannelStats>& from);
int64_t NumChannels(const Array& array);

}  // namespace tilestage
