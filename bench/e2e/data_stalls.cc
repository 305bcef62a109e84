#include "bench/e2e/data_stalls.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tilestage::bench {
namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

// The noise lines for one ordering, `faster` expected to take no longer than `slower`.
void FlagOrder(const std::vector<StallRound>& rounds, double StallRound::*faster,
               double StallRound::*slower, double median_faster, double median_slower,
               const std::string& faster_name, const std::string& slower_name,
               const std::string& stall_name, std::vector<std::string>* noise) {
  int violated = 0;
  for (const StallRound& r : rounds) violated += r.*slower < r.*faster ? 1 : 0;
  if (violated == 0) return;
  std::string line = slower_name + " run faster than " + faster_name + " in " +
                     std::to_string(violated) + " of " + std::to_string(rounds.size()) +
                     " round(s) (noise)";
  if (median_slower < median_faster) {
    line += "; medians " + slower_name + " " + Seconds(median_slower) + " < " + faster_name + " " +
            Seconds(median_faster) + ": " + stall_name + " reported as 0";
  }
  noise->push_back(line);
}

}  // namespace

Json StallRoundJson(const StallRound& r) {
  return {{"synthetic_s", r.synthetic_s}, {"cached_s", r.cached_s}, {"cold_s", r.cold_s}};
}

Result<StallSummary> SummarizeStallRounds(const std::vector<StallRound>& rounds) {
  if (rounds.empty()) return InvalidArgument("data stalls: no rounds measured");
  StallSummary s;
  s.rounds = int(rounds.size());
  for (size_t i = 0; i < rounds.size(); ++i) {
    const StallRound& r = rounds[i];
    for (const auto& [name, v] : {std::pair<const char*, double>{"synthetic_s", r.synthetic_s},
                                  {"cached_s", r.cached_s},
                                  {"cold_s", r.cold_s}}) {
      if (!std::isfinite(v) || v <= 0) {
        return InvalidArgument("data stalls: round ", i + 1, " ", name,
                               " must be a positive number, got ", v);
      }
    }
  }
  for (double StallRound::*run :
       {&StallRound::synthetic_s, &StallRound::cached_s, &StallRound::cold_s}) {
    std::vector<double> v;
    for (const StallRound& r : rounds) v.push_back(r.*run);
    s.median.*run = Median(v);
    s.min.*run = *std::min_element(v.begin(), v.end());
    s.max.*run = *std::max_element(v.begin(), v.end());
  }
  FlagOrder(rounds, &StallRound::synthetic_s, &StallRound::cached_s, s.median.synthetic_s,
            s.median.cached_s, "synthetic", "cached", "preprocessing stall", &s.noise);
  FlagOrder(rounds, &StallRound::cached_s, &StallRound::cold_s, s.median.cached_s, s.median.cold_s,
            "cached", "cold", "fetch stall", &s.noise);
  return s;
}

}  // namespace tilestage::bench
