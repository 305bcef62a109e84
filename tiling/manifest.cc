#include "tiling/manifest.h"

#include <unistd.h>

#include <climits>
#include <ctime>
#include <set>

#include "tiling/json_read.h"
#include "tiling/shard.h"

namespace tilestage {

uint64_t Manifest::TotalRecords() const {
  uint64_t n = 0;
  for (const auto& s : shards) n += s.records;
  return n;
}

uint64_t Manifest::TotalBytes() const {
  uint64_t n = 0;
  for (const auto& s : shards) n += s.bytes;
  return n;
}

const FieldSchema* Manifest::FindField(const std::string& name) const {
  for (const auto& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

nlohmann::json Manifest::ToJson() const {
  nlohmann::json j;
  j["format"] = "tilestage";
  j["format_version"] = kManifestVersion;
  j["kind"] = kind;
  j["codec"] = codec.ToString();
  j["samples"] = TotalRecords();
  j["bytes"] = TotalBytes();
  auto& fields_json = j["fields"] = nlohmann::json::array();
  for (const auto& f : fields) {
    nlohmann::json fj = {{"name", f.name}, {"dtype", DTypeName(f.dtype)}, {"shape", f.shape},
                         {"channel_names", f.channel_names}, {"units", f.units}};
    auto& stats = fj["stats"] = nlohmann::json::array();
    for (const auto& s : f.stats) stats.push_back(s.ToJson());
    fields_json.push_back(std::move(fj));
  }
  auto& shards_json = j["shards"] = nlohmann::json::array();
  for (const auto& s : shards)
    shards_json.push_back({{"file", s.file}, {"records", s.records}, {"bytes", s.bytes},
                           {"hash", s.hash}});
  j["provenance"] = provenance;
  j["attrs"] = attrs;
  return j;
}

namespace {

// A manifest lists one entry (~120 bytes) per shard: this is millions of shards, and keeps a file
// of garbage from being read whole into memory.
constexpr uint64_t kMaxManifestBytes = 512ull << 20;
// Per sample and field. Far above any tile, and low enough that sizes derived from a shape (a
// batch of samples, per-channel tables) neither overflow nor ask for absurd allocations.
constexpr uint64_t kMaxFieldBytes = 1ull << 32;
constexpr size_t kMaxDims = 8;  // FORMAT.md: ndim 0..8

// Reads manifest.json values, checking each one's type and range; every error names the file
// and the place ("manifest /s/manifest.json: shards[2].records is -1, expected ...").
class ManifestParser {
 public:
  explicit ManifestParser(const std::string& where) : where_(where) {}

  template <typename... Args>
  Status Bad(const Args&... args) const {
    return DataLoss("manifest ", where_, ": ", args...);
  }

  // The value as the error shows it: short, since a malformed value may be large.
  static std::string Show(const nlohmann::json& v) {
    std::string text = v.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
  }

  // nullptr when absent and optional.
  Result<const nlohmann::json*> Member(const nlohmann::json& object, const char* key,
                                       const std::string& place, bool required) const {
    auto it = object.find(key);
    if (it == object.end()) {
      if (required) return Bad(place, " is missing");
      return static_cast<const nlohmann::json*>(nullptr);
    }
    return &*it;
  }

  Result<std::string> String(const nlohmann::json& v, const std::string& place) const {
    if (!v.is_string()) return Bad(place, " is ", Show(v), ", expected a string");
    return v.get<std::string>();
  }

  Result<std::string> RequiredString(const nlohmann::json& object, const char* key,
                                     const std::string& place) const {
    TS_ASSIGN_OR_RETURN(const auto* v, Member(object, key, place, true));
    return String(*v, place);
  }

  Result<uint64_t> Count(const nlohmann::json& v, const std::string& place) const {
    // Non-negative integers parse as number_unsigned; floats, negatives and integers beyond
    // 2^64 do not.
    if (!v.is_number_unsigned()) return Bad(place, " is ", Show(v), ", expected a non-negative integer");
    return v.get<uint64_t>();
  }

  Status Kind(const nlohmann::json& v, nlohmann::json::value_t type, const char* name,
              const std::string& place) const {
    if (v.type() != type) return Bad(place, " is ", Show(v), ", expected ", name);
    return Status::Ok();
  }

  Result<std::vector<std::string>> Strings(const nlohmann::json* v,
                                           const std::string& place) const {
    std::vector<std::string> out;
    if (!v) return out;
    TS_RETURN_IF_ERROR(Kind(*v, nlohmann::json::value_t::array, "an array of strings", place));
    for (size_t i = 0; i < v->size(); ++i) {
      TS_ASSIGN_OR_RETURN(auto s, String((*v)[i], StrCat(place, "[", i, "]")));
      out.push_back(std::move(s));
    }
    return out;
  }

  // "fields[2]", for element `index` of a list, which must be an object.
  Result<std::string> Entry(const nlohmann::json& v, const char* list, size_t index) const {
    std::string at = StrCat(list, "[", index, "]");
    TS_RETURN_IF_ERROR(Kind(v, nlohmann::json::value_t::object, "an object", at));
    return at;
  }

  Result<FieldSchema> Field(const nlohmann::json& fj, size_t index) const {
    TS_ASSIGN_OR_RETURN(const std::string at, Entry(fj, "fields", index));
    FieldSchema f;
    TS_ASSIGN_OR_RETURN(f.name, RequiredString(fj, "name", at + ".name"));
    if (f.name.empty() || f.name.size() > 255)
      return Bad(at, ".name has ", f.name.size(), " characters, expected 1 to 255");
    const std::string field = StrCat("field '", f.name, "'");
    TS_ASSIGN_OR_RETURN(std::string dtype, RequiredString(fj, "dtype", field + " dtype"));
    auto dtype_parsed = ParseDType(dtype);
    if (!dtype_parsed.ok()) return Bad(field, ": ", dtype_parsed.status().message());
    f.dtype = *dtype_parsed;

    TS_ASSIGN_OR_RETURN(const auto* shape, Member(fj, "shape", field + " shape", false));
    if (shape) {
      TS_RETURN_IF_ERROR(Kind(*shape, nlohmann::json::value_t::array, "an array of integers",
                              field + " shape"));
      if (shape->size() > kMaxDims)
        return Bad(field, " shape has ", shape->size(), " dimensions, at most ", kMaxDims);
      uint64_t bytes = DTypeSize(f.dtype);
      for (size_t k = 0; k < shape->size(); ++k) {
        const nlohmann::json& d = (*shape)[k];
        if (!d.is_number_integer())
          return Bad(field, " shape[", k, "] is ", Show(d), ", expected an integer");
        if (d.is_number_unsigned() ? d.get<uint64_t>() == 0 : d.get<int64_t>() <= 0)
          return Bad(field, " shape[", k, "] = ", Show(d), " must be positive");
        const uint64_t dim = d.get<uint64_t>();
        if (dim > kMaxFieldBytes / bytes)
          return Bad(field, " shape ", Show(*shape), ": more than ", kMaxFieldBytes,
                     " bytes per sample");
        bytes *= dim;
        f.shape.push_back(static_cast<int64_t>(dim));
      }
    }
    TS_ASSIGN_OR_RETURN(const auto* names, Member(fj, "channel_names", "", false));
    TS_ASSIGN_OR_RETURN(f.channel_names, Strings(names, field + " channel_names"));
    TS_ASSIGN_OR_RETURN(const auto* units, Member(fj, "units", "", false));
    TS_ASSIGN_OR_RETURN(f.units, Strings(units, field + " units"));
    TS_ASSIGN_OR_RETURN(const auto* stats, Member(fj, "stats", "", false));
    if (stats) {
      TS_RETURN_IF_ERROR(
          Kind(*stats, nlohmann::json::value_t::array, "an array of objects", field + " stats"));
      for (size_t c = 0; c < stats->size(); ++c) {
        auto s = ChannelStats::FromJson((*stats)[c]);
        if (!s.ok()) return Bad(field, " stats[", c, "]: ", s.status().message());
        f.stats.push_back(*s);
      }
    }
    // Per-channel lists have one entry per channel (units may also have one for all); a
    // varying shape leaves the channel count open.
    if (!f.shape.empty()) {
      const uint64_t channels = f.shape.size() >= 3 ? static_cast<uint64_t>(f.shape[0]) : 1;
      const auto check = [&](const char* what, size_t n, bool one_for_all) -> Status {
        if (n == 0 || n == channels || (one_for_all && n == 1)) return Status::Ok();
        return Bad(field, " has ", n, " ", what, " for ", channels, " channels");
      };
      TS_RETURN_IF_ERROR(check("channel_names", f.channel_names.size(), false));
      TS_RETURN_IF_ERROR(check("units", f.units.size(), true));
      TS_RETURN_IF_ERROR(check("stats", f.stats.size(), false));
    }
    return f;
  }

  Result<ShardEntry> Shard(const nlohmann::json& sj, size_t index) const {
    TS_ASSIGN_OR_RETURN(const std::string at, Entry(sj, "shards", index));
    ShardEntry e;
    TS_ASSIGN_OR_RETURN(e.file, RequiredString(sj, "file", at + ".file"));
    // Shards are joined to the store directory by readers and to the destination by the
    // stager: anything but a plain name could reach outside them.
    if (e.file.empty() || e.file == "." || e.file == ".." || e.file == kManifestName ||
        e.file.find('/') != std::string::npos || e.file.find('\0') != std::string::npos)
      return Bad(at, ".file ", Show(e.file), " is not a plain file name inside the store");
    TS_ASSIGN_OR_RETURN(const auto* records, Member(sj, "records", at + ".records", true));
    TS_ASSIGN_OR_RETURN(e.records, Count(*records, at + ".records"));
    TS_ASSIGN_OR_RETURN(const auto* bytes, Member(sj, "bytes", at + ".bytes", true));
    TS_ASSIGN_OR_RETURN(e.bytes, Count(*bytes, at + ".bytes"));
    // A shard holds a superblock, an index entry per record and a footer (FORMAT.md), and file
    // sizes are off_t.
    if (e.bytes > static_cast<uint64_t>(INT64_MAX) ||
        e.records > (e.bytes - std::min<uint64_t>(e.bytes, kSuperblockBytes + kFooterBytes)) /
                        kIndexEntryBytes)
      return Bad(at, " (", e.file, "): ", e.records, " records cannot fit in ", e.bytes,
                 " bytes");
    TS_ASSIGN_OR_RETURN(e.hash, RequiredString(sj, "hash", at + ".hash"));
    if (e.hash.size() != 16 ||
        e.hash.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Bad(at, ".hash ", Show(e.hash), " is not 16 lowercase hex digits");
    return e;
  }

 private:
  const std::string& where_;
};

Result<Manifest> ParseManifest(const nlohmann::json& j, const std::string& where) {
  const ManifestParser p(where);
  using Type = nlohmann::json::value_t;
  if (!j.is_object() || j.value("format", nlohmann::json()) != "tilestage")
    return p.Bad("not a tilestage manifest (no \"format\": \"tilestage\")");
  TS_ASSIGN_OR_RETURN(const auto* version, p.Member(j, "format_version", "format_version", true));
  if (*version != kManifestVersion)
    return p.Bad("unknown manifest version ", p.Show(*version));
  Manifest m;
  TS_ASSIGN_OR_RETURN(const auto* kind, p.Member(j, "kind", "kind", false));
  if (kind) {
    TS_ASSIGN_OR_RETURN(m.kind, p.String(*kind, "kind"));
  }
  TS_ASSIGN_OR_RETURN(const auto* codec, p.Member(j, "codec", "codec", false));
  if (codec) {
    TS_ASSIGN_OR_RETURN(std::string text, p.String(*codec, "codec"));
    auto spec = ParseCodec(text);
    if (!spec.ok()) return p.Bad(spec.status().message());
    m.codec = *spec;
  }

  TS_ASSIGN_OR_RETURN(const auto* fields, p.Member(j, "fields", "fields", true));
  TS_RETURN_IF_ERROR(p.Kind(*fields, Type::array, "an array", "fields"));
  for (size_t i = 0; i < fields->size(); ++i) {
    TS_ASSIGN_OR_RETURN(FieldSchema f, p.Field((*fields)[i], i));
    if (m.FindField(f.name)) return p.Bad("field '", f.name, "' is listed twice");
    m.fields.push_back(std::move(f));
  }

  TS_ASSIGN_OR_RETURN(const auto* shards, p.Member(j, "shards", "shards", true));
  TS_RETURN_IF_ERROR(p.Kind(*shards, Type::array, "an array", "shards"));
  std::set<std::string> files;
  uint64_t total_records = 0, total_bytes = 0;
  for (size_t i = 0; i < shards->size(); ++i) {
    TS_ASSIGN_OR_RETURN(ShardEntry e, p.Shard((*shards)[i], i));
    if (!files.insert(e.file).second)
      return p.Bad("shards[", i, "].file ", e.file, " is listed twice");
    if (__builtin_add_overflow(total_records, e.records, &total_records) ||
        __builtin_add_overflow(total_bytes, e.bytes, &total_bytes))
      return p.Bad("shards: the record or byte counts add up beyond 2^64");
    // Each record holds every fixed-shape field, and no field decodes to more than the most
    // compressing codec allows from the whole shard.
    for (const FieldSchema& f : m.fields) {
      if (e.records == 0 || f.shape.empty()) continue;
      uint64_t field_bytes = DTypeSize(f.dtype);
      for (int64_t d : f.shape) field_bytes *= static_cast<uint64_t>(d);
      if (field_bytes > MaxDecodedBytes(Codec::kZstd, e.bytes))
        return p.Bad("field '", f.name, "' of ", field_bytes, " bytes per sample cannot come from ",
                     "the ", e.bytes, " bytes of shards[", i, "] (", e.file, ")");
    }
    m.shards.push_back(std::move(e));
  }
  // Tools that only list stores read these totals; they must say what the shards say.
  for (const auto& [key, total] : {std::pair{"samples", total_records}, {"bytes", total_bytes}}) {
    TS_ASSIGN_OR_RETURN(const auto* stated, p.Member(j, key, key, false));
    if (!stated) continue;
    TS_ASSIGN_OR_RETURN(uint64_t value, p.Count(*stated, key));
    if (value != total)
      return p.Bad(key, " is ", value, " but the shards add up to ", total);
  }

  TS_ASSIGN_OR_RETURN(const auto* provenance, p.Member(j, "provenance", "provenance", false));
  if (provenance) {
    TS_RETURN_IF_ERROR(p.Kind(*provenance, Type::object, "an object", "provenance"));
    for (const char* key : {"command", "tool", "version", "time", "host"}) {
      auto it = provenance->find(key);
      if (it != provenance->end())
        TS_RETURN_IF_ERROR(p.String(*it, StrCat("provenance.", key)).status());
    }
    TS_ASSIGN_OR_RETURN(const auto* argv, p.Member(*provenance, "argv", "", false));
    TS_RETURN_IF_ERROR(p.Strings(argv, "provenance.argv").status());
    TS_ASSIGN_OR_RETURN(const auto* sources, p.Member(*provenance, "sources", "", false));
    if (sources) TS_RETURN_IF_ERROR(p.Kind(*sources, Type::array, "an array", "provenance.sources"));
    m.provenance = *provenance;
  }
  TS_ASSIGN_OR_RETURN(const auto* attrs, p.Member(j, "attrs", "attrs", false));
  if (attrs) {
    TS_RETURN_IF_ERROR(p.Kind(*attrs, Type::object, "an object", "attrs"));
    m.attrs = *attrs;
  }
  return m;
}

}  // namespace

Result<Manifest> Manifest::FromJson(const nlohmann::json& j, const std::string& where) {
  try {
    return ParseManifest(j, where);
  } catch (const nlohmann::json::exception& e) {
    // ParseManifest checks every type before using a value; this only keeps a missed case from
    // crossing the library boundary.
    return DataLoss("manifest ", where, ": malformed: ", e.what());
  }
}

std::string ManifestText(const Manifest& manifest) { return manifest.ToJson().dump(2) + "\n"; }

Status WriteManifest(Storage& storage, const std::string& dir, const Manifest& manifest) {
  const std::string text = ManifestText(manifest);
  return storage.WriteAtomic(JoinPath(dir, kManifestName),
                             {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

Result<Manifest> ReadManifest(Storage& storage, const std::string& dir) {
  TS_ASSIGN_OR_RETURN(bool is_dir, storage.IsDirectory(dir));
  if (!is_dir) return NotFound("store directory ", dir, " does not exist");
  const std::string path = JoinPath(dir, kManifestName);
  TS_ASSIGN_OR_RETURN(bool exists, storage.Exists(path));
  if (!exists)
    return NotFound("store ", dir, ": no ", kManifestName,
                    " (not a tile store, or an incomplete one whose writer did not finish)");
  TS_ASSIGN_OR_RETURN(auto file, storage.OpenRead(path));
  if (file->size() > kMaxManifestBytes)
    return DataLoss("manifest ", path, ": ", file->size(), " bytes, more than the ",
                    kMaxManifestBytes, " a manifest may have");
  std::vector<uint8_t> bytes(file->size());
  TS_RETURN_IF_ERROR(file->ReadAt(0, bytes));
  TS_ASSIGN_OR_RETURN(const nlohmann::json j, ParseBoundedJson(bytes, "manifest " + path));
  return Manifest::FromJson(j, path);
}

Result<std::vector<std::optional<double>>> FieldNodata(const Manifest& manifest,
                                                       const std::string& field) {
  std::vector<std::optional<double>> out;
  const nlohmann::json* ingest = manifest.attrs.is_object() && manifest.attrs.contains("ingest")
                                     ? &manifest.attrs["ingest"]
                                     : nullptr;
  if (!ingest || !ingest->is_object() || !ingest->contains("nodata")) return out;
  const nlohmann::json& all = (*ingest)["nodata"];
  if (!all.is_object() || !all.contains(field)) return out;
  const nlohmann::json& list = all[field];
  const std::string where = StrCat("manifest attrs.ingest.nodata.", field);
  if (!list.is_array()) return DataLoss(where, ": expected a list, got ", list.dump());
  for (size_t c = 0; c < list.size(); ++c) {
    if (list[c].is_null()) {
      out.push_back(std::nullopt);
    } else if (list[c].is_number()) {
      out.push_back(list[c].get<double>());
    } else {
      return DataLoss(where, "[", c, "]: expected a number or null, got ", list[c].dump());
    }
  }
  return out;
}

const char* TilestageVersion() { return "0.1.0"; }

nlohmann::json MakeProvenance(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::time_t now = std::time(nullptr);
  char time_buf[32];
  std::strftime(time_buf, sizeof time_buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return {{"command", command}, {"argv", argv}, {"tool", "tilestage"},
          {"version", TilestageVersion()}, {"time", time_buf}, {"host", host},
          {"sources", nlohmann::json::array()}};
}

}  // namespace tilestage
