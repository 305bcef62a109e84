// Per-block compression for shard records: none, lz4 or zstd, each optionally after a byte shuffle
// (element bytes grouped by significance, as blosc does, so float and 16-bit fields compress well).
// Stateless functions: thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiling/status.h"

namespace tilestage {

enum class Codec : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

struct CodecSpec {
  Codec codec = Codec::kNone;
  int level = 3;         // zstd level (1..19); lz4 acceleration ignored
  bool shuffle = false;  // byte shuffle by element size before compressing

  // "none", "lz4", "zstd", "zstd:9", "lz4+shuffle", "zstd:5+shuffle"
  std::string ToString() const;
};

Result<CodecSpec> ParseCodec(std::string_view text);
const char* CodecName(Codec codec);

// Appends the encoded form of raw to *out. elem_size drives the shuffle (1 disables it).
Status EncodeBlock(const CodecSpec& spec, std::span<const uint8_t> raw, size_t elem_size,
                   std::vector<uint8_t>* out);
// Decodes stored into raw_out, whose size is the exact raw size; anything else is DataLoss.
Status DecodeBlock(Codec codec, bool shuffled, std::span<const uint8_t> stored, size_t elem_size,
                   std::span<uint8_t> raw_out);

// An upper bound on the bytes a valid block of stored_bytes can decode to (none: equal; lz4:
// 255:1; zstd: 32768:1, one RLE block of 128 KiB per 4 bytes). Readers check a record's declared
// raw sizes against it before allocating, so damaged or hostile sizes cannot exhaust memory.
uint64_t MaxDecodedBytes(Codec codec, uint64_t stored_bytes);

// Byte shuffle (byte b of element i goes to b * n + i, as HDF5's shuffle filter and blosc do) and
// its inverse; a tail that is not a whole element stays in place.
void ByteShuffle(std::span<const uint8_t> in, size_t elem_size, uint8_t* out);
void ByteUnshuffle(std::span<const uint8_t> in, size_t elem_size, uint8_t* out);
// Reverses the byte order of each 2-, 4- or 8-byte element in place (other sizes: unchanged), for
// big-endian file data.
void ByteSwap(std::span<uint8_t> data, size_t elem_size);

}  // namespace tilestage
