#include "bench/e2e/limits.h"

#include <algorithm>
#include <cstring>

#include "bench/e2e/page_cache.h"
#include "bench/e2e/progress.h"
#include "trainer/gemm.h"

namespace tilestage::bench {

double MemcpyGbPerS(size_t bytes, int rounds) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  double best = 1e30;
  for (int i = 0; i < rounds; ++i) {
    const double t0 = SteadySeconds();
    std::memcpy(b.data(), a.data(), bytes);
    best = std::min(best, SteadySeconds() - t0);
    a[size_t(i) % bytes] = b[bytes - 1 - size_t(i) % bytes];  // keeps the copies observable
  }
  return double(bytes) / best / 1e9;
}

double SgemmGflops(int64_t n, int rounds) {
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n));
  trainer::Gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  double best = 1e30;
  for (int i = 0; i < rounds; ++i) {
    const double t0 = SteadySeconds();
    trainer::Gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, SteadySeconds() - t0);
  }
  return 2.0 * double(n * n * n) / best / 1e9;
}

Result<ReadLimits> MeasureReadLimits(const std::vector<std::string>& staged,
                                     const std::vector<std::string>& inputs) {
  ReadLimits r;
  r.bytes = double(TotalBytes(staged));
  const double input_bytes = double(TotalBytes(inputs));
  if (r.bytes <= 0) return InvalidArgument("read limits: the staged files hold no bytes");
  if (input_bytes <= 0) return InvalidArgument("read limits: the input files hold no bytes");
  TS_RETURN_IF_ERROR(EvictFromPageCache(staged));
  TS_ASSIGN_OR_RETURN(double cold_s, ReadAllSeconds(staged));
  TS_ASSIGN_OR_RETURN(double cached_s, ReadAllSeconds(staged));
  r.cold_gb_per_s = r.bytes / cold_s / 1e9;
  r.cached_gb_per_s = r.bytes / cached_s / 1e9;
  TS_RETURN_IF_ERROR(ReadAllSeconds(inputs).status());  // brings them into the cache
  TS_ASSIGN_OR_RETURN(double inputs_s, ReadAllSeconds(inputs));
  r.inputs_cached_mb_per_s = input_bytes / inputs_s / 1e6;
  return r;
}

Json MachineLimits::ToJson() const {
  return Json{{"memcpy_gb_per_s", memcpy_gb_per_s},
              {"sgemm_gflop_per_s", sgemm_gflop_per_s},
              {"read_cold_gb_per_s", read.cold_gb_per_s},
              {"read_cached_gb_per_s", read.cached_gb_per_s},
              {"read_bytes", read.bytes},
              {"read_inputs_cached_mb_per_s", read.inputs_cached_mb_per_s}};
}

}  // namespace tilestage::bench
