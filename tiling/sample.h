// Array and Sample: the in-memory form of one record of a tile store.
//
// An Array is an N-d, C-order, little-endian block of one dtype (owned bytes). A Sample is one
// training example: named fields ("x", optionally "y", ...) plus JSON metadata (source file,
// window, geotransform, time, frame index, probe position...). Value types: not synchronized;
// share across threads only as const.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tiling/dtype.h"

namespace tilestage {

// Elements of an array of this shape (1 for a scalar).
int64_t ShapeElements(const std::vector<int64_t>& shape);
// "[3,64,64]", as messages and Array::Describe write shapes.
std::string FormatShape(const std::vector<int64_t>& shape);

struct Array {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // size() == NumElements() * DTypeSize(dtype)

  Array() = default;
  Array(DType dtype, std::vector<int64_t> shape);  // zero-filled

  template <typename T>
  static Array FromVector(std::vector<int64_t> shape, const std::vector<T>& values) {
    Array a(DTypeOf<T>(), std::move(shape));
    std::memcpy(a.data.data(), values.data(), a.data.size());
    return a;
  }

  int64_t NumElements() const;
  size_t ByteSize() const { return data.size(); }
  // Typed views; T must match dtype (checked with assert).
  template <typename T>
  std::span<T> As() {
    return {reinterpret_cast<T*>(data.data()), data.size() / sizeof(T)};
  }
  template <typename T>
  std::span<const T> As() const {
    return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
  }
  // "f32[3,64,64]"
  std::string Describe() const;
};

// Element i converted to double; for statistics and tests, not hot loops.
double ElementAsDouble(const Array& array, int64_t i);

struct Field {
  std::string name;
  Array array;
};

struct Sample {
  std::vector<Field> fields;
  nlohmann::json meta = nlohmann::json::object();

  // nullptr when absent.
  const Array* Find(const std::string& name) const;
  Array* Find(const std::string& name);
  void Add(std::string name, Array array) { fields.push_back({std::move(name), std::move(array)}); }
};

}  // namespace tilestage
