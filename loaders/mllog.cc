#include "loaders/mllog.h"

#include <chrono>
#include <string_view>

namespace tilestage {
namespace {

// Call sites as paths within the repository (tools/cli/stage.cc), as mlperf-logging's own lines
// name their files, not where this build's checkout happens to live.
std::string_view RepositoryPath(std::string_view path) {
#ifdef TILESTAGE_SOURCE_ROOT
  constexpr std::string_view kRoot = TILESTAGE_SOURCE_ROOT;
  if (path.substr(0, kRoot.size()) == kRoot) path.remove_prefix(kRoot.size());
#endif
  while (path.substr(0, 3) == "../") path.remove_prefix(3);  // relative to a build directory
  return path;
}

}  // namespace

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
  meta["file"] = RepositoryPath(file);
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
