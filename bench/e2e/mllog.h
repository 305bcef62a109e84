// Reading MLPerf logs: a tolerant reader for files that mix `:::MLLOG` lines with other output
// (as the public MLPerf HPC result logs and mpirun-tagged output do), for the staging analysis.
// The writer is tiling/mllog.h; its names are also reachable here as bench::MlLogger, ...
//
// Thread-safety: the functions are pure and thread-safe (each thread keeps its own parser).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiling/mllog.h"
#include "tiling/status.h"

namespace tilestage::bench {

using ::tilestage::FormatMlLogLine;
using ::tilestage::Json;
using ::tilestage::kMlLogPrefix;
using ::tilestage::MakeMlEvent;
using ::tilestage::MlEvent;
using ::tilestage::MlEventType;
using ::tilestage::MlEventTypeName;
using ::tilestage::MlLogger;
using ::tilestage::PythonJsonDumps;
using ::tilestage::SourceLocation;
namespace mlkey = ::tilestage::mlkey;

// Parses one line. Returns nullopt for a line without the `:::MLLOG` marker (anything before the
// marker, such as an mpirun "[1,0]<stdout>:" tag, is ignored). A line with the marker must hold a
// JSON object with a string "key", an integral "time_ms" and a known "event_type"; otherwise the
// error is InvalidArgument naming the problem (the caller adds the file and line).
Result<std::optional<MlEvent>> ParseMlLogLine(std::string_view line);

struct MlLogRecord {
  MlEvent event;
  int64_t line = 0;  // 1-based line number in the file
};

// Every `:::MLLOG` event of a file, in file order. NotFound when the file cannot be opened;
// InvalidArgument "<path>:<line>: ..." for a malformed `:::MLLOG` line.
Result<std::vector<MlLogRecord>> ReadMlLog(const std::string& path);
// The same for text already in memory; `where` names the source in errors.
Result<std::vector<MlLogRecord>> ParseMlLog(std::string_view text, const std::string& where);

// A log read to the end: published logs hold the odd damaged line, which should not cost the rest.
struct MlLogContents {
  std::vector<MlLogRecord> records;
  // One per malformed `:::MLLOG` line, skipped: "<where>:<line>: <problem>".
  std::vector<std::string> malformed;
};
MlLogContents ParseMlLogTolerant(std::string_view text, const std::string& where);
// NotFound / IOError only when the file cannot be read at all.
Result<MlLogContents> ReadMlLogTolerant(const std::string& path);

}  // namespace tilestage::bench
