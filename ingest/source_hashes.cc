#include "ingest/source_hashes.h"

#include <chrono>
#include <filesystem>

#include "tiling/checksum.h"
#include "tiling/storage.h"

namespace tilestage::ingest {

nlohmann::json SourceHash::ToJson() const {
  return {{"path", path}, {"bytes", bytes}, {"xxh3", HashToHex(xxh3)}};
}

Result<SourceHash> HashSourceFile(const std::string& path, const std::atomic<bool>& stop) {
  TS_ASSIGN_OR_RETURN(auto file, LocalStorage()->OpenRead(path));
  TS_ASSIGN_OR_RETURN(const uint64_t hash, HashWholeFile(*file, &stop));
  return SourceHash{path, file->size(), hash};
}

namespace {

// The same file however a command line or a source spells it (relative or absolute).
std::string SameFileKey(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

}  // namespace

EarlySourceHashes::EarlySourceHashes(std::vector<std::string> files) {
  for (std::string& f : files)
    if (index_.emplace(SameFileKey(f), files_.size()).second) files_.push_back(std::move(f));
  hashes_.resize(files_.size());
  thread_ = std::thread([this] {
    for (size_t i = 0; i < files_.size() && !stop_; ++i) {
      Result<SourceHash> hash = HashSourceFile(files_[i], stop_);
      std::lock_guard lock(mu_);
      hashes_[i] = std::move(hash);
      done_.notify_all();
    }
    // The thread ends only when this object does, never while the command is still loading its
    // format library: a thread that ended during that dlopen made LeakSanitizer's tracer crash at
    // exit (IngestHdf5Cli.CxiFileTwoRanksStoreTheSameContentAsOne, 1 run in 2).
    std::unique_lock lock(mu_);
    done_.wait(lock, [this] { return stop_.load(); });
  });
}

EarlySourceHashes::~EarlySourceHashes() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  done_.notify_all();
  thread_.join();
}

std::optional<Result<SourceHash>> EarlySourceHashes::Take(const std::string& path,
                                                          const std::atomic<bool>& stop) {
  const auto it = index_.find(SameFileKey(path));
  if (it == index_.end()) return std::nullopt;
  const size_t i = it->second;
  std::unique_lock lock(mu_);
  // Polled: `stop` belongs to the caller, who cannot notify this condition variable.
  while (!hashes_[i]) {
    if (stop) return std::nullopt;
    done_.wait_for(lock, std::chrono::milliseconds(10));
  }
  Result<SourceHash> hash = *hashes_[i];
  if (hash.ok()) hash->path = path;  // as the caller names it in the provenance
  return hash;
}

}  // namespace tilestage::ingest
