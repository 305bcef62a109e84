#include "ingest/modules.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace tilestage::ingest {
namespace {

// The module's entry: a function returning its table of functions.
template <typename Module>
Result<const Module*> LoadModule(const std::string& dir, const char* file, const char* entry,
                                 const char* what) {
  const std::string path = (std::filesystem::path(dir) / file).string();
  // RTLD_LOCAL: the module's own copies of tilestage code stay out of the global namespace.
  void* module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!module)
    return FailedPrecondition(what, " support is not available: cannot load ", path, " (",
                              ::dlerror(), "); it is built with tilestage and must stay beside it");
  void* symbol = ::dlsym(module, entry);
  if (!symbol) return FailedPrecondition(path, ": no ", entry, " (", ::dlerror(), ")");
  return reinterpret_cast<const Module* (*)()>(symbol)();
}

}  // namespace

Result<std::string> ExecutableDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Internal("cannot read /proc/self/exe: ", ec.message());
  return exe.parent_path().string();
}

Result<const FormatsModule*> LoadFormatsModule(const std::string& dir) {
  return LoadModule<FormatsModule>(dir, "libtilestage_formats.so", "TilestageFormatsModule",
                                   "NetCDF, HDF5 and TIFF-stack");
}

void LimitGdalBlasThreads() { ::setenv("OPENBLAS_NUM_THREADS", "1", /*overwrite=*/0); }

Result<const GeoTiffModule*> LoadGeoTiffModule(const std::string& dir) {
  return LoadModule<GeoTiffModule>(dir, "libtilestage_gdal.so", "TilestageGeoTiffModule",
                                   "GeoTIFF");
}

}  // namespace tilestage::ingest
