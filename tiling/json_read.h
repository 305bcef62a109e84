// ParseBoundedJson: the one way JSON from a file is parsed (a manifest, a record's metadata, a
// checkpoint's state, a safetensors header); CheckBoundedJson the same check without building the
// value, for readers that only need to know the JSON is sound (verify). Such files are untrusted:
// users download and share stores and weights. Copying, printing or destroying a JSON value
// recurses once per level, so nesting is bounded while parsing, before any of the value is built.
// Stateless, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "tiling/status.h"

namespace tilestage {

// Far deeper than any file tilestage writes; shallow enough for any thread's stack.
inline constexpr int kMaxJsonDepth = 64;

// DataLoss naming `where` ("<where>: not valid JSON at byte 25", "<where>: nested more than 64
// levels deep") when the bytes are not one JSON value of bounded depth.
Result<nlohmann::json> ParseBoundedJson(std::span<const uint8_t> bytes, const std::string& where);
Result<nlohmann::json> ParseBoundedJson(const std::string& text, const std::string& where);
// The same errors as ParseBoundedJson for the same bytes, without building the value (no
// allocation per key or value): what `verify` checks of every record's metadata.
Status CheckBoundedJson(std::span<const uint8_t> bytes, const std::string& where);

}  // namespace tilestage
