// MLPerf logging (`:::MLLOG {...}` lines): the one writer, producing the exact line format of the
// mlcommons/logging `mllog` package, so existing MLPerf log tooling (compliance checkers, result
// summarizers, the MLPerf HPC staging analysis) reads what stage, load, train and the end-to-end
// benchmark log. The reader lives with the analysis (bench/e2e/mllog.h).
//
// Line format (the key order is fixed; JSON is written as Python's json.dumps writes it, with ", "
// and ": " separators, non-ASCII escaped, floats in Python repr form):
//   :::MLLOG {"namespace": "", "time_ms": 1632833195185, "event_type": "INTERVAL_START",
//             "key": "staging_start", "value": null, "metadata": {"file": "x.cc", "lineno": 12}}
// Unlike mllog's newest releases, a numeric `value` is written as given (an integer stays an
// integer), which is what the MLPerf HPC v1.0 result logs contain.
//
// Thread-safety: MlLogger serializes its writes with a mutex, so threads may share one. The free
// functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <mutex>
#if __has_include(<source_location>)
#include <source_location>
#endif
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tiling/status.h"

namespace tilestage {

// std::source_location where the standard library provides it. clang 14 (the `fuzz` preset) with
// libstdc++ 12 does not, so the same two accessors come from the builtins it has.
#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
class SourceLocation {
 public:
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          uint_least32_t line = __builtin_LINE()) {
    return SourceLocation(file, line);
  }
  constexpr const char* file_name() const { return file_; }
  constexpr uint_least32_t line() const { return line_; }

 private:
  constexpr SourceLocation(const char* file, uint_least32_t line) : file_(file), line_(line) {}
  const char* file_;
  uint_least32_t line_;
};
#endif

// Insertion-ordered JSON: mllog lines and reports keep their keys in the order written.
using Json = nlohmann::ordered_json;

inline constexpr std::string_view kMlLogPrefix = ":::MLLOG ";

enum class MlEventType { kIntervalStart, kIntervalEnd, kPointInTime };
const char* MlEventTypeName(MlEventType type);  // "INTERVAL_START", ...

// Keys tilestage logs (mllog's constants, plus the MLPerf HPC staging keys).
namespace mlkey {
inline constexpr char kInitStart[] = "init_start";
inline constexpr char kInitStop[] = "init_stop";
inline constexpr char kRunStart[] = "run_start";
inline constexpr char kRunStop[] = "run_stop";
inline constexpr char kStagingStart[] = "staging_start";
inline constexpr char kStagingStop[] = "staging_stop";
inline constexpr char kStagingDuration[] = "staging_duration";
inline constexpr char kEpochStart[] = "epoch_start";
inline constexpr char kEpochStop[] = "epoch_stop";
inline constexpr char kEvalStart[] = "eval_start";
inline constexpr char kEvalStop[] = "eval_stop";
inline constexpr char kEvalAccuracy[] = "eval_accuracy";
inline constexpr char kEpochNum[] = "epoch_num";
inline constexpr char kSubmissionBenchmark[] = "submission_benchmark";
inline constexpr char kSubmissionOrg[] = "submission_org";
inline constexpr char kSubmissionPlatform[] = "submission_platform";
inline constexpr char kNumberOfNodes[] = "number_of_nodes";
inline constexpr char kTrainSamples[] = "train_samples";
inline constexpr char kEvalSamples[] = "eval_samples";
}  // namespace mlkey

struct MlEvent {
  std::string ns;  // "namespace"
  int64_t time_ms = 0;  // milliseconds since the Unix epoch
  MlEventType event_type = MlEventType::kPointInTime;
  std::string key;
  Json value;  // null when absent
  Json metadata = Json::object();  // "file" and "lineno" first, then extras
};

// An event at time_ms whose metadata is the call site's file (relative to the repository, as
// mllog's root_dir makes it) and line, then `metadata`'s members (overriding on a clash), as
// mllog's get_caller does. Metadata that is not an object (or null) is InvalidArgument.
Result<MlEvent> MakeMlEvent(MlEventType type, const std::string& key, Json value, int64_t time_ms,
                            Json metadata = Json::object(),
                            SourceLocation where = SourceLocation::current());

// One event as a full log line (without the trailing newline). Fails only for strings that are not
// valid UTF-8 or metadata that is not a JSON object.
Result<std::string> FormatMlLogLine(const MlEvent& event);

// JSON text exactly as Python's json.dumps (default arguments) writes `value`.
Result<std::string> PythonJsonDumps(const Json& value);

// Writes events to a stream (stdout or a file it owns). Times come from the system clock unless
// given; "file" and "lineno" metadata come from the call site, as mllog's get_caller does.
class MlLogger {
 public:
  // Logs to `out`, which must outlive the logger.
  explicit MlLogger(std::ostream* out, std::string ns = "");
  // Logs to a file, appending; IOError names the path.
  static Result<std::unique_ptr<MlLogger>> OpenFile(const std::string& path, std::string ns = "");
  ~MlLogger();

  Status Start(const std::string& key, Json value = nullptr,
               Json metadata = Json::object(),
               SourceLocation where = SourceLocation::current());
  Status End(const std::string& key, Json value = nullptr,
             Json metadata = Json::object(),
             SourceLocation where = SourceLocation::current());
  Status Event(const std::string& key, Json value = nullptr,
               Json metadata = Json::object(),
               SourceLocation where = SourceLocation::current());
  // Logs a fully specified event (time and metadata as given).
  Status Log(const MlEvent& event);

  // The wall clock of MLLOG lines: milliseconds since the Unix epoch.
  static int64_t NowMs();

 private:
  Status LogAt(MlEventType type, const std::string& key, Json value,
               Json metadata, const SourceLocation& where);

  std::unique_ptr<std::ostream> owned_;
  std::ostream* out_;
  std::string ns_;
  std::string path_;  // for error messages; empty for a caller's stream
  std::mutex mu_;
};

}  // namespace tilestage
