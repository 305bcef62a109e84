// The read stage of `tilestage ingest netcdf` alone: NetcdfDataset::ReadRaw of every time step of
// the variables (whole grids, stored type, no unpacking), through netCDF-C (the library path,
// nc_get_vara under one process-wide lock) and through direct preads (lock-free), on 1 and on
// THREADS threads. Next to netcdf_raw_read (plain nc_get_vara, one call per variable and step)
// this shows what each read path costs before the rest of the ingest (statistics, cutting,
// writing) starts. Each configuration runs `rounds` times alternately; the best is kept.
// Beside the reads, on one thread, the ingest's other duties on the same data, each alone: the
// source files' XXH3 (HashSourceFile, the provenance every store records), unpacking the raw
// steps (Decode: scale/offset, missing values to NaN) and the channel statistics of the decoded
// steps (ComputeChannelStats).
// Prints one JSON line: {"bytes", "steps", "library": {"1": {"seconds", "mb_per_s"}, ...}, ...,
// "duties": {"source_hash_s", "decode_s", "stats_s"}}.
//
// usage: netcdf_read_paths VAR[,VAR...] THREADS ROUNDS FILE...
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ingest/netcdf_dataset.h"
#include "ingest/source_hashes.h"
#include "tiling/stats.h"

namespace {

using tilestage::ingest::NetcdfDataset;
using tilestage::ingest::NetcdfRequest;

// Seconds to read every step once with `threads` threads; bytes read in *bytes.
double ReadAll(const NetcdfDataset& ds, int threads, uint64_t* bytes) {
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  tbb::enumerable_thread_specific<NetcdfDataset::RawStep> raw;
  tbb::task_arena arena(threads);
  const auto t0 = std::chrono::steady_clock::now();
  arena.execute([&] {
    tbb::parallel_for(size_t{0}, ds.steps().size(), [&](size_t step) {
      auto& r = raw.local();
      const auto s = ds.ReadRaw(step, NetcdfDataset::Window{}, &r);
      if (!s.ok()) {
        if (!failed.exchange(true)) std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return;
      }
      total += r.bytes.size();
    });
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed) std::exit(1);
  *bytes = total;
  return seconds;
}

double SecondsOf(const std::function<void()>& work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void ExitOnError(const tilestage::Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  std::exit(1);
}

// Seconds of each duty beyond the read, on the calling thread: {source_hash_s, decode_s, stats_s}.
std::map<std::string, double> Duties(const NetcdfDataset& ds,
                                     const std::vector<std::string>& files) {
  const std::atomic<bool> stop{false};
  std::map<std::string, double> seconds;
  seconds["source_hash_s"] = SecondsOf([&] {
    for (const std::string& f : files)
      ExitOnError(tilestage::ingest::HashSourceFile(f, stop).status());
  });
  std::vector<NetcdfDataset::RawStep> raw(ds.steps().size());
  for (size_t step = 0; step < raw.size(); ++step)
    ExitOnError(ds.ReadRaw(step, NetcdfDataset::Window{}, &raw[step]));
  tilestage::Array decoded;
  std::vector<uint64_t> valid;
  seconds["decode_s"] = SecondsOf([&] {
    for (const auto& r : raw) ExitOnError(ds.Decode(r, &decoded, &valid));
  });
  // Statistics of each step just decoded, still in the CPU cache as in the ingest.
  size_t channels = 0;
  const double decode_and_stats_s = SecondsOf([&] {
    for (const auto& r : raw) {
      ExitOnError(ds.Decode(r, &decoded, &valid));
      channels += tilestage::ComputeChannelStats(decoded).size();
    }
  });
  seconds["stats_s"] = decode_and_stats_s - seconds["decode_s"];
  if (channels == 0) std::exit(1);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s VAR[,VAR...] THREADS ROUNDS FILE...\n", argv[0]);
    return 2;
  }
  NetcdfRequest request;
  std::stringstream in(argv[1]);
  for (std::string v; std::getline(in, v, ',');) request.variables.push_back(v);
  const int threads = std::max(1, std::atoi(argv[2]));
  const int rounds = std::max(1, std::atoi(argv[3]));
  for (int f = 4; f < argc; ++f) request.files.emplace_back(argv[f]);
  std::map<std::string, std::unique_ptr<NetcdfDataset>> datasets;
  for (const bool direct : {false, true}) {
    request.direct_reads = direct;
    auto ds = NetcdfDataset::Open(request);
    if (!ds.ok()) {
      std::fprintf(stderr, "%s\n", ds.status().ToString().c_str());
      return 1;
    }
    datasets[direct ? "direct" : "library"] = std::move(ds).value();
  }
  std::vector<int> thread_counts = {1};
  if (threads > 1) thread_counts.push_back(threads);
  nlohmann::json out;
  std::map<std::string, double> best;
  uint64_t bytes = 0;
  for (int round = 0; round < rounds; ++round) {
    for (int t : thread_counts) {
      for (const char* path : {"library", "direct"}) {
        const double seconds = ReadAll(*datasets[path], t, &bytes);
        const std::string key = std::string(path) + "/" + std::to_string(t);
        if (!best.count(key) || seconds < best[key]) best[key] = seconds;
      }
    }
  }
  std::map<std::string, double> duties;
  for (int round = 0; round < rounds; ++round) {
    for (const auto& [name, seconds] : Duties(*datasets["direct"], request.files)) {
      if (!duties.count(name) || seconds < duties[name]) duties[name] = seconds;
    }
  }
  out["duties"] = duties;
  for (const auto& [key, seconds] : best) {
    const std::string path = key.substr(0, key.find('/'));
    const std::string t = key.substr(key.find('/') + 1);
    out[path][t] = {{"seconds", seconds}, {"mb_per_s", bytes / seconds / 1e6}};
  }
  out["bytes"] = bytes;
  out["steps"] = datasets["direct"]->steps().size();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
