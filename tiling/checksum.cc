#include "tiling/checksum.h"

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
// libxxhash's runtime-dispatched XXH3 (AVX2/AVX-512 when the CPU has them; the plain entry
// points of Debian's build are SSE2 only, about 3x slower). Same hash values.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cstdio>
#include <vector>

#include "tiling/storage.h"

namespace tilestage {

uint64_t Hash64(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string HashToHex(uint64_t hash) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

struct Hasher::State {
  XXH3_state_t* xxh = XXH3_createState();
  ~State() { XXH3_freeState(xxh); }
};

Hasher::Hasher() : state_(std::make_unique<State>()) { Reset(); }
Hasher::~Hasher() = default;
void Hasher::Reset() { XXH3_64bits_reset(state_->xxh); }
void Hasher::Update(std::span<const uint8_t> bytes) {
  XXH3_64bits_update(state_->xxh, bytes.data(), bytes.size());
}
uint64_t Hasher::Digest() const { return XXH3_64bits_digest(state_->xxh); }

Result<uint64_t> HashWholeFile(const ReadableFile& file, const std::atomic<bool>* stop) {
  // Blocks that stay in a core's L2 cache between the read and the hash (1 GB cached: 8 MiB
  // blocks 0.19-0.23 s, 1 MiB 0.17 s on one core).
  constexpr uint64_t kBlockBytes = 1 << 20;
  const uint64_t size = file.size();
  std::vector<uint8_t> buf(std::min(kBlockBytes, size));
  Hasher hasher;
  for (uint64_t off = 0; off < size; off += kBlockBytes) {
    if (stop && *stop) return Internal(file.path(), ": hashing stopped");
    const uint64_t n = std::min(kBlockBytes, size - off);
    TS_RETURN_IF_ERROR(file.ReadAt(off, {buf.data(), n}));
    hasher.Update({buf.data(), n});
  }
  return hasher.Digest();
}

}  // namespace tilestage
