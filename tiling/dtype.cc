#include "tiling/dtype.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace tilestage {

size_t DTypeSize(DType dtype) {
  return VisitDType(dtype, [](auto v) { return sizeof(v); });
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kU8: return "u8";
    case DType::kI8: return "i8";
    case DType::kU16: return "u16";
    case DType::kI16: return "i16";
    case DType::kU32: return "u32";
    case DType::kI32: return "i32";
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
  }
  return "?";
}

const char* DTypeNumpy(DType dtype) {
  switch (dtype) {
    case DType::kU8: return "|u1";
    case DType::kI8: return "|i1";
    case DType::kU16: return "<u2";
    case DType::kI16: return "<i2";
    case DType::kU32: return "<u4";
    case DType::kI32: return "<i4";
    case DType::kF32: return "<f4";
    case DType::kF64: return "<f8";
  }
  return "?";
}

Result<DType> ParseDType(std::string_view name) {
  struct Alias { std::string_view a, b; DType d; };
  static constexpr Alias kAliases[] = {
      {"u8", "uint8", DType::kU8},     {"i8", "int8", DType::kI8},
      {"u16", "uint16", DType::kU16},  {"i16", "int16", DType::kI16},
      {"u32", "uint32", DType::kU32},  {"i32", "int32", DType::kI32},
      {"f32", "float32", DType::kF32}, {"f64", "float64", DType::kF64},
  };
  for (const auto& alias : kAliases) {
    if (name == alias.a || name == alias.b) return alias.d;
  }
  return InvalidArgument("unknown dtype '", name, "' (expected u8 i8 u16 i16 u32 i32 f32 f64)");
}

Result<DType> DTypeFromCode(uint8_t code) {
  if (code < 1 || code > 8) return DataLoss("unknown dtype code ", int(code));
  return static_cast<DType>(code);
}

bool IsFloat(DType dtype) { return dtype == DType::kF32 || dtype == DType::kF64; }

bool RepresentsExactly(DType dtype, double value) {
  return VisitDType(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_floating_point_v<T>)
      return !(std::abs(value) > static_cast<double>(std::numeric_limits<T>::max())) ||
             std::isinf(value);
    else
      return value >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
             value <= static_cast<double>(std::numeric_limits<T>::max()) &&
             static_cast<double>(static_cast<T>(value)) == value;
  });
}

}  // namespace tilestage
