#include "tiling/mllog.h"

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

namespace tilestage {
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

std::string TrimSourcePath(const char* file) {
  std::string_view path(file);
#ifdef TILESTAGE_SOURCE_ROOT
  constexpr std::string_view kRoot = TILESTAGE_SOURCE_ROOT;
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

Result<MlEvent> MakeMlEvent(MlEventType type, const std::string& key, Json value, int64_t time_ms,
                            Json metadata, SourceLocation where) {
  if (!metadata.is_object() && !metadata.is_null())
    return InvalidArgument("mllog metadata for key '", key, "' must be a JSON object");
  MlEvent event;
  event.time_ms = time_ms;
  event.event_type = type;
  event.key = key;
  event.value = std::move(value);
  event.metadata = Json::object();
  event.metadata["file"] = TrimSourcePath(where.file_name());
  event.metadata["lineno"] = where.line();
  if (metadata.is_object())
    for (auto& [k, v] : metadata.items()) event.metadata[k] = v;
  return event;
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
  TS_ASSIGN_OR_RETURN(MlEvent event,
                      MakeMlEvent(type, key, std::move(value), NowMs(), std::move(metadata), where));
  event.ns = ns_;
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

}  // namespace tilestage
