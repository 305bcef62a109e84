// tilestage inspect: schema, counts, sizes, compression ratio and statistics of a store.
#include <cstdio>
#include <optional>
#include <iostream>

#include "tiling/store.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

// attrs.<key>, else attrs.<kind>.<key> (sources keep their own attributes under their kind).
const nlohmann::json* FindAttr(const Manifest& m, const std::string& key) {
  if (m.attrs.contains(key)) return &m.attrs[key];
  if (m.attrs.contains(m.kind) && m.attrs[m.kind].is_object() && m.attrs[m.kind].contains(key))
    return &m.attrs[m.kind][key];
  return nullptr;
}

// The CRS in a line: EPSG code and WKT name where known, a geographic grid for lat/lon fields.
std::string CrsLine(const Manifest& m) {
  std::string wkt;
  if (const nlohmann::json* w = FindAttr(m, "crs_wkt"); w && w->is_string()) wkt = *w;
  std::optional<int64_t> epsg;
  if (const nlohmann::json* e = FindAttr(m, "epsg"); e && e->is_number_integer()) epsg = *e;
  if (const nlohmann::json* scenes = FindAttr(m, "scenes"); scenes && scenes->is_array()) {
    for (const auto& scene : *scenes) {
      if (wkt.empty() && scene.contains("crs_wkt") && scene["crs_wkt"].is_string())
        wkt = scene["crs_wkt"];
      if (!epsg && scene.contains("epsg") && scene["epsg"].is_number_integer())
        epsg = scene["epsg"].get<int64_t>();
    }
  }
  std::string name;
  if (auto q = wkt.find('"'); q != std::string::npos)
    name = wkt.substr(q + 1, wkt.find('"', q + 1) - q - 1);
  if (epsg || !name.empty())
    return (epsg ? "EPSG:" + std::to_string(*epsg) + " " : "") + (name.empty() ? "" : name);
  const nlohmann::json* lat = FindAttr(m, "latitude");
  const nlohmann::json* lon = FindAttr(m, "longitude");
  if (lat && lon && lat->contains("values") && lon->contains("values") &&
      !(*lat)["values"].empty() && !(*lon)["values"].empty()) {
    const auto& la = (*lat)["values"];
    const auto& lo = (*lon)["values"];
    char line[160];
    std::snprintf(line, sizeof line, "latitude/longitude grid: lat %g..%g, lon %g..%g",
                  la.front().get<double>(), la.back().get<double>(), lo.front().get<double>(),
                  lo.back().get<double>());
    return line;
  }
  return "";
}

std::string GeotransformLine(const Manifest& m) {
  const nlohmann::json* scenes = FindAttr(m, "scenes");
  if (!scenes || !scenes->is_array() || scenes->empty()) return "";
  const auto& first = (*scenes)[0];
  if (!first.contains("geotransform")) return "";
  std::string out;
  for (const auto& v : first["geotransform"]) {
    char num[32];
    std::snprintf(num, sizeof num, "%.10g", v.get<double>());
    out += (out.empty() ? "" : ", ") + std::string(num);
  }
  out = "[" + out + "]";
  if (scenes->size() > 1)
    out += " (first of " + std::to_string(scenes->size()) + " scenes; tiles carry their own)";
  return out;
}

std::string TimeLine(const Manifest& m) {
  const nlohmann::json* t = FindAttr(m, "time");
  if (!t || !t->is_object() || !t->contains("first")) return "";
  std::string line = t->value("first", "") + " .. " + t->value("last", "");
  if (t->contains("steps")) line += ", " + t->at("steps").dump() + " step(s)";
  if (t->contains("calendar")) line += ", calendar " + t->value("calendar", "");
  return line;
}

Status RunInspect(const std::string& dir, bool as_json) {
  TS_ASSIGN_OR_RETURN(auto store, Store::Open(LocalStorage(), dir));
  const Manifest& m = store->manifest();
  const StoreSizes sizes = MeasureStore(*store);
  const uint64_t raw = sizes.raw_bytes, stored = sizes.stored_bytes;
  const double ratio = sizes.ratio();
  if (as_json) {
    nlohmann::json j = m.ToJson();
    j["store"] = dir;
    j["raw_bytes"] = raw;
    j["stored_bytes"] = stored;
    j["compression_ratio"] = ratio;
    std::cout << j.dump(2) << "\n";
    return Status::Ok();
  }
  std::printf("store       %s\n", dir.c_str());
  std::printf("kind        %s\n", m.kind.c_str());
  std::printf("samples     %llu in %zu shards, %.2f MiB on disk\n",
              static_cast<unsigned long long>(store->size()), store->num_shards(),
              static_cast<double>(m.TotalBytes()) / (1 << 20));
  std::printf("codec       %s, compression ratio %.2fx (%.2f MiB raw, %.2f MiB stored)\n",
              m.codec.ToString().c_str(), ratio, raw / 1048576.0, stored / 1048576.0);
  if (m.provenance.contains("command"))
    std::printf("made by     %s (%s)\n", m.provenance["command"].get<std::string>().c_str(),
                m.provenance.value("time", "").c_str());
  const std::string crs = CrsLine(m), gt = GeotransformLine(m), time = TimeLine(m);
  std::printf("crs         %s\n", crs.empty() ? "none recorded" : crs.c_str());
  if (!gt.empty()) std::printf("geotransform %s\n", gt.c_str());
  if (!time.empty()) std::printf("time        %s\n", time.c_str());
  for (const auto& f : m.fields) {
    std::string shape;
    for (size_t i = 0; i < f.shape.size(); ++i) shape += (i ? "," : "") + std::to_string(f.shape[i]);
    std::printf("field %-5s %s[%s]\n", f.name.c_str(), DTypeName(f.dtype),
                shape.empty() ? "varies" : shape.c_str());
    TS_ASSIGN_OR_RETURN(auto nodata, FieldNodata(m, f.name));
    for (size_t c = 0; c < f.stats.size(); ++c) {
      const ChannelStats& s = f.stats[c];
      const std::string name = c < f.channel_names.size() ? f.channel_names[c] : std::to_string(c);
      // Units per channel, or one for all.
      const std::string units = c < f.units.size()    ? f.units[c]
                                : f.units.size() == 1 ? f.units[0]
                                                      : "";
      char nd[32] = "none";
      if (c < nodata.size() && nodata[c]) std::snprintf(nd, sizeof nd, "%.10g", *nodata[c]);
      std::printf("  %-12s mean %-12.6g std %-12.6g min %-12.6g max %-12.6g valid %.4f units %s "
                  "nodata %s\n",
                  name.c_str(), s.mean, s.std(), s.min, s.max, s.valid_fraction(),
                  units.empty() ? "-" : units.c_str(), nd);
    }
  }
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = root.add_subcommand("inspect", "Show a store's schema, sizes and statistics");
  cmd->add_option("store", *dir, "Store directory")->required();
  cmd->add_flag("--json", *as_json, "Print the manifest and sizes as JSON");
  cmd->callback([=] { *exit_code = Report(RunInspect(*dir, *as_json)); });
});

}  // namespace
}  // namespace tilestage::cli
