// Malformed manifests, each a small edit of a valid one, with the words its error must contain.
// Shared by the reader's unit test and the CLI tests that check no command crashes on them.
// The edits assume fields[0] is "x" with a shape of rank 3 and at least one shard.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tilestage::testing {

struct ManifestMutation {
  std::string name;
  std::function<void(nlohmann::json&)> edit;  // applied to the parsed manifest
  std::string error;                          // expected in the message
};

inline std::string DeeplyNested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

inline const std::vector<ManifestMutation>& ManifestMutations() {
  using J = nlohmann::json;
  static const std::vector<ManifestMutation> kMutations = {
      // Shard names: a plain file name inside the store, nothing else.
      {"ShardFileEscapingTheStore", [](J& j) { j["shards"][0]["file"] = "../outside.tss"; },
       "shards[0].file \"../outside.tss\" is not a plain file name inside the store"},
      {"ShardFileAbsolute", [](J& j) { j["shards"][0]["file"] = "/etc/passwd"; },
       "shards[0].file \"/etc/passwd\" is not a plain file name"},
      {"ShardFileInASubdirectory", [](J& j) { j["shards"][0]["file"] = "sub/shard.tss"; },
       "is not a plain file name"},
      {"ShardFileEmpty", [](J& j) { j["shards"][0]["file"] = ""; }, "is not a plain file name"},
      {"ShardFileDot", [](J& j) { j["shards"][0]["file"] = "."; }, "is not a plain file name"},
      {"ShardFileDotDot", [](J& j) { j["shards"][0]["file"] = ".."; }, "is not a plain file name"},
      {"ShardFileWithNul", [](J& j) { j["shards"][0]["file"] = std::string("a\0.tss", 6); },
       "is not a plain file name"},
      {"ShardFileNamedLikeTheManifest", [](J& j) { j["shards"][0]["file"] = "manifest.json"; },
       "is not a plain file name"},
      {"ShardFileNotAString", [](J& j) { j["shards"][0]["file"] = 7; },
       "shards[0].file is 7, expected a string"},
      {"ShardListedTwice", [](J& j) { j["shards"].push_back(j["shards"][0]); }, "is listed twice"},
      {"ShardNotAnObject", [](J& j) { j["shards"][0] = 5; },
       "shards[0] is 5, expected an object"},
      {"ShardsNotAnArray", [](J& j) { j["shards"] = "shard-00000.tss"; },
       "shards is \"shard-00000.tss\", expected an array"},
      {"ShardsMissing", [](J& j) { j.erase("shards"); }, "shards is missing"},
      // Counts: non-negative integers that fit the shard.
      {"RecordsHugeFloat", [](J& j) { j["shards"][0]["records"] = 1e300; },
       "shards[0].records is 1e+300, expected a non-negative integer"},
      {"RecordsNegative", [](J& j) { j["shards"][0]["records"] = -1; },
       "shards[0].records is -1, expected a non-negative integer"},
      {"RecordsFractional", [](J& j) { j["shards"][0]["records"] = 2.5; },
       "shards[0].records is 2.5, expected a non-negative integer"},
      {"RecordsAString", [](J& j) { j["shards"][0]["records"] = "3"; },
       "shards[0].records is \"3\", expected a non-negative integer"},
      {"RecordsMissing", [](J& j) { j["shards"][0].erase("records"); },
       "shards[0].records is missing"},
      {"BytesNegative", [](J& j) { j["shards"][0]["bytes"] = -4096; },
       "shards[0].bytes is -4096, expected a non-negative integer"},
      {"MoreRecordsThanTheShardCanHold",
       [](J& j) {
         j["shards"][0]["records"] = 10;
         j["shards"][0]["bytes"] = 200;
       },
       "10 records cannot fit in 200 bytes"},
      {"BytesBeyondAFileSize", [](J& j) { j["shards"][0]["bytes"] = UINT64_MAX; },
       "records cannot fit in 18446744073709551615 bytes"},
      {"HashNotHex", [](J& j) { j["shards"][0]["hash"] = "not-a-hash"; },
       "shards[0].hash \"not-a-hash\" is not 16 lowercase hex digits"},
      // Field shapes: positive, at most 8 dimensions, bounded, and possible for the shards.
      {"ShapeNegative", [](J& j) { j["fields"][0]["shape"][0] = -2; },
       "field 'x' shape[0] = -2 must be positive"},
      {"ShapeZero", [](J& j) { j["fields"][0]["shape"][1] = 0; },
       "field 'x' shape[1] = 0 must be positive"},
      {"ShapeOverflowing",
       [](J& j) { j["fields"][0]["shape"] = {1ll << 40, 1ll << 40, 8}; },
       "bytes per sample"},
      {"ShapeBeyondInt64", [](J& j) { j["fields"][0]["shape"][2] = UINT64_MAX; },
       "bytes per sample"},
      {"ShapeFractional", [](J& j) { j["fields"][0]["shape"][2] = 2.5; },
       "field 'x' shape[2] is 2.5, expected an integer"},
      {"ShapeNotAnArray", [](J& j) { j["fields"][0]["shape"] = "2,16,16"; },
       "field 'x' shape is \"2,16,16\", expected an array of integers"},
      {"ShapeOfNineDimensions", [](J& j) { j["fields"][0]["shape"] = J(std::vector<int>(9, 1)); },
       "field 'x' shape has 9 dimensions, at most 8"},
      {"ShapeLargerThanTheShardsCouldHold",
       [](J& j) {
         J& x = j["fields"][0];
         x["dtype"] = "u8";
         x["shape"] = {1, 65536, 65536};
         x["stats"] = J::array();
         x["channel_names"] = J::array();
         x["units"] = J::array();
         j["shards"][0]["bytes"] = 4096;
         j["shards"][0]["records"] = 1;
       },
       "field 'x' of 4294967296 bytes per sample cannot come from the 4096 bytes of shards[0]"},
      // Field types and per-channel lists.
      {"DTypeUnknown", [](J& j) { j["fields"][0]["dtype"] = "f16"; },
       "field 'x': unknown dtype 'f16'"},
      {"DTypeEmpty", [](J& j) { j["fields"][0]["dtype"] = ""; }, "field 'x': unknown dtype ''"},
      {"DTypeNotAString", [](J& j) { j["fields"][0]["dtype"] = 7; },
       "field 'x' dtype is 7, expected a string"},
      {"DTypeMissing", [](J& j) { j["fields"][0].erase("dtype"); }, "field 'x' dtype is missing"},
      {"FieldNameMissing", [](J& j) { j["fields"][0].erase("name"); },
       "fields[0].name is missing"},
      {"FieldNameNotAString", [](J& j) { j["fields"][0]["name"] = J::array(); },
       "fields[0].name is [], expected a string"},
      {"FieldListedTwice", [](J& j) { j["fields"].push_back(j["fields"][0]); },
       "field 'x' is listed twice"},
      {"FieldsNotAnArray", [](J& j) { j["fields"] = {{"x", 1}}; },
       "fields is {\"x\":1}, expected an array"},
      {"ChannelNamesForOtherChannels",
       [](J& j) { j["fields"][0]["channel_names"] = {"a", "b", "c", "d", "e", "f", "g"}; },
       "field 'x' has 7 channel_names for"},
      {"ChannelNameNotAString", [](J& j) { j["fields"][0]["channel_names"] = {1}; },
       "field 'x' channel_names[0] is 1, expected a string"},
      {"UnitsForOtherChannels", [](J& j) { j["fields"][0]["units"] = {"K", "K", "K", "K", "K"}; },
       "field 'x' has 5 units for"},
      {"StatsCountNegative", [](J& j) { j["fields"][0]["stats"][0]["count"] = -5; },
       "field 'x' stats[0]: statistics entry: count -5"},
      {"StatsCountFractional", [](J& j) { j["fields"][0]["stats"][0]["count"] = 1e300; },
       "must be non-negative integers"},
      {"StatsMeanNotANumber", [](J& j) { j["fields"][0]["stats"][0]["mean"] = {1}; },
       "field 'x' stats[0]: statistics entry: mean is [1]"},
      {"StatsNotAnArray", [](J& j) { j["fields"][0]["stats"] = 3; },
       "field 'x' stats is 3, expected an array of objects"},
      // Top level, provenance and attrs.
      {"SamplesDisagreeWithTheShards",
       [](J& j) { j["samples"] = j["samples"].get<uint64_t>() + 1; },
       "but the shards add up to"},
      {"BytesTotalDisagreesWithTheShards", [](J& j) { j["bytes"] = 1; },
       "bytes is 1 but the shards add up to"},
      {"SamplesNegative", [](J& j) { j["samples"] = -3; },
       "samples is -3, expected a non-negative integer"},
      {"ProvenanceCommandNotAString", [](J& j) { j["provenance"]["command"] = 1; },
       "provenance.command is 1, expected a string"},
      {"ProvenanceTimeNotAString", [](J& j) { j["provenance"]["time"] = {{"y", 2026}}; },
       "provenance.time is {\"y\":2026}, expected a string"},
      {"ProvenanceArgvNotStrings", [](J& j) { j["provenance"]["argv"] = {"tilestage", 2}; },
       "provenance.argv[1] is 2, expected a string"},
      {"ProvenanceNotAnObject", [](J& j) { j["provenance"] = "synth"; },
       "provenance is \"synth\", expected an object"},
      {"AttrsNotAnObject", [](J& j) { j["attrs"] = {1, 2}; },
       "attrs is [1,2], expected an object"},
      {"KindNotAString", [](J& j) { j["kind"] = 5; }, "kind is 5, expected a string"},
      {"CodecUnknown", [](J& j) { j["codec"] = "gzip"; }, "unknown codec 'gzip'"},
      {"CodecNotAString", [](J& j) { j["codec"] = 3; }, "codec is 3, expected a string"},
      {"VersionAString", [](J& j) { j["format_version"] = "1"; },
       "unknown manifest version \"1\""},
      {"VersionMissing", [](J& j) { j.erase("format_version"); }, "format_version is missing"},
      {"FormatNotTilestage", [](J& j) { j["format"] = 1; }, "not a tilestage manifest"},
  };
  return kMutations;
}

}  // namespace tilestage::testing
