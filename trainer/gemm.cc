#include "trainer/gemm.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

namespace tilestage::trainer {
namespace generic {
#include "trainer/gemm_kernel.inc"
#include "trainer/softmax_kernel.inc"
}  // namespace generic
namespace avx2 {
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void SoftmaxRows(float* scores, int64_t n, int64_t t, float* lse);
void SoftmaxFromLogSumExp(float* scores, int64_t n, int64_t t, const float* lse);
void SoftmaxBackward(const float* probs, float* d_scores, int64_t n, int64_t t, float scale);
}  // namespace avx2

namespace {

using KernelFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);

// One build of every kernel, chosen together.
struct Kernels {
  KernelFn gemm;
  void (*softmax_rows)(float*, int64_t, int64_t, float*);
  void (*softmax_from_lse)(float*, int64_t, int64_t, const float*);
  void (*softmax_backward)(const float*, float*, int64_t, int64_t, float);
};

Kernels PickKernels() {
#if defined(__x86_64__) && defined(TILESTAGE_HAVE_AVX2_KERNEL)
  // TILESTAGE_GEMM=generic forces the portable build (for comparisons).
  const char* force = std::getenv("TILESTAGE_GEMM");
  const bool forced_generic = force != nullptr && std::string(force) == "generic";
  __builtin_cpu_init();
  if (!forced_generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {&avx2::Gemm, &avx2::SoftmaxRows, &avx2::SoftmaxFromLogSumExp, &avx2::SoftmaxBackward};
  }
#endif
  return {&generic::GemmKernel, &generic::SoftmaxRowsKernel, &generic::SoftmaxFromLogSumExpKernel,
          &generic::SoftmaxBackwardKernel};
}

const Kernels& Chosen() {
  static const Kernels kernels = PickKernels();
  return kernels;
}

KernelFn Kernel() { return Chosen().gemm; }

// Chunk length along the split dimension: a function of the sizes only, so the partition (and
// thus every rounding) is the same whatever the thread count.
int64_t ChunkLength(int64_t extent) {
  int64_t chunk = (extent + 7) / 8;
  chunk = (chunk + 15) / 16 * 16;
  return chunk < 64 ? 64 : chunk;
}

}  // namespace

std::string GemmKernelName() {
  return Kernel() == &generic::GemmKernel ? "eigen-generic" : "eigen-avx2-fma";
}

void GemmSerial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc) {
  Kernel()(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const KernelFn kernel = Kernel();
  if (flops < 4.0e6 || (m < 128 && n < 128)) {
    kernel(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (m >= n) {
    const int64_t chunk = ChunkLength(m);
    const int64_t chunks = (m + chunk - 1) / chunk;
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, chunks, 1),
        [&](const tbb::blocked_range<int64_t>& r) {
          for (int64_t i = r.begin(); i != r.end(); ++i) {
            const int64_t r0 = i * chunk, rows = std::min(chunk, m - r0);
            const float* a0 = trans_a ? a + r0 : a + r0 * lda;
            kernel(trans_a, trans_b, rows, n, k, alpha, a0, lda, b, ldb, beta, c + r0 * ldc, ldc);
          }
        },
        tbb::simple_partitioner());
  } else {
    const int64_t chunk = ChunkLength(n);
    const int64_t chunks = (n + chunk - 1) / chunk;
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, chunks, 1),
        [&](const tbb::blocked_range<int64_t>& r) {
          for (int64_t i = r.begin(); i != r.end(); ++i) {
            const int64_t c0 = i * chunk, cols = std::min(chunk, n - c0);
            const float* b0 = trans_b ? b + c0 * ldb : b + c0;
            kernel(trans_a, trans_b, m, cols, k, alpha, a, lda, b0, ldb, beta, c + c0, ldc);
          }
        },
        tbb::simple_partitioner());
  }
}

void SoftmaxRows(float* scores, int64_t n, int64_t t, float* lse) {
  Chosen().softmax_rows(scores, n, t, lse);
}

void SoftmaxFromLogSumExp(float* scores, int64_t n, int64_t t, const float* lse) {
  Chosen().softmax_from_lse(scores, n, t, lse);
}

void SoftmaxBackward(const float* probs, float* d_scores, int64_t n, int64_t t, float scale) {
  Chosen().softmax_backward(probs, d_scores, n, t, scale);
}

}  // namespace tilestage::trainer
