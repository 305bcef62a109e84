#include "tiling/checksum.h"

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
// libxxhash's runtime-dispatched XXH3 (AVX2/AVX-512 when the CPU has them; the plain entry
// points of Debian's build are SSE2 only, about 3x slower). Same hash values.
#include <xxh_x86dispatch.h>
#endif

#include <cstdio>

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

Hasher::Hasher() : state_(std::make_unique<State>()) { XXH3_64bits_reset(state_->xxh); }
Hasher::~Hasher() = default;
void Hasher::Update(std::span<const uint8_t> bytes) {
  XXH3_64bits_update(state_->xxh, bytes.data(), bytes.size());
}
uint64_t Hasher::Digest() const { return XXH3_64bits_digest(state_->xxh); }

}  // namespace tilestage
