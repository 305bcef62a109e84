// The manifest: manifest.json, the self-description of a tile store (FORMAT.md §Manifest).
// Schema, per-channel statistics, the shard list with hashes, and provenance. A store is complete
// exactly when its manifest exists: writers publish it last. Value type: not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tiling/codec.h"
#include "tiling/dtype.h"
#include "tiling/stats.h"
#include "tiling/status.h"
#include "tiling/storage.h"

namespace tilestage {

inline constexpr char kManifestName[] = "manifest.json";
inline constexpr int kManifestVersion = 1;

struct FieldSchema {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty when it varies from sample to sample
  std::vector<std::string> channel_names;
  std::vector<std::string> units;  // per channel, or one for all, or none
  std::vector<ChannelStats> stats;  // per channel; empty when not computed
};

struct ShardEntry {
  std::string file;  // relative to the store directory
  uint64_t records = 0;
  uint64_t bytes = 0;
  std::string hash;  // XXH3-64 of the whole file, 16 hex digits
};

struct Manifest {
  std::string kind;  // "synthetic", "geotiff", "netcdf", "hdf5", ...
  CodecSpec codec;
  std::vector<FieldSchema> fields;
  std::vector<ShardEntry> shards;
  nlohmann::json provenance = nlohmann::json::object();  // command, version, time, sources
  nlohmann::json attrs = nlohmann::json::object();       // modality-specific: crs, coordinates...

  uint64_t TotalRecords() const;
  uint64_t TotalBytes() const;
  const FieldSchema* FindField(const std::string& name) const;
  nlohmann::json ToJson() const;
  // `where` (usually the path) prefixes error messages.
  static Result<Manifest> FromJson(const nlohmann::json& j, const std::string& where);
};

// The bytes of dir/manifest.json, written atomically (and durably) by WriteManifest.
std::string ManifestText(const Manifest& manifest);
Status WriteManifest(Storage& storage, const std::string& dir, const Manifest& manifest);
// NotFound when dir does not exist or holds no manifest (an incomplete or foreign directory).
Result<Manifest> ReadManifest(Storage& storage, const std::string& dir);

// The nodata value of each channel of `field` as the ingest recorded it (attrs.ingest.nodata.<field>:
// a number, or null for a channel without one); empty when the manifest records none (synthetic
// stores, stores of older versions). DataLoss naming the entry when it is not such a list.
Result<std::vector<std::optional<double>>> FieldNodata(const Manifest& manifest,
                                                       const std::string& field);

// Provenance for a manifest: the command line, tool version, UTC time and host.
nlohmann::json MakeProvenance(const std::vector<std::string>& argv);
const char* TilestageVersion();

}  // namespace tilestage
