// NumPy .npy (format 1.0) encoding of an Array, for `tilestage export` and tests.
// Stateless: thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "tiling/sample.h"

namespace tilestage {

std::vector<uint8_t> EncodeNpy(const Array& array);

}  // namespace tilestage
