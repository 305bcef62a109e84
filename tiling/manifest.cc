#include "tiling/manifest.h"

#include <unistd.h>

#include <ctime>

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

Result<Manifest> Manifest::FromJson(const nlohmann::json& j, const std::string& where) {
  try {
    if (j.value("format", "") != "tilestage")
      return DataLoss(where, ": not a tilestage manifest (no \"format\": \"tilestage\")");
    const int version = j.at("format_version").get<int>();
    if (version != kManifestVersion)
      return DataLoss(where, ": unknown manifest version ", version);
    Manifest m;
    m.kind = j.value("kind", "");
    TS_ASSIGN_OR_RETURN(m.codec, ParseCodec(j.value("codec", "none")));
    for (const auto& fj : j.at("fields")) {
      FieldSchema f;
      f.name = fj.at("name").get<std::string>();
      TS_ASSIGN_OR_RETURN(f.dtype, ParseDType(fj.at("dtype").get<std::string>()));
      f.shape = fj.value("shape", std::vector<int64_t>{});
      f.channel_names = fj.value("channel_names", std::vector<std::string>{});
      f.units = fj.value("units", std::vector<std::string>{});
      for (const auto& sj : fj.value("stats", nlohmann::json::array())) {
        TS_ASSIGN_OR_RETURN(auto s, ChannelStats::FromJson(sj));
        f.stats.push_back(s);
      }
      m.fields.push_back(std::move(f));
    }
    for (const auto& sj : j.at("shards")) {
      m.shards.push_back({sj.at("file").get<std::string>(), sj.at("records").get<uint64_t>(),
                          sj.at("bytes").get<uint64_t>(), sj.at("hash").get<std::string>()});
    }
    m.provenance = j.value("provenance", nlohmann::json::object());
    m.attrs = j.value("attrs", nlohmann::json::object());
    return m;
  } catch (const nlohmann::json::exception& e) {
    return DataLoss(where, ": malformed manifest: ", e.what());
  }
}

Status WriteManifest(Storage& storage, const std::string& dir, const Manifest& manifest) {
  const std::string text = manifest.ToJson().dump(2) + "\n";
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
  TS_ASSIGN_OR_RETURN(auto bytes, storage.ReadAll(path));
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) return DataLoss(path, ": not valid JSON");
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
