#include "tiling/codec.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>

namespace tilestage {

const char* CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kLz4:
      return "lz4";
    case Codec::kZstd:
      return "zstd";
  }
  return "?";
}

std::string CodecSpec::ToString() const {
  std::string s = CodecName(codec);
  if (codec == Codec::kZstd) s += ":" + std::to_string(level);
  if (shuffle) s += "+shuffle";
  return s;
}

Result<CodecSpec> ParseCodec(std::string_view text) {
  CodecSpec spec;
  std::string_view name = text;
  if (auto plus = name.find('+'); plus != std::string_view::npos) {
    if (name.substr(plus + 1) != "shuffle")
      return InvalidArgument("codec '", text, "': only '+shuffle' may follow the codec name");
    spec.shuffle = true;
    name = name.substr(0, plus);
  }
  if (auto colon = name.find(':'); colon != std::string_view::npos) {
    std::string_view level = name.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(level.data(), level.data() + level.size(), spec.level);
    if (ec != std::errc() || ptr != level.data() + level.size() || spec.level < 1 ||
        spec.level > ZSTD_maxCLevel())
      return InvalidArgument("codec '", text, "': level must be an integer in 1..",
                             ZSTD_maxCLevel());
    name = name.substr(0, colon);
    if (name != "zstd") return InvalidArgument("codec '", text, "': only zstd takes a level");
  }
  if (name == "none")
    spec.codec = Codec::kNone;
  else if (name == "lz4")
    spec.codec = Codec::kLz4;
  else if (name == "zstd")
    spec.codec = Codec::kZstd;
  else
    return InvalidArgument("unknown codec '", text,
                           "' (expected none, lz4 or zstd[:LEVEL], "
                           "optionally followed by +shuffle)");
  return spec;
}

namespace {

// With the element size known at compile time the compiler vectorizes both directions; the
// generic loops ran at 12 GB/s (shuffle) and 2.5 GB/s (unshuffle) against 23 and 34 GB/s for
// 4-byte elements, and unshuffling is on the loader's path for every shuffled record.
template <size_t kSize>
void ShuffleFixed(const uint8_t* __restrict in, size_t n, uint8_t* __restrict out) {
  for (size_t i = 0; i < n; ++i)
    for (size_t b = 0; b < kSize; ++b) out[b * n + i] = in[i * kSize + b];
}

template <size_t kSize>
void UnshuffleFixed(const uint8_t* __restrict in, size_t n, uint8_t* __restrict out) {
  for (size_t i = 0; i < n; ++i)
    for (size_t b = 0; b < kSize; ++b) out[i * kSize + b] = in[b * n + i];
}

}  // namespace

void ByteShuffle(std::span<const uint8_t> in, size_t elem_size, uint8_t* out) {
  if (in.empty()) return;  // in.data() and out may be null
  const size_t n = in.size() / elem_size;
  switch (elem_size) {
    case 2:
      ShuffleFixed<2>(in.data(), n, out);
      break;
    case 4:
      ShuffleFixed<4>(in.data(), n, out);
      break;
    case 8:
      ShuffleFixed<8>(in.data(), n, out);
      break;
    default:
      for (size_t b = 0; b < elem_size; ++b) {
        uint8_t* dst = out + b * n;
        const uint8_t* src = in.data() + b;
        for (size_t i = 0; i < n; ++i) dst[i] = src[i * elem_size];
      }
  }
  // A tail that is not a whole element stays in place.
  std::memcpy(out + n * elem_size, in.data() + n * elem_size, in.size() - n * elem_size);
}

void ByteUnshuffle(std::span<const uint8_t> in, size_t elem_size, uint8_t* out) {
  if (in.empty()) return;
  const size_t n = in.size() / elem_size;
  switch (elem_size) {
    case 2:
      UnshuffleFixed<2>(in.data(), n, out);
      break;
    case 4:
      UnshuffleFixed<4>(in.data(), n, out);
      break;
    case 8:
      UnshuffleFixed<8>(in.data(), n, out);
      break;
    default:
      for (size_t b = 0; b < elem_size; ++b) {
        const uint8_t* src = in.data() + b * n;
        uint8_t* dst = out + b;
        for (size_t i = 0; i < n; ++i) dst[i * elem_size] = src[i];
      }
  }
  std::memcpy(out + n * elem_size, in.data() + n * elem_size, in.size() - n * elem_size);
}

void ByteSwap(std::span<uint8_t> data, size_t elem_size) {
  const size_t n = elem_size ? data.size() / elem_size : 0;
  uint8_t* p = data.data();
  // memcpy per element: the data need not be aligned; the compiler turns it into plain loads.
  const auto swap_all = [&](auto zero, auto bswap) {
    for (size_t i = 0; i < n; ++i) {
      decltype(zero) v;
      std::memcpy(&v, p + i * sizeof v, sizeof v);
      v = bswap(v);
      std::memcpy(p + i * sizeof v, &v, sizeof v);
    }
  };
  switch (elem_size) {
    case 2:
      swap_all(uint16_t{}, [](uint16_t v) { return __builtin_bswap16(v); });
      break;
    case 4:
      swap_all(uint32_t{}, [](uint32_t v) { return __builtin_bswap32(v); });
      break;
    case 8:
      swap_all(uint64_t{}, [](uint64_t v) { return __builtin_bswap64(v); });
      break;
    default:
      break;
  }
}

Status EncodeBlock(const CodecSpec& spec, std::span<const uint8_t> raw, size_t elem_size,
                   std::vector<uint8_t>* out) {
  thread_local std::vector<uint8_t> shuffled;  // reused: no allocation per block
  if (spec.shuffle && elem_size > 1) {
    shuffled.resize(raw.size());
    ByteShuffle(raw, elem_size, shuffled.data());
    raw = shuffled;
  }
  const size_t start = out->size();
  switch (spec.codec) {
    case Codec::kNone:
      out->insert(out->end(), raw.begin(), raw.end());
      return Status::Ok();
    case Codec::kLz4: {
      if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE))
        return InvalidArgument("lz4: block of ", raw.size(), " bytes exceeds the LZ4 limit");
      const int bound = LZ4_compressBound(static_cast<int>(raw.size()));
      out->resize(start + bound);
      const int n = LZ4_compress_default(reinterpret_cast<const char*>(raw.data()),
                                         reinterpret_cast<char*>(out->data() + start),
                                         static_cast<int>(raw.size()), bound);
      if (n <= 0 && !raw.empty()) return Internal("lz4 compression failed");
      out->resize(start + n);
      return Status::Ok();
    }
    case Codec::kZstd: {
      const size_t bound = ZSTD_compressBound(raw.size());
      out->resize(start + bound);
      // A context per thread, reused: ZSTD_compress would allocate and initialize one per block.
      thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(),
                                                                             &ZSTD_freeCCtx);
      if (!cctx) return ResourceExhausted("zstd: cannot allocate a compression context");
      const size_t n = ZSTD_compressCCtx(cctx.get(), out->data() + start, bound, raw.data(),
                                         raw.size(), spec.level);
      if (ZSTD_isError(n)) return Internal("zstd compression failed: ", ZSTD_getErrorName(n));
      out->resize(start + n);
      return Status::Ok();
    }
  }
  return InvalidArgument("unknown codec ", int(spec.codec));
}

uint64_t MaxDecodedBytes(Codec codec, uint64_t stored_bytes) {
  constexpr uint64_t kCap = UINT64_MAX >> 16;  // keeps the products below from overflowing
  stored_bytes = std::min(stored_bytes, kCap);
  switch (codec) {
    case Codec::kNone:
      return stored_bytes;
    case Codec::kLz4:
      return stored_bytes * 255 + 64;
    case Codec::kZstd:
      return stored_bytes * 32768 + 64;
  }
  return 0;
}

Status DecodeBlock(Codec codec, bool shuffled, std::span<const uint8_t> stored, size_t elem_size,
                   std::span<uint8_t> raw_out) {
  const bool unshuffle = shuffled && elem_size > 1;
  thread_local std::vector<uint8_t> scratch;  // reused: no allocation per block
  std::span<uint8_t> target = raw_out;
  if (unshuffle) {
    scratch.resize(raw_out.size());
    target = scratch;
  }
  switch (codec) {
    case Codec::kNone:
      if (stored.size() != target.size())
        return DataLoss("stored size ", stored.size(), " != raw size ", target.size());
      if (!stored.empty()) std::memcpy(target.data(), stored.data(), stored.size());
      break;
    case Codec::kLz4: {
      if (stored.size() > static_cast<size_t>(INT32_MAX) ||
          target.size() > static_cast<size_t>(INT32_MAX))
        return DataLoss("lz4 block of ", stored.size(), " -> ", target.size(),
                        " bytes exceeds the LZ4 limit");
      const int n = LZ4_decompress_safe(
          reinterpret_cast<const char*>(stored.data()), reinterpret_cast<char*>(target.data()),
          static_cast<int>(stored.size()), static_cast<int>(target.size()));
      if (n < 0 || static_cast<size_t>(n) != target.size())
        return DataLoss("lz4 block does not decode to ", target.size(), " bytes");
      break;
    }
    case Codec::kZstd: {
      // Writers always record the content size; a frame that declares another is damaged.
      const unsigned long long declared = ZSTD_getFrameContentSize(stored.data(), stored.size());
      if (declared == ZSTD_CONTENTSIZE_ERROR) return DataLoss("zstd block: not a zstd frame");
      if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != target.size())
        return DataLoss("zstd block declares ", declared, " bytes, expected ", target.size());
      const size_t n = ZSTD_decompress(target.data(), target.size(), stored.data(), stored.size());
      if (ZSTD_isError(n)) return DataLoss("zstd block: ", ZSTD_getErrorName(n));
      if (n != target.size())
        return DataLoss("zstd block decodes to ", n, " bytes, expected ", target.size());
      break;
    }
    default:
      return DataLoss("unknown codec id ", int(codec));
  }
  if (unshuffle) ByteUnshuffle(scratch, elem_size, raw_out.data());
  return Status::Ok();
}

}  // namespace tilestage
