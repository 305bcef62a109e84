#include "ingest/geotiff_gdal.h"

#include <cpl_error.h>

#include <mutex>

namespace tilestage::ingest {

void EnsureGdalRegistered() {
  static std::once_flag once;
  std::call_once(once, [] { GDALAllRegister(); });
}

GdalErrorScope::GdalErrorScope() {
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
}

GdalErrorScope::~GdalErrorScope() { CPLPopErrorHandler(); }

std::string GdalErrorScope::LastMessage() {
  const char* msg = CPLGetLastErrorMsg();
  return msg ? msg : "";
}

Status GdalErrorScope::Error(StatusCode code, const std::string& context,
                             const std::string& fallback) {
  std::string msg = LastMessage();
  if (msg.empty()) msg = fallback;
  return Status(code, context + ": " + msg);
}

Result<DType> DTypeFromGdal(GDALDataType type, const std::string& where) {
  switch (type) {
    case GDT_Byte:
      return DType::kU8;
    case GDT_UInt16:
      return DType::kU16;
    case GDT_Int16:
      return DType::kI16;
    case GDT_UInt32:
      return DType::kU32;
    case GDT_Int32:
      return DType::kI32;
    case GDT_Float32:
      return DType::kF32;
    case GDT_Float64:
      return DType::kF64;
    default:
      break;
  }
  return Unimplemented(where, ": GDAL data type ", GDALGetDataTypeName(type),
                       " is not supported (u8 u16 i16 u32 i32 f32 f64 are)");
}

GDALDataType GdalFromDType(DType dtype) {
  switch (dtype) {
    case DType::kU8:
      return GDT_Byte;
    case DType::kI8:
      return GDT_Int16;  // GDAL 3.6 has no Int8; never used for reads
    case DType::kU16:
      return GDT_UInt16;
    case DType::kI16:
      return GDT_Int16;
    case DType::kU32:
      return GDT_UInt32;
    case DType::kI32:
      return GDT_Int32;
    case DType::kF32:
      return GDT_Float32;
    case DType::kF64:
      break;
  }
  return GDT_Float64;
}

}  // namespace tilestage::ingest
