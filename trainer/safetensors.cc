#include "trainer/safetensors.h"

#include <cstring>
#include <optional>

#include "tiling/json_read.h"

namespace tilestage::trainer {

std::vector<uint8_t> EncodeSafetensors(const std::vector<TensorRef>& tensors,
                                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const TensorRef& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + 4 * n}}};
    offset += 4 * n;
  }
  std::string text = header.dump();
  // The data section starts 8-byte aligned: pad the header with spaces, as the reference does.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  std::vector<uint8_t> out(8 + text.size() + offset);
  const uint64_t header_len = text.size();
  for (int i = 0; i < 8; ++i) out[i] = uint8_t(header_len >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* data = out.data() + 8 + text.size();
  for (const TensorRef& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::memcpy(data, t.data, 4 * n);  // x86-64 and aarch64 are little-endian
    data += 4 * n;
  }
  return out;
}

namespace {

// The element count of `shape`; none when a dimension is negative or the count exceeds `limit`
// (the floats the data section holds), so that no product can overflow.
std::optional<uint64_t> ElementsWithin(const std::vector<int64_t>& shape, uint64_t limit) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > limit / uint64_t(d))) return std::nullopt;
    n *= uint64_t(d);
  }
  return n;
}

}  // namespace

Result<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes, const std::string& where) {
  if (bytes.size() < 8) {
    return DataLoss(where, ": ", bytes.size(), " bytes, too short for a safetensors header");
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(bytes[i]) << (8 * i);
  if (header_len > bytes.size() - 8) {
    return DataLoss(where, ": header length ", header_len, " exceeds the file (", bytes.size(),
                    " bytes): truncated or not safetensors");
  }
  TS_ASSIGN_OR_RETURN(const nlohmann::json header,
                      ParseBoundedJson(bytes.subspan(8, header_len), where + " header"));
  const uint8_t* data = bytes.data() + 8 + header_len;
  const uint64_t data_len = bytes.size() - 8 - header_len;
  SafetensorsFile file;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        for (auto m = it->begin(); m != it->end(); ++m)
          file.metadata[m.key()] = m->get<std::string>();
        continue;
      }
      const std::string dtype = it->at("dtype");
      if (dtype != "F32")
        return DataLoss(where, ": tensor ", it.key(), " has dtype ", dtype, ", expected F32");
      SafetensorsEntry e;
      e.shape = it->at("shape").get<std::vector<int64_t>>();
      const auto offsets = it->at("data_offsets").get<std::vector<uint64_t>>();
      const std::optional<uint64_t> elements = ElementsWithin(e.shape, data_len / 4);
      if (!elements || offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] > data_len ||
          offsets[1] - offsets[0] != 4 * *elements) {
        return DataLoss(where, ": tensor ", it.key(), " data_offsets ",
                        it->at("data_offsets").dump(), " do not fit its shape ",
                        it->at("shape").dump(), " or the ", data_len,
                        "-byte data section (truncated?)");
      }
      e.values.resize(*elements);
      std::memcpy(e.values.data(), data + offsets[0], 4 * *elements);
      file.tensors[it.key()] = e;
    }
  } catch (const std::exception& e) {
    return DataLoss(where, ": bad safetensors header: ", e.what());
  }
  return file;
}

}  // namespace tilestage::trainer
