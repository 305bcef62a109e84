// Batch: one collated batch as the loader hands it to the trainer. Channel-first float32,
// normalized per channel with the manifest statistics, samples laid out one after another; or,
// with LoaderOptions::keep_stored_dtype, the stored values in the stored dtype (x_stored/y_stored).
//
// The loader recycles the buffers: Loader::Next swaps a filled batch into the caller's Batch and
// takes the caller's previous buffers back for reuse, so steady-state loading allocates nothing.
// Value type: not synchronized; one thread owns a Batch at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tiling/dtype.h"

namespace tilestage {

// An allocator that leaves new elements uninitialized (resize does not zero-fill). The loader
// writes every element of a batch before it delivers it, so a new batch array is first touched by
// the parallel stages that fill it rather than zero-filled by the serial one that sizes it (which
// stalled the pipeline: about 13% of a first epoch of 196 KB records).
// Only value-initialization changes: construction with arguments falls back to std::construct_at.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
};
template <typename T>
using BatchArray = std::vector<T, UninitializedAllocator<T>>;

struct Batch {
  uint64_t epoch = 0;
  uint64_t index_in_epoch = 0;    // batch number within this rank's epoch
  int64_t size = 0;               // B samples (fewer in the last batch, or after skipped records)
  std::vector<int64_t> x_shape;   // per-sample shape of field x, e.g. {C, H, W}
  BatchArray<float> x;            // size * prod(x_shape)
  std::vector<int64_t> y_shape;   // per-sample shape of y; empty when the store has no y
  BatchArray<float> y;            // size * prod(y_shape) (integer labels converted to float)
  std::vector<uint64_t> indices;  // global record index of each sample
  // LoaderOptions::keep_stored_dtype: x and y as the store holds them (little-endian values of
  // x_dtype / y_dtype, laid out as x and y would be), and x and y are empty.
  DType x_dtype = DType::kF32;
  std::vector<uint8_t> x_stored;
  DType y_dtype = DType::kF32;
  std::vector<uint8_t> y_stored;
  // 1 where x held a valid value, 0 where it held NaN or the channel's nodata value (x is 0
  // there); filled only when LoaderOptions::validity_mask is set, else empty.
  std::vector<uint8_t> x_valid;
  // The same for y, filled whenever the store has y (losses skip invalid targets):
  // size * prod(y_shape) bytes, empty when the store has no y.
  std::vector<uint8_t> y_valid;
  // Samples of this batch dropped as corrupt (LoaderOptions::skip_corrupt).
  int64_t skipped = 0;

  int64_t x_elements_per_sample() const {
    int64_t n = 1;
    for (int64_t d : x_shape) n *= d;
    return n;
  }
  int64_t y_elements_per_sample() const {
    if (y_shape.empty()) return 0;
    int64_t n = 1;
    for (int64_t d : y_shape) n *= d;
    return n;
  }
};

}  // namespace tilestage
