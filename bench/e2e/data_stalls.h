// DS-Analyzer's differential runs, repeated: each round times the same batches three ways
// (synthetic: compute only; cached: compute + preprocessing, the data in the page cache; cold:
// compute + preprocessing + fetch, the data evicted first). The figures reported are per-run
// medians over the rounds with their range; where a run came out faster than the one it
// contains (cached < synthetic, cold < cached) the measurement is noise and is flagged as such,
// never overwritten.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "bench/e2e/mllog.h"  // Json
#include "tiling/status.h"

namespace tilestage::bench {

struct StallRound {
  double synthetic_s = 0, cached_s = 0, cold_s = 0;
};

struct StallSummary {
  int rounds = 0;
  StallRound median;  // each run's median over the rounds (mean of the middle two when even)
  StallRound min, max;
  // One line per ordering the measurements violate, saying how often and what the report does
  // about it; empty when synthetic <= cached <= cold held in every round.
  std::vector<std::string> noise;
};

// {"synthetic_s": ..., "cached_s": ..., "cold_s": ...}
Json StallRoundJson(const StallRound& round);

// InvalidArgument for no rounds or a time that is not a positive number (naming the round and
// the run).
Result<StallSummary> SummarizeStallRounds(const std::vector<StallRound>& rounds);

}  // namespace tilestage::bench
