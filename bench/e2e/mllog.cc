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

// A JSON string as Python's json.dumps (ensure_ascii) writes it: \" \\ \b \f \n \r \t, other
// characters below 0x20 and everything from 0x7f up as lowercase \uXXXX, with surrogate pairs
// above the BMP. Fails on bytes that are not UTF-8.
Status AppendPythonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto append_u = [out](uint32_t unit) {
    const char buf[6] = {'\\', 'u', kHex[(unit >> 12) & 15], kHex[(unit >> 8) & 15],
                         kHex[(unit >> 4) & 15], kHex[unit & 15]};
    out->append(buf, 6);
  };
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      if (c == '"' || c == '\\') out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '\b': out->append("\\b"); break;
        case '\f': out->append("\\f"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        default: append_u(c);
      }
      ++i;
      continue;
    }
    // Multi-byte UTF-8: decode, rejecting overlong forms, surrogates and truncation.
    int length = 0;
    uint32_t cp = 0, min_cp = 0;
    if ((c & 0xe0) == 0xc0) length = 2, cp = c & 0x1f, min_cp = 0x80;
    else if ((c & 0xf0) == 0xe0) length = 3, cp = c & 0x0f, min_cp = 0x800;
    else if ((c & 0xf8) == 0xf0) length = 4, cp = c & 0x07, min_cp = 0x10000;
    else return InvalidArgument("mllog string is not valid UTF-8 (byte ", i, ")");
    if (i + length > s.size())
      return InvalidArgument("mllog string is not valid UTF-8 (truncated at byte ", i, ")");
    for (int k = 1; k < length; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80)
        return InvalidArgument("mllog string is not valid UTF-8 (byte ", i + k, ")");
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min_cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return InvalidArgument("mllog string is not valid UTF-8 (byte ", i, ")");
    if (cp >= 0x10000) {
      cp -= 0x10000;
      append_u(0xd800 + (cp >> 10));
      append_u(0xdc00 + (cp & 0x3ff));
    } else {
      append_u(cp);
    }
    i += length;
  }
  out->push_back('"');
  return Status::Ok();
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
      return AppendPythonString(value.get_ref<const std::string&>(), out);
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
        TS_RETURN_IF_ERROR(AppendPythonString(k, out));
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
  // Compiler caches (ccache with base_dir) rewrite the path relative to the build directory.
  while (path.substr(0, 3) == "../") path.remove_prefix(3);
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
  // Written field by field in mllog's order rather than through a temporary record, which would
  // copy the value and the metadata.
  std::string line(kMlLogPrefix);
  line.reserve(256);
  line += "{\"namespace\": ";
  TS_RETURN_IF_ERROR(AppendPythonString(event.ns, &line));
  line += ", \"time_ms\": ";
  line += std::to_string(event.time_ms);
  line += ", \"event_type\": \"";
  line += MlEventTypeName(event.event_type);
  line += "\", \"key\": ";
  TS_RETURN_IF_ERROR(AppendPythonString(event.key, &line));
  line += ", \"value\": ";
  TS_RETURN_IF_ERROR(AppendPythonJson(event.value, &line));
  line += ", \"metadata\": ";
  TS_RETURN_IF_ERROR(AppendPythonJson(event.metadata, &line));
  line += '}';
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
                       SourceLocation where) {
  return LogAt(MlEventType::kIntervalStart, key, std::move(value), std::move(metadata), where);
}
Status MlLogger::End(const std::string& key, Json value, Json metadata,
                     SourceLocation where) {
  return LogAt(MlEventType::kIntervalEnd, key, std::move(value), std::move(metadata), where);
}
Status MlLogger::Event(const std::string& key, Json value, Json metadata,
                       SourceLocation where) {
  return LogAt(MlEventType::kPointInTime, key, std::move(value), std::move(metadata), where);
}

Status MlLogger::LogAt(MlEventType type, const std::string& key, Json value, Json metadata,
                       const SourceLocation& where) {
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
