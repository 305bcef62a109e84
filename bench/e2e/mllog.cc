#include "bench/e2e/mllog.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include <simdjson.h>

namespace tilestage::bench {
namespace {

Result<MlEventType> ParseEventType(const std::string& name) {
  if (name == "INTERVAL_START") return MlEventType::kIntervalStart;
  if (name == "INTERVAL_END") return MlEventType::kIntervalEnd;
  if (name == "POINT_IN_TIME") return MlEventType::kPointInTime;
  return InvalidArgument("unknown event_type '", name,
                         "' (INTERVAL_START, INTERVAL_END or POINT_IN_TIME)");
}

// simdjson's read-only DOM to an insertion-ordered nlohmann value (key order kept).
Json ToJson(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      Json out = Json::object();
      const simdjson::dom::object object = e.get_object().value_unsafe();
      for (auto field : object)
        out[std::string(field.key)] = ToJson(field.value);
      return out;
    }
    case simdjson::dom::element_type::ARRAY: {
      Json out = Json::array();
      const simdjson::dom::array array = e.get_array().value_unsafe();
      for (auto item : array) out.push_back(ToJson(item));
      return out;
    }
    case simdjson::dom::element_type::INT64: return e.get_int64().value_unsafe();
    case simdjson::dom::element_type::UINT64: return e.get_uint64().value_unsafe();
    case simdjson::dom::element_type::DOUBLE: return e.get_double().value_unsafe();
    case simdjson::dom::element_type::STRING:
      return std::string(e.get_string().value_unsafe());
    case simdjson::dom::element_type::BOOL: return e.get_bool().value_unsafe();
    case simdjson::dom::element_type::NULL_VALUE: return nullptr;
  }
  return nullptr;
}

}  // namespace

Result<std::optional<MlEvent>> ParseMlLogLine(std::string_view line) {
  constexpr std::string_view kMarker = ":::MLLOG";
  const size_t at = line.find(kMarker);
  if (at == std::string_view::npos) return std::optional<MlEvent>();
  std::string_view body = line.substr(at + kMarker.size());
  while (!body.empty() && (body.back() == '\r' || body.back() == ' ' || body.back() == '\t'))
    body.remove_suffix(1);
  // simdjson parses several times faster than a DOM of nlohmann::json (bench/e2e/
  // mllog_benchmark); one parser per thread keeps its buffers between lines.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(body.data(), body.size()).get(root))
    return InvalidArgument("malformed :::MLLOG JSON: ", simdjson::error_message(error));
  simdjson::dom::object record;
  if (root.get(record)) return InvalidArgument(":::MLLOG payload is not a JSON object");
  MlEvent event;
  std::string_view key;
  if (record["key"].get(key))
    return InvalidArgument(":::MLLOG record has no string \"key\"");
  event.key = std::string(key);
  simdjson::dom::element time;
  if (record["time_ms"].get(time) || !(time.is_int64() || time.is_uint64() || time.is_double()))
    return InvalidArgument(":::MLLOG record '", event.key, "' has no numeric \"time_ms\"");
  if (time.is_int64()) {
    event.time_ms = time.get_int64().value_unsafe();
  } else if (time.is_uint64()) {
    return InvalidArgument(":::MLLOG record '", event.key, "' has time_ms ",
                           time.get_uint64().value_unsafe());
  } else {
    const double t = time.get_double().value_unsafe();
    if (!std::isfinite(t) || std::fabs(t) > 9e15)
      return InvalidArgument(":::MLLOG record '", event.key, "' has time_ms ", t);
    event.time_ms = static_cast<int64_t>(std::llround(t));
  }
  std::string_view type;
  if (record["event_type"].get(type))
    return InvalidArgument(":::MLLOG record '", event.key, "' has no string \"event_type\"");
  auto parsed_type = ParseEventType(std::string(type));
  if (!parsed_type.ok())
    return InvalidArgument(":::MLLOG record '", event.key, "': ", parsed_type.status().message());
  event.event_type = *parsed_type;
  simdjson::dom::element ns;
  if (!record["namespace"].get(ns)) {
    std::string_view ns_text;
    if (ns.get(ns_text))
      return InvalidArgument(":::MLLOG record '", event.key, "' has a non-string \"namespace\"");
    event.ns = std::string(ns_text);
  }
  simdjson::dom::element value;
  if (!record["value"].get(value)) event.value = ToJson(value);
  simdjson::dom::element metadata;
  if (!record["metadata"].get(metadata) && !metadata.is_null()) {
    if (!metadata.is_object())
      return InvalidArgument(":::MLLOG record '", event.key, "' has non-object \"metadata\"");
    event.metadata = ToJson(metadata);
  }
  return std::optional<MlEvent>(std::move(event));
}

namespace {

// Calls `on_line(line_number, parsed)` for every line; stops early when it returns false.
template <typename OnLine>
void ForEachMlLogLine(std::string_view text, OnLine on_line) {
  int64_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    if (!on_line(line_number, ParseMlLogLine(text.substr(start, end - start)))) return;
    start = end + 1;
  }
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFound("cannot open mllog file ", path, ": ", std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) return IOError("cannot read mllog file ", path, " (not a regular file?)");
  std::string text(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad() || static_cast<size_t>(in.gcount()) != text.size())
    return IOError("error reading mllog file ", path);
  return text;
}

}  // namespace

Result<std::vector<MlLogRecord>> ParseMlLog(std::string_view text, const std::string& where) {
  std::vector<MlLogRecord> records;
  records.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  Status error = Status::Ok();
  ForEachMlLogLine(text, [&](int64_t line, Result<std::optional<MlEvent>> parsed) {
    if (!parsed.ok()) {
      error = Status(parsed.status().code(),
                     StrCat(where, ":", line, ": ", parsed.status().message()));
      return false;
    }
    if (parsed->has_value()) records.push_back({std::move(**parsed), line});
    return true;
  });
  if (!error.ok()) return error;
  return records;
}

MlLogContents ParseMlLogTolerant(std::string_view text, const std::string& where) {
  MlLogContents out;
  ForEachMlLogLine(text, [&](int64_t line, Result<std::optional<MlEvent>> parsed) {
    if (!parsed.ok()) {
      out.malformed.push_back(StrCat(where, ":", line, ": ", parsed.status().message()));
    } else if (parsed->has_value()) {
      out.records.push_back({std::move(**parsed), line});
    }
    return true;
  });
  return out;
}

Result<std::vector<MlLogRecord>> ReadMlLog(const std::string& path) {
  TS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseMlLog(text, path);
}

Result<MlLogContents> ReadMlLogTolerant(const std::string& path) {
  TS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseMlLogTolerant(text, path);
}

}  // namespace tilestage::bench
