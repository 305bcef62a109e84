// Gemm: C = alpha * op(A) * op(B) + beta * C on row-major float buffers (cblas_sgemm's contract
// in row-major order), computed by Eigen's GEMM kernels over Eigen::Map views of the buffers and
// split across TBB tasks by rows or columns of C.
//
// The split is a fixed function of the matrix sizes (never of the thread count), and every element
// of C is produced by one task, so results are bitwise reproducible run to run. Thread-safe: calls
// on disjoint C may run concurrently (nested TBB parallelism is fine).
#pragma once

#include <cstdint>
#include <string>

namespace tilestage::trainer {

// op(A) is m x k (A is m x k with row stride lda, or k x m when trans_a); op(B) is k x n.
// beta must be 0 (C is overwritten, may hold garbage) or any other value (C is scaled).
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Same, on the calling thread only (for use inside an already parallel loop).
void GemmSerial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);

// Attention's row softmax, built and chosen with the GEMM kernel (its exp vectorized as wide as
// the CPU allows), on n rows of t floats on the calling thread:
//  - SoftmaxRows: each row of scores becomes its softmax; lse[i] = the row's log-sum-exp;
//  - SoftmaxFromLogSumExp: the same softmax from the scores and lse (exp(score - lse[i]));
//  - SoftmaxBackward: d_scores (dP on entry) becomes scale * P * (dP - rowsum(dP * P)).
void SoftmaxRows(float* scores, int64_t n, int64_t t, float* lse);
void SoftmaxFromLogSumExp(float* scores, int64_t n, int64_t t, const float* lse);
void SoftmaxBackward(const float* probs, float* d_scores, int64_t n, int64_t t, float scale);

// Which kernel build runs: "eigen-avx2-fma" when the CPU supports it (a separately compiled
// copy of the kernel, picked at run time), else "eigen-generic".
std::string GemmKernelName();

}  // namespace tilestage::trainer
