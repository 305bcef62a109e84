// libFuzzer target for the netCDF-3 header parser (classic, 64-bit offset and CDF-5 files), a
// differential one: arbitrary bytes starting with "CDF" are opened with NcFile, and for every
// variable the direct path (our header parser, pread) is read against netCDF-C's own read of the
// same elements (the first and the last); they must agree wherever both succeed.
//   cmake --preset fuzz && cmake --build build/fuzz --target netcdf_header_fuzzer
//   ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=1024
//   build/fuzz/ingest/netcdf_header_fuzzer -max_total_time=300 -max_len=4096 -malloc_limit_mb=2048
//       CORPUS_DIR ingest/fuzz/netcdf_corpus
// The seed corpus (ingest/fuzz/netcdf_corpus, written by ncgen -k nc3/nc6/nc5) is replayed by
// ctest in every build (tiling/fuzz/fuzz_replay_main.cc), without fuzzing.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ingest/netcdf_file.h"

namespace {

// Reads one element at `at` both ways; traps when both succeed and disagree.
void CompareElement(const tilestage::ingest::NcFile& file,
                    const tilestage::ingest::NcVarInfo& var,
                    const tilestage::ingest::NcDirectLayout& layout, std::vector<size_t> at) {
  const std::vector<size_t> one(at.size(), 1);
  std::vector<uint8_t> direct(layout.element_bytes), library(layout.element_bytes);
  if (!file.ReadDirect(layout, var, at, one, direct.data()).ok()) return;
  if (!file.ReadRaw(var, at, one, library.data()).ok()) return;
  if (direct != library) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tilestage::ingest;
  // netCDF-4 files are HDF5, whose own parser is not what this target tests.
  if (size < 4 || std::memcmp(data, "CDF", 3) != 0) return 0;
  static const std::string path = "/tmp/tilestage_netcdf_fuzz_" + std::to_string(getpid()) + ".nc";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  auto file = NcFile::Open(path);
  if (!file.ok()) return 0;
  for (const std::string& name : (*file)->variable_names()) {
    auto var = (*file)->Inquire(name);
    if (!var.ok()) continue;
    (void)(*file)->AllAttrs(var->varid);
    auto layout = (*file)->DirectLayout(*var);
    if (!layout.ok() || !layout->direct || layout->element_bytes == 0 ||
        layout->element_bytes > 8)
      continue;
    bool empty = false;
    std::vector<size_t> last;
    for (size_t len : var->dim_lens) {
      empty = empty || len == 0;
      last.push_back(len == 0 ? 0 : len - 1);
    }
    if (empty) continue;
    CompareElement(**file, *var, *layout, std::vector<size_t>(last.size(), 0));
    CompareElement(**file, *var, *layout, last);
  }
  return 0;
}
