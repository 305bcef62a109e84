#include "tiling/sample.h"

namespace tilestage {

Array::Array(DType dtype_in, std::vector<int64_t> shape_in)
    : dtype(dtype_in), shape(std::move(shape_in)) {
  data.assign(static_cast<size_t>(NumElements()) * DTypeSize(dtype), 0);
}

int64_t ShapeElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string FormatShape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t Array::NumElements() const { return ShapeElements(shape); }

std::string Array::Describe() const { return DTypeName(dtype) + FormatShape(shape); }

double ElementAsDouble(const Array& array, int64_t i) {
  return VisitDType(array.dtype, [&](auto zero) {
    using T = decltype(zero);
    T v;
    std::memcpy(&v, array.data.data() + i * sizeof(T), sizeof(T));
    return static_cast<double>(v);
  });
}

const Array* Sample::Find(const std::string& name) const {
  for (const auto& f : fields)
    if (f.name == name) return &f.array;
  return nullptr;
}

Array* Sample::Find(const std::string& name) {
  for (auto& f : fields)
    if (f.name == name) return &f.array;
  return nullptr;
}

}  // namespace tilestage
