#include "bench/e2e/mllog.h"

#include <charconv>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>

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
  Json record;
  try {
    record = Json::parse(body);
  } catch (const std::exception& e) {
    return InvalidArgument("malformed :::MLLOG JSON: ", e.what());
  }
  if (!record.is_object()) return InvalidArgument(":::MLLOG payload is not a JSON object");
  MlEvent event;
  auto key = record.find("key");
  if (key == record.end() || !key->is_string())
    return InvalidArgument(":::MLLOG record has no string \"key\"");
  event.key = key->get<std::string>();
  auto time = record.find("time_ms");
  if (time == record.end() || !time->is_number())
    return InvalidArgument(":::MLLOG record '", event.key, "' has no numeric \"time_ms\"");
  if (time->is_number_float()) {
    const double t = time->get<double>();
    if (!std::isfinite(t) || std::fabs(t) > 9e15)
      return InvalidArgument(":::MLLOG record '", event.key, "' has time_ms ", t);
    event.time_ms = static_cast<int64_t>(std::llround(t));
  } else if (time->is_number_unsigned()) {
    const uint64_t t = time->get<uint64_t>();
    if (t > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return InvalidArgument(":::MLLOG record '", event.key, "' has time_ms ", t);
    event.time_ms = static_cast<int64_t>(t);
  } else {
    event.time_ms = time->get<int64_t>();
  }
  auto type = record.find("event_type");
  if (type == record.end() || !type->is_string())
    return InvalidArgument(":::MLLOG record '", event.key, "' has no string \"event_type\"");
  auto parsed_type = ParseEventType(type->get<std::string>());
  if (!parsed_type.ok())
    return InvalidArgument(":::MLLOG record '", event.key, "': ", parsed_type.status().message());
  event.event_type = *parsed_type;
  auto ns = record.find("namespace");
  if (ns != record.end()) {
    if (!ns->is_string())
      return InvalidArgument(":::MLLOG record '", event.key, "' has a non-string \"namespace\"");
    event.ns = ns->get<std::string>();
  }
  auto value = record.find("value");
  if (value != record.end()) event.value = *value;
  auto metadata = record.find("metadata");
  if (metadata != record.end() && !metadata->is_null()) {
    if (!metadata->is_object())
      return InvalidArgument(":::MLLOG record '", event.key, "' has non-object \"metadata\"");
    event.metadata = *metadata;
  }
  return std::optional<MlEvent>(std::move(event));
}

Result<std::vector<MlLogRecord>> ParseMlLog(std::string_view text, const std::string& where) {
  std::vector<MlLogRecord> records;
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
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open mllog file ", path, ": ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IOError("error reading mllog file ", path);
  return ParseMlLog(text.str(), path);
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
