#include "tiling/json_read.h"

namespace tilestage {

Result<nlohmann::json> ParseBoundedJson(std::span<const uint8_t> bytes, const std::string& where) {
  bool too_deep = false;
  const auto limit_depth = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    const bool opens = event == nlohmann::json::parse_event_t::object_start ||
                       event == nlohmann::json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth) too_deep = true;
    return !too_deep;  // the parser keeps no more of the document
  };
  try {
    nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), limit_depth);
    if (too_deep) return DataLoss(where, ": nested more than ", kMaxJsonDepth, " levels deep");
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    if (too_deep) return DataLoss(where, ": nested more than ", kMaxJsonDepth, " levels deep");
    return DataLoss(where, ": not valid JSON at byte ", e.byte);
  }
}

Result<nlohmann::json> ParseBoundedJson(const std::string& text, const std::string& where) {
  return ParseBoundedJson({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, where);
}

}  // namespace tilestage
