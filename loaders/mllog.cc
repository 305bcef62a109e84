#include "loaders/mllog.h"

#include <chrono>

namespace tilestage {

std::string MllogLine(MllogEvent event, const std::string& key, const nlohmann::json& value,
                      uint64_t time_ms, const char* file, int lineno,
                      const nlohmann::json& extra_metadata) {
  const char* type = event == MllogEvent::kIntervalStart ? "INTERVAL_START"
                     : event == MllogEvent::kIntervalEnd ? "INTERVAL_END"
                                                         : "POINT_IN_TIME";
  // ordered_json keeps the key order of mlperf-logging's own lines.
  nlohmann::ordered_json j;
  j["namespace"] = "";
  j["time_ms"] = time_ms;
  j["event_type"] = type;
  j["key"] = key;
  j["value"] = value;
  nlohmann::ordered_json meta;
  meta["file"] = file;
  meta["lineno"] = lineno;
  for (auto it = extra_metadata.begin(); it != extra_metadata.end(); ++it) meta[it.key()] = *it;
  j["metadata"] = meta;
  return ":::MLLOG " + j.dump();
}

uint64_t WallClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace tilestage
