// RecordView: the fields of one stored record (tiling/FORMAT.md §Records) located in place, for
// the loader's hot path. Unlike DecodeRecord it neither parses the metadata JSON nor copies
// uncompressed payloads: an uncompressed field is a span into the stored bytes, a compressed one
// is decoded into a caller-owned buffer that is reused from record to record.
// Every length and offset is bounds-checked; errors are DataLoss naming `where`.
// Thread-safety: plain functions over caller-owned data.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tiling/dtype.h"
#include "tiling/shard.h"
#include "tiling/status.h"

namespace tilestage {

struct FieldView {
  std::string_view name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;  // raw (decoded) little-endian bytes
};

// Locates the fields of `stored` (checksum already verified). Compressed or shuffled payloads are
// decoded into (*scratch)[field index]; views stay valid while stored and *scratch live.
Status ParseRecordView(std::span<const uint8_t> stored, const IndexEntry& entry,
                       const std::string& where, std::vector<FieldView>* fields,
                       std::vector<std::vector<uint8_t>>* scratch);

}  // namespace tilestage
