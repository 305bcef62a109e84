// mllog_benchmark: how fast tilestage writes and analyzes MLPerf logs, next to Python (the
// language of mlcommons/logging and of the MLPerf result tooling) doing the same work on the same
// file in the same run, and next to the limit of simply reading the bytes.
//
//   mllog_benchmark [--lines N] [--python /usr/bin/python3] [--json FILE]
//
// Measures, best of 3: (1) analyze: read + parse + staging analysis of an N-line log; the peer is
// Python reading the file, json.loads of every :::MLLOG line and the same staging/run sums;
// the limit is reading the file's bytes (page cache). (2) write: formatting N events as :::MLLOG
// lines; the peer is json.dumps of the same ordered records (what mllog does per event).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "bench/e2e/mllog.h"
#include "bench/e2e/staging_analysis.h"

namespace tilestage::bench {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

template <typename F>
double BestOf3(F&& f) {
  double best = 1e300;
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, Seconds(std::chrono::steady_clock::now() - t0));
  }
  return best;
}

// Cosmoflow-like runs (staging, epochs with nested evaluation, throughput points) until n lines.
std::vector<MlEvent> MakeEvents(int64_t n) {
  std::vector<MlEvent> events;
  int64_t t = 1632833195185;
  auto add = [&](MlEventType type, const char* key, Json value, Json md) {
    MlEvent e;
    e.time_ms = t;
    e.event_type = type;
    e.key = key;
    e.value = std::move(value);
    e.metadata = {{"file", "/workspace/cosmoflow/utils.py"}, {"lineno", 144}};
    for (auto& [k, v] : md.items()) e.metadata[k] = v;
    events.push_back(std::move(e));
  };
  while (static_cast<int64_t>(events.size()) < n) {
    add(MlEventType::kIntervalStart, "run_start", nullptr, Json::object());
    add(MlEventType::kIntervalStart, "staging_start", nullptr, Json::object());
    t += 346045;
    add(MlEventType::kIntervalEnd, "staging_stop", nullptr, {{"staging_duration", 346.045329}});
    for (int epoch = 1; epoch <= 40 && static_cast<int64_t>(events.size()) < n - 8; ++epoch) {
      add(MlEventType::kIntervalStart, "epoch_start", nullptr, {{"epoch_num", epoch}});
      t += 60000;
      add(MlEventType::kPointInTime, "throughput", 8218.659168199312, {{"epoch_num", epoch}});
      add(MlEventType::kIntervalStart, "eval_start", nullptr, {{"epoch_num", epoch}});
      t += 3000;
      add(MlEventType::kIntervalEnd, "eval_stop", nullptr, {{"epoch_num", epoch}});
      add(MlEventType::kIntervalEnd, "epoch_stop", nullptr, {{"epoch_num", epoch}});
      add(MlEventType::kPointInTime, "eval_accuracy", -0.323061107565293, {{"epoch_num", epoch}});
    }
    add(MlEventType::kIntervalEnd, "run_stop", nullptr, {{"status", "success"}});
    t += 1000;
  }
  return events;
}

int Main(int argc, char** argv) {
  int64_t lines = 200000;
  std::string python = "/usr/bin/python3";
  std::string json_out;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--lines") lines = std::atoll(argv[i + 1]);
    else if (flag == "--python") python = argv[i + 1];
    else if (flag == "--json") json_out = argv[i + 1];
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  const std::vector<MlEvent> events = MakeEvents(lines);
  const std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  const std::string log_path = dir + "/tilestage_mllog_benchmark.log";
  const std::string py_path = dir + "/tilestage_mllog_benchmark.py";

  // Write: format every event.
  std::string text;
  const double write_s = BestOf3([&] {
    text.clear();
    for (const MlEvent& e : events) {
      text += *FormatMlLogLine(e);
      text += '\n';
    }
  });
  std::ofstream(log_path, std::ios::binary) << text;
  const double mb = static_cast<double>(text.size()) / 1e6;

  // Analyze.
  size_t runs = 0;
  const double analyze_s = BestOf3([&] {
    auto records = ReadMlLog(log_path);
    auto result = AnalyzeMlLog(*records, log_path);
    runs = result->size();
  });
  // Phases of the analysis, for the report.
  const double parse_s = BestOf3([&] { (void)ParseMlLog(text, log_path); });
  // Limit: only reading the bytes.
  size_t bytes_read = 0;
  const double read_s = BestOf3([&] {
    std::ifstream in(log_path, std::ios::binary | std::ios::ate);
    std::string s(static_cast<size_t>(in.tellg()), '\0');
    in.seekg(0);
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
    bytes_read = static_cast<size_t>(in.gcount());
  });

  // Peer: Python, timed inside the interpreter (startup excluded).
  std::ofstream(py_path) << R"(import json, sys, time, collections
path = sys.argv[1]
def analyze():
    runs, start, staging = [], None, 0.0
    with open(path, encoding='utf-8') as f:
        for line in f:
            i = line.find(':::MLLOG')
            if i < 0: continue
            d = json.loads(line[i + 8:])
            k = d['key']
            if k == 'run_start': start, staging = d['time_ms'], 0.0
            elif k == 'staging_start': s0 = d['time_ms']
            elif k == 'staging_stop': staging += (d['time_ms'] - s0) / 1000
            elif k == 'run_stop': runs.append((staging, (d['time_ms'] - start) / 1000))
    return runs
def write(records):
    return '\n'.join(':::MLLOG ' + json.dumps(r) for r in records)
best_a = best_w = 1e300
records = []
with open(path, encoding='utf-8') as f:
    for line in f:
        records.append(json.loads(line[9:], object_pairs_hook=collections.OrderedDict))
for _ in range(3):
    t = time.perf_counter(); runs = analyze(); best_a = min(best_a, time.perf_counter() - t)
    t = time.perf_counter(); out = write(records); best_w = min(best_w, time.perf_counter() - t)
print(best_a, best_w, len(runs))
)";
  const std::string cmd = python + " " + py_path + " " + log_path;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  double py_analyze_s = 0, py_write_s = 0;
  size_t py_runs = 0;
  if (!pipe || std::fscanf(pipe, "%lf %lf %zu", &py_analyze_s, &py_write_s, &py_runs) != 3) {
    std::cerr << "mllog_benchmark: could not run the Python peer: " << cmd << "\n";
    if (pipe) ::pclose(pipe);
    return 1;
  }
  ::pclose(pipe);
  if (py_runs != runs) {
    std::cerr << "mllog_benchmark: Python found " << py_runs << " runs, tilestage " << runs << "\n";
    return 1;
  }

  const double n = static_cast<double>(events.size());
  std::printf("mllog_benchmark: %zu lines, %.1f MB, %zu runs\n", events.size(), mb, runs);
  std::printf("%-10s %14s %14s %14s %12s %14s\n", "task", "tilestage", "python peer", "limit",
              "vs peer", "of limit");
  std::printf("%-10s %11.1f MB/s %11.1f MB/s %11.1f MB/s %11.2fx %13.1f%%\n", "analyze",
              mb / analyze_s, mb / py_analyze_s, mb / read_s, py_analyze_s / analyze_s,
              100.0 * read_s / analyze_s);
  std::printf("%-10s %11.1f MB/s (parse only, text in memory)\n", "  parse", mb / parse_s);
  std::printf("%-10s %9.0f lines/s %9.0f lines/s %14s %11.2fx %14s\n", "write", n / write_s,
              n / py_write_s, "-", py_write_s / write_s, "-");
  Json j = {{"lines", events.size()},
            {"bytes", bytes_read},
            {"runs", runs},
            {"analyze", {{"tilestage_s", analyze_s}, {"python_s", py_analyze_s},
                         {"read_only_s", read_s}, {"vs_peer", py_analyze_s / analyze_s},
                         {"of_limit", read_s / analyze_s}}},
            {"write", {{"tilestage_s", write_s}, {"python_s", py_write_s},
                       {"vs_peer", py_write_s / write_s}}}};
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
  std::remove(log_path.c_str());
  std::remove(py_path.c_str());
  return 0;
}

}  // namespace
}  // namespace tilestage::bench

int main(int argc, char** argv) { return tilestage::bench::Main(argc, argv); }
