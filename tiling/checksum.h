// 64-bit XXH3 hashes: per-record checksums and whole-shard hashes (FORMAT.md §Checksums).
// Hash64 is stateless and thread-safe; a Hasher is one stream, used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace tilestage {

uint64_t Hash64(std::span<const uint8_t> bytes);
// 16 lowercase hex digits, as written in manifests.
std::string HashToHex(uint64_t hash);

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Update(std::span<const uint8_t> bytes);
  uint64_t Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tilestage
