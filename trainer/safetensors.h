// Safetensors encoding and parsing for float32 tensors (https://github.com/huggingface/
// safetensors): an 8-byte little-endian header length, a JSON header mapping each tensor name to
// {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets into the data section)
// plus an optional "__metadata__" object of strings, then the raw little-endian data. Files
// written here open with safetensors.torch.load_file. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::trainer {

struct TensorRef {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // prod(shape) floats
};

// metadata: string values only (the format's rule).
std::vector<uint8_t> EncodeSafetensors(const std::vector<TensorRef>& tensors,
                                       const std::map<std::string, std::string>& metadata);

struct SafetensorsEntry {
  std::vector<int64_t> shape;
  std::vector<float> values;  // prod(shape) floats, copied: offsets need not be 4-byte aligned
};
struct SafetensorsFile {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses and validates (header bounds, dtype F32, dimensions not negative, offsets inside the
// data and matching the shape) and copies each tensor out of `bytes`. Errors are DataLoss naming
// `where`, the tensor and the problem.
Result<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes, const std::string& where);

}  // namespace tilestage::trainer
