// GDAL plumbing for the GeoTIFF source: one-time driver registration, and the conversion of
// GDAL's error state (CPLGetLastErrorMsg) into Status.
//
// GDAL keeps its last error per thread, so a GdalErrorScope on the stack of the thread making the
// GDAL calls is all the synchronization needed. While a scope is alive, GDAL's messages are not
// printed (they come back in the Status instead).
#pragma once

#include <gdal.h>

#include <string>

#include "tiling/dtype.h"
#include "tiling/status.h"

namespace tilestage::ingest {

// Registers GDAL's drivers once per process; thread-safe.
void EnsureGdalRegistered();

class GdalErrorScope {
 public:
  GdalErrorScope();
  ~GdalErrorScope();
  GdalErrorScope(const GdalErrorScope&) = delete;
  GdalErrorScope& operator=(const GdalErrorScope&) = delete;

  // GDAL's last error message on this thread ("" when none).
  static std::string LastMessage();
  // `code`(context, ": ", GDAL's message or `fallback`).
  static Status Error(StatusCode code, const std::string& context,
                      const std::string& fallback = "GDAL reported no detail");
};

// GDAL type -> tilestage DType; Unimplemented for complex and 64-bit integer types.
Result<DType> DTypeFromGdal(GDALDataType type, const std::string& where);
GDALDataType GdalFromDType(DType dtype);

}  // namespace tilestage::ingest
