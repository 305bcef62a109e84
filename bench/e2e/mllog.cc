#include "bench/e2e/mllog.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>

#include <simdjson.h>

namespace tilestage::bench {
namespace {

// Python's repr(float): shortest round-trip digits, fixed notation when the decimal exponent is
// in [-4, 16), otherwise d.ddde±XX with at least two exponent digits.
std::string PythonFloatRepr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, end);  // e.g. "-3.4604532980918884e+02"
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  if (exponent >= -4 && exponent < 16) {
    std::string out;
    if (exponent >= 0) {
      const size_t int_digits = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_digits) {
        out = digits + std::string(int_digits - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, int_digits) + "." + digits.substr(int_digits);
      }
    } else {
      out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + out + exp_buf;
}

Status AppendPythonJson(const Json& value, std::string* out) {
  switch (value.type()) {
    case Json::value_t::null:
      *out += "null";
      return Status::Ok();
    case Json::value_t::boolean:
      *out += value.get<bool>() ? "true" : "false";
      return Status::Ok();
    case Json::value_t::number_integer:
      *out += std::to_string(value.get<int64_t>());
      return Status::Ok();
    case Json::value_t::number_unsigned:
      *out += std::to_string(value.get<uint64_t>());
      return Status::Ok();
    case Json::value_t::number_float:
      *out += PythonFloatRepr(value.get<double>());
      return Status::Ok();
    case Json::value_t::string:
      try {
        // nlohmann's ensure_ascii escaping matches Python's: \" \\ \b \f \n \r \t, other control
        // characters and everything from 0x7f up as lowercase \uXXXX (surrogate pairs above BMP).
        *out += value.dump(-1, ' ', /*ensure_ascii=*/true);
      } catch (const std::exception& e) {
        return InvalidArgument("mllog string is not valid UTF-8: ", e.what());
      }
      return Status::Ok();
    case Json::value_t::array: {
      *out += '[';
      bool first = true;
      for (const auto& item : value) {
        if (!first) *out += ", ";
        first = false;
        TS_RETURN_IF_ERROR(AppendPythonJson(item, out));
      }
      *out += ']';
      return Status::Ok();
    }
    case Json::value_t::object: {
      *out += '{';
      bool first = true;
      for (const auto& [k, v] : value.items()) {
        if (!first) *out += ", ";
        first = false;
        TS_RETURN_IF_ERROR(AppendPythonJson(Json(k), out));
        *out += ": ";
        TS_RETURN_IF_ERROR(AppendPythonJson(v, out));
      }
      *out += '}';
      return Status::Ok();
    }
    default:
      return InvalidArgument("mllog value of JSON type ", value.type_name(),
                             " cannot be written");
  }
}

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

std::string TrimSourcePath(const char* file) {
  std::string_view path(file);
#ifdef TILESTAGE_BENCH_SOURCE_ROOT
  constexpr std::string_view kRoot = TILESTAGE_BENCH_SOURCE_ROOT;
  if (path.substr(0, kRoot.size()) == kRoot) path.remove_prefix(kRoot.size());
#endif
  return std::string(path);
}

}  // namespace

const char* MlEventTypeName(MlEventType type) {
  switch (type) {
    case MlEventType::kIntervalStart: return "INTERVAL_START";
    case MlEventType::kIntervalEnd: return "INTERVAL_END";
    case MlEventType::kPointInTime: return "POINT_IN_TIME";
  }
  return "POINT_IN_TIME";
}

Result<std::string> PythonJsonDumps(const Json& value) {
  std::string out;
  TS_RETURN_IF_ERROR(AppendPythonJson(value, &out));
  return out;
}

Result<std::string> FormatMlLogLine(const MlEvent& event) {
  if (!event.metadata.is_object())
    return InvalidArgument("mllog metadata for key '", event.key, "' must be a JSON object");
  Json record = Json::object();
  record["namespace"] = event.ns;
  record["time_ms"] = event.time_ms;
  record["event_type"] = MlEventTypeName(event.event_type);
  record["key"] = event.key;
  record["value"] = event.value;
  record["metadata"] = event.metadata;
  std::string line(kMlLogPrefix);
  TS_RETURN_IF_ERROR(AppendPythonJson(record, &line));
  return line;
}

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

Result<std::vector<MlLogRecord>> ParseMlLog(std::string_view text, const std::string& where) {
  std::vector<MlLogRecord> records;
  records.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  int64_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    auto parsed = ParseMlLogLine(text.substr(start, end - start));
    if (!parsed.ok())
      return Status(parsed.status().code(),
                    StrCat(where, ":", line_number, ": ", parsed.status().message()));
    if (parsed->has_value()) records.push_back({std::move(**parsed), line_number});
    start = end + 1;
  }
  return records;
}

Result<std::vector<MlLogRecord>> ReadMlLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFound("cannot open mllog file ", path, ": ", std::strerror(errno));
  std::string text(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad() || static_cast<size_t>(in.gcount()) != text.size())
    return IOError("error reading mllog file ", path);
  return ParseMlLog(text, path);
}

MlLogger::MlLogger(std::ostream* out, std::string ns) : out_(out), ns_(std::move(ns)) {}
MlLogger::~MlLogger() = default;

Result<std::unique_ptr<MlLogger>> MlLogger::OpenFile(const std::string& path, std::string ns) {
  auto file = std::make_unique<std::ofstream>(path, std::ios::app);
  if (!*file) return IOError("cannot open mllog file ", path, ": ", std::strerror(errno));
  auto logger = std::make_unique<MlLogger>(file.get(), std::move(ns));
  logger->owned_ = std::move(file);
  logger->path_ = path;
  return logger;
}

int64_t MlLogger::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status MlLogger::Start(const std::string& key, Json value, Json metadata,
                       std::source_location where) {
  return LogAt(MlEventType::kIntervalStart, key, std::move(value), std::move(metadata), where);
}
Status MlLogger::End(const std::string& key, Json value, Json metadata,
                     std::source_location where) {
  return LogAt(MlEventType::kIntervalEnd, key, std::move(value), std::move(metadata), where);
}
Status MlLogger::Event(const std::string& key, Json value, Json metadata,
                       std::source_location where) {
  return LogAt(MlEventType::kPointInTime, key, std::move(value), std::move(metadata), where);
}

Status MlLogger::LogAt(MlEventType type, const std::string& key, Json value, Json metadata,
                       const std::source_location& where) {
  if (!metadata.is_object() && !metadata.is_null())
    return InvalidArgument("mllog metadata for key '", key, "' must be a JSON object");
  MlEvent event;
  event.ns = ns_;
  event.time_ms = NowMs();
  event.event_type = type;
  event.key = key;
  event.value = std::move(value);
  // As mllog does: call-site file and line first, caller's metadata after (overriding on clash).
  event.metadata = Json::object();
  event.metadata["file"] = TrimSourcePath(where.file_name());
  event.metadata["lineno"] = where.line();
  if (metadata.is_object())
    for (auto& [k, v] : metadata.items()) event.metadata[k] = v;
  return Log(event);
}

Status MlLogger::Log(const MlEvent& event) {
  TS_ASSIGN_OR_RETURN(std::string line, FormatMlLogLine(event));
  std::lock_guard<std::mutex> lock(mu_);
  *out_ << line << '\n';
  out_->flush();
  if (!*out_)
    return IOError("cannot write mllog line for '", event.key, "' to ",
                   path_.empty() ? std::string("stream") : path_);
  return Status::Ok();
}

}  // namespace tilestage::bench
