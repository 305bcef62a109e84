// The GEMM and softmax kernels compiled with -mavx2 -mfma (see trainer/CMakeLists.txt), entered
// only when the CPU reports both features. Eigen's namespace is renamed for this translation unit
// so that its template instances, built with AVX2 code, cannot be chosen by the linker for generic
// callers.
#define Eigen tilestage_eigen_avx2
#include <Eigen/Core>
#include <cmath>
#include <cstdint>

namespace tilestage::trainer::avx2 {
#include "trainer/gemm_kernel.inc"
#include "trainer/softmax_kernel.inc"

void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  GemmKernel(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void SoftmaxRows(float* scores, int64_t n, int64_t t, float* lse) {
  SoftmaxRowsKernel(scores, n, t, lse);
}
void SoftmaxFromLogSumExp(float* scores, int64_t n, int64_t t, const float* lse) {
  SoftmaxFromLogSumExpKernel(scores, n, t, lse);
}
void SoftmaxBackward(const float* probs, float* d_scores, int64_t n, int64_t t, float scale) {
  SoftmaxBackwardKernel(probs, d_scores, n, t, scale);
}
}  // namespace tilestage::trainer::avx2
