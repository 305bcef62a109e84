// 64-bit XXH3 hashes: per-record checksums and whole-file hashes of shards and source files
// (FORMAT.md §Checksums). Hash64 and HashWholeFile are thread-safe; a Hasher is one stream, used
// by one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "tiling/status.h"

namespace tilestage {

uint64_t Hash64(std::span<const uint8_t> bytes);
// 16 lowercase hex digits, as written in manifests.
std::string HashToHex(uint64_t hash);

class ReadableFile;

// XXH3-64 of a whole file, read in large blocks. When `stop` is given and becomes true, gives up
// between blocks (an Internal error naming the path), so that a caller that no longer needs the hash does
// not wait for a large file.
Result<uint64_t> HashWholeFile(const ReadableFile& file,
                               const std::atomic<bool>* stop = nullptr);

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Reset();  // starts a new stream, keeping the state's memory
  void Update(std::span<const uint8_t> bytes);
  uint64_t Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tilestage
