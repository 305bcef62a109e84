// Element types a tile store holds, with their sizes and names ("u8", "f32", ...).
// Plain functions over an enum: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tiling/status.h"

namespace tilestage {

enum class DType : uint8_t { kU8 = 1, kI8, kU16, kI16, kU32, kI32, kF32, kF64 };

size_t DTypeSize(DType dtype);
// Short name used in manifests, the CLI and FORMAT.md: u8 i8 u16 i16 u32 i32 f32 f64.
const char* DTypeName(DType dtype);
// numpy's little-endian type string: "|u1", "<u2", "<f4", ...
const char* DTypeNumpy(DType dtype);
// Accepts the short names and the long ones (uint8, int16, float32, float64, ...).
Result<DType> ParseDType(std::string_view name);
// The DType code as stored in a record (1..8); rejects anything else.
Result<DType> DTypeFromCode(uint8_t code);
bool IsFloat(DType dtype);
// True when `value` is a value of `dtype`: for float types one in range (or NaN, or infinite),
// compared after a cast; for integer types one in range and integral. Which nodata values a
// field can hold and match.
bool RepresentsExactly(DType dtype, double value);

template <typename T>
constexpr DType DTypeOf();
template <> constexpr DType DTypeOf<uint8_t>() { return DType::kU8; }
template <> constexpr DType DTypeOf<int8_t>() { return DType::kI8; }
template <> constexpr DType DTypeOf<uint16_t>() { return DType::kU16; }
template <> constexpr DType DTypeOf<int16_t>() { return DType::kI16; }
template <> constexpr DType DTypeOf<uint32_t>() { return DType::kU32; }
template <> constexpr DType DTypeOf<int32_t>() { return DType::kI32; }
template <> constexpr DType DTypeOf<float>() { return DType::kF32; }
template <> constexpr DType DTypeOf<double>() { return DType::kF64; }

// Calls fn(T{}) with T the C++ type of dtype; the usual way to write one loop for all dtypes.
template <typename Fn>
decltype(auto) VisitDType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kU8: return fn(uint8_t{});
    case DType::kI8: return fn(int8_t{});
    case DType::kU16: return fn(uint16_t{});
    case DType::kI16: return fn(int16_t{});
    case DType::kU32: return fn(uint32_t{});
    case DType::kI32: return fn(int32_t{});
    case DType::kF32: return fn(float{});
    case DType::kF64: break;
  }
  return fn(double{});
}

}  // namespace tilestage
