#include "loaders/record_view.h"

#include <cstring>

#include "tiling/codec.h"

namespace tilestage {
namespace {

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (pos_ + sizeof(T) > b_.size()) return false;
    std::memcpy(v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Skip(uint64_t n, std::span<const uint8_t>* out) {
    if (n > b_.size() - pos_) return false;
    *out = b_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

constexpr uint8_t kMaxDims = 8;

}  // namespace

Status ParseRecordView(std::span<const uint8_t> stored, const IndexEntry& entry,
                       const std::string& where, std::vector<FieldView>* fields,
                       std::vector<std::vector<uint8_t>>* scratch) {
  Reader r(stored);
  std::span<const uint8_t> magic;
  uint16_t nfields = 0, reserved = 0;
  uint32_t meta_bytes = 0, header_bytes = 0;
  if (!r.Skip(4, &magic) || std::memcmp(magic.data(), kRecordMagic.data(), 4) != 0)
    return DataLoss(where, ": bad record magic");
  if (!r.Get(&nfields) || !r.Get(&reserved) || !r.Get(&meta_bytes) || !r.Get(&header_bytes))
    return DataLoss(where, ": record header truncated");
  fields->resize(nfields);
  if (scratch->size() < nfields) scratch->resize(nfields);
  std::vector<uint64_t> stored_sizes(nfields);
  for (uint16_t i = 0; i < nfields; ++i) {
    FieldView& f = (*fields)[i];
    uint16_t name_len = 0;
    uint8_t dtype_code = 0, ndim = 0;
    std::span<const uint8_t> name;
    if (!r.Get(&name_len) || !r.Skip(name_len, &name) || !r.Get(&dtype_code) || !r.Get(&ndim))
      return DataLoss(where, ": field table truncated");
    f.name = std::string_view(reinterpret_cast<const char*>(name.data()), name.size());
    auto dtype = DTypeFromCode(dtype_code);
    if (!dtype.ok()) return DataLoss(where, ": field '", f.name, "': ", dtype.status().message());
    f.dtype = *dtype;
    if (ndim > kMaxDims) return DataLoss(where, ": field '", f.name, "': ", int(ndim), " dims");
    f.shape.resize(ndim);
    uint64_t elements = 1;
    for (uint8_t k = 0; k < ndim; ++k) {
      int64_t dim = 0;
      if (!r.Get(&dim)) return DataLoss(where, ": field table truncated");
      if (dim < 0 || (dim > 0 && elements > (UINT64_MAX >> 4) / static_cast<uint64_t>(dim)))
        return DataLoss(where, ": field '", f.name, "': bad dimension ", dim);
      elements *= static_cast<uint64_t>(dim);
      f.shape[k] = dim;
    }
    uint64_t raw = 0;
    if (!r.Get(&raw) || !r.Get(&stored_sizes[i])) return DataLoss(where, ": field table truncated");
    if (raw != elements * DTypeSize(f.dtype))
      return DataLoss(where, ": field '", f.name, "': ", raw, " raw bytes for ", elements,
                      " elements of ", DTypeName(f.dtype));
    if (raw > entry.raw_size) return DataLoss(where, ": field '", f.name, "' larger than record");
    f.data = {static_cast<const uint8_t*>(nullptr), static_cast<size_t>(raw)};
  }
  std::span<const uint8_t> meta;
  if (!r.Skip(meta_bytes, &meta) || r.pos() != header_bytes)
    return DataLoss(where, ": record header size mismatch");
  uint64_t raw_total = header_bytes;
  const bool in_place = entry.codec == Codec::kNone && !entry.shuffled;
  for (uint16_t i = 0; i < nfields; ++i) {
    FieldView& f = (*fields)[i];
    std::span<const uint8_t> payload;
    if (!r.Skip(stored_sizes[i], &payload))
      return DataLoss(where, ": field '", f.name, "' payload truncated");
    const size_t raw = f.data.size();
    if (in_place) {
      if (payload.size() != raw)
        return DataLoss(where, ": field '", f.name, "': stored ", payload.size(), " bytes, raw ",
                        raw);
      f.data = payload;
    } else {
      std::vector<uint8_t>& buf = (*scratch)[i];
      buf.resize(raw);
      Status s = DecodeBlock(entry.codec, entry.shuffled, payload, DTypeSize(f.dtype), buf);
      if (!s.ok()) return DataLoss(where, ": field '", f.name, "': ", s.message());
      f.data = {buf.data(), raw};
    }
    raw_total += raw;
  }
  if (raw_total != entry.raw_size)
    return DataLoss(where, ": decoded ", raw_total, " bytes, index says ", entry.raw_size);
  return Status::Ok();
}

}  // namespace tilestage
