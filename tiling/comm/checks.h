// Argument checks shared by the Communicator implementations, so that both refuse the same calls
// with the same InvalidArgument before any rank starts communicating. Thread-safety: pure.
#pragma once

#include <cstdint>
#include <span>

#include "tiling/status.h"

namespace tilestage::comm_internal {

inline Status CheckRoot(int root, int size, const char* call) {
  if (root < 0 || root >= size)
    return InvalidArgument(call, ": root ", root, " is not a rank of a communicator of ", size);
  return Status::Ok();
}

// One block per rank, each inside the buffer.
inline Status CheckBlocks(uint64_t buffer_bytes, std::span<const uint64_t> counts,
                          std::span<const uint64_t> offsets, int size, const char* call) {
  if (counts.size() != static_cast<size_t>(size) || offsets.size() != static_cast<size_t>(size))
    return InvalidArgument(call, ": ", counts.size(), " counts and ", offsets.size(),
                           " offsets for ", size, " ranks");
  for (size_t r = 0; r < counts.size(); ++r)
    if (offsets[r] > buffer_bytes || counts[r] > buffer_bytes - offsets[r])
      return InvalidArgument(call, ": rank ", r, "'s block [", offsets[r], ", +", counts[r],
                             ") lies outside the buffer of ", buffer_bytes, " bytes");
  return Status::Ok();
}

}  // namespace tilestage::comm_internal
