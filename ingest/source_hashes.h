// Provenance hashes of source files: XXH3 of each whole file, as the manifest records them.
//
// EarlySourceHashes lets a single-process ingest start hashing its input files before it has
// loaded its format library (Debian's GDAL: ~45 ms of dynamic loading on one core) and opened the
// source, on a thread of its own; the driver (DriverOptions::early_hashes) then takes each file's
// hash from here instead of reading the file again. Under MPI each rank hashes only the files of
// its own items, which are known only once the source is open, so ranks do not use it.
// Thread-safety: HashSourceFile is a plain function; an EarlySourceHashes may be used by any
// number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tiling/status.h"

namespace tilestage::ingest {

// XXH3 of one source file, as the manifest's provenance lists it.
struct SourceHash {
  std::string path;
  uint64_t bytes = 0;
  uint64_t xxh3 = 0;

  nlohmann::json ToJson() const;
};

// XXH3 of a source file. Gives up once `stop` is set (an Internal error naming the file).
Result<SourceHash> HashSourceFile(const std::string& path, const std::atomic<bool>& stop);

class EarlySourceHashes {
 public:
  // Starts hashing `files` (duplicates once), in order.
  explicit EarlySourceHashes(std::vector<std::string> files);
  // Stops the hashing between blocks and waits for its thread.
  ~EarlySourceHashes();
  EarlySourceHashes(const EarlySourceHashes&) = delete;
  EarlySourceHashes& operator=(const EarlySourceHashes&) = delete;

  // The hash of `path` when it names one of the files given (relative or absolute), once it is
  // computed, with `path` as its path; nullopt for other files, and when `stop` is set while
  // waiting (the caller no longer needs it).
  std::optional<Result<SourceHash>> Take(const std::string& path, const std::atomic<bool>& stop);

 private:
  std::vector<std::string> files_;
  // Each file's absolute, normalized path -> its index in files_ (a century of daily files is
  // 36,500 of them: no linear search per file).
  std::unordered_map<std::string, size_t> index_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable done_;
  std::vector<std::optional<Result<SourceHash>>> hashes_;  // by index in files_, under mu_
  std::thread thread_;
};

}  // namespace tilestage::ingest
