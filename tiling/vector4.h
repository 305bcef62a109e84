// Four-wide double vectors (GCC vector types) for the per-value loops that the compiler does not
// vectorize by itself: conditional statistics (tiling/stats.cc) and CF unpacking
// (ingest/cf_attrs.cc). Every operation is plain IEEE arithmetic, lane by lane, so the
// results are the same bits whether the code runs as SSE2 or AVX2.
//
// TS_AVX2_CLONES compiles a function a second time for AVX2 (without FMA, which would change the
// rounding) and picks the version at load time. Not under ThreadSanitizer: the clones' resolvers
// run before TSan's runtime is initialised, and instrumenting them crashes every program at start.
//
// Thread-safety: pure functions on values.
#pragma once

#include <cstdint>
#include <cstring>

namespace tilestage {

// Off under ThreadSanitizer (the resolvers run before its runtime starts) and under clang (the
// `fuzz` preset: clang 14 cannot clone templates or noinline functions); the default version
// computes the same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__)
#define TS_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TS_AVX2_CLONES
#endif

using Double4 = double __attribute__((vector_size(32)));
using Int4 = int64_t __attribute__((vector_size(32)));  // lane masks: all ones is true

template <typename T>
struct Four;  // four values of T in one vector
#define TS_FOUR(T)                                              \
  template <>                                                   \
  struct Four<T> {                                              \
    using type = T __attribute__((vector_size(4 * sizeof(T)))); \
  }
TS_FOUR(int8_t);
TS_FOUR(uint8_t);
TS_FOUR(int16_t);
TS_FOUR(uint16_t);
TS_FOUR(int32_t);
TS_FOUR(uint32_t);
TS_FOUR(int64_t);
TS_FOUR(uint64_t);
TS_FOUR(float);
TS_FOUR(double);
#undef TS_FOUR

// Vectors are passed by pointer and reference: by value, 32-byte vectors cross functions
// differently with and without AVX (-Wpsabi), and these helpers are always inlined anyway.
template <typename T>
[[gnu::always_inline]] inline void LoadDouble4(const T* p, Double4* out) {
  typename Four<T>::type t;
  std::memcpy(&t, p, sizeof t);
  *out = __builtin_convertvector(t, Double4);
}

template <typename T>
[[gnu::always_inline]] inline void StoreDouble4(const Double4& v, T* p) {
  const typename Four<T>::type t = __builtin_convertvector(v, typename Four<T>::type);
  std::memcpy(p, &t, sizeof t);
}

}  // namespace tilestage
