// libFuzzer target for the MLLOG reader and `bench analyze`: arbitrary bytes as a log file, read
// tolerantly (as published result trees are), every accepted event formatted back and re-read
// (it must come back the same), then analyzed and printed as table, JSON and CSV, as
// `tilestage bench analyze` does.
//   cmake --preset fuzz && cmake --build build/fuzz --target mllog_reader_fuzzer
//   build/fuzz/bench/e2e/mllog_reader_fuzzer -max_total_time=300 CORPUS_DIR bench/e2e/fuzz/mllog_corpus
// The seed corpus (bench/e2e/fuzz/mllog_corpus: a tilestage run, a staged CosmoFlow-style run, an
// aborted one, damaged lines) is replayed by ctest in every build (tiling/fuzz/fuzz_replay_main.cc).
// Fuzzed 5 minutes from that corpus (352k runs, 4,227 edges): no crash.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "bench/e2e/mllog.h"
#include "bench/e2e/staging_analysis.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tilestage::bench;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const MlLogContents contents = ParseMlLogTolerant(text, "fuzz.log");
  for (const MlLogRecord& r : contents.records) {
    auto line = FormatMlLogLine(r.event);
    if (!line.ok()) continue;  // a value Python's json.dumps could not write either
    auto again = ParseMlLogLine(*line);
    if (!again.ok() || !again->has_value() || (*again)->key != r.event.key ||
        (*again)->time_ms != r.event.time_ms || (*again)->event_type != r.event.event_type ||
        (*again)->value != r.event.value) {
      __builtin_trap();
    }
  }
  // The analysis reads files, as `bench analyze` does: one per process, in memory-backed /dev/shm
  // where there is one, removed when the process exits.
  struct ScratchDir {
    std::filesystem::path dir;
    bool made = false;
    ~ScratchDir() {
      std::error_code ec;
      if (made) std::filesystem::remove_all(dir, ec);
    }
  };
  static const ScratchDir scratch = [] {
    ScratchDir d;
    d.dir = std::filesystem::path(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") /
            ("mllog_fuzz_" + std::to_string(getpid()));
    std::error_code ec;
    d.made = std::filesystem::create_directories(d.dir, ec) || std::filesystem::is_directory(d.dir);
    return d;
  }();
  if (!scratch.made) return 0;
  const std::string path = (scratch.dir / "result_0.txt").string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), std::streamsize(size));
  auto analysis = AnalyzeMlLogFiles({path}, AnalyzeOptions{});
  if (!analysis.ok()) return 0;
  (void)FormatStagingAnalysis(*analysis, /*per_run=*/true);
  (void)StagingAnalysisToJson(*analysis).dump();
  (void)StagingAnalysisToCsv(*analysis, /*per_run=*/true);
  return 0;
}
