// MLPerf-style log lines (":::MLLOG {json}"), as the mlperf-logging package writes them, so its
// tooling (and the MLPerf HPC staging analysis) reads tilestage's staging and loading events:
//   :::MLLOG {"namespace": "", "time_ms": 1700000000000, "event_type": "INTERVAL_START",
//             "key": "staging_start", "value": null, "metadata": {"file": "x.cc", "lineno": 12}}
// Thread-safety: pure formatting, no shared state.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tilestage {

enum class MllogEvent { kIntervalStart, kIntervalEnd, kPointInTime };

// One line without the trailing newline. time_ms is wall-clock milliseconds since the epoch;
// extra_metadata members are added beside file (the path within the repository) and lineno.
std::string MllogLine(MllogEvent event, const std::string& key, const nlohmann::json& value,
                      uint64_t time_ms, const char* file, int lineno,
                      const nlohmann::json& extra_metadata = nlohmann::json::object());
uint64_t WallClockMs();

}  // namespace tilestage

#define TS_MLLOG(event, key, value, time_ms, ...) \
  ::tilestage::MllogLine(event, key, value, time_ms, __FILE__, __LINE__, ##__VA_ARGS__)
