// tilestage inspect: schema, counts, sizes, compression ratio and statistics of a store.
#include <cstdio>
#include <iostream>

#include "tiling/store.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

Status RunInspect(const std::string& dir, bool as_json) {
  TS_ASSIGN_OR_RETURN(auto store, Store::Open(LocalStorage(), dir));
  const Manifest& m = store->manifest();
  uint64_t raw = 0, stored = 0;
  for (size_t s = 0; s < store->num_shards(); ++s) {
    const ShardReader& shard = store->shard(s);
    for (uint64_t i = 0; i < shard.num_records(); ++i) {
      raw += shard.entry(i).raw_size;
      stored += shard.entry(i).stored_size;
    }
  }
  const double ratio = stored ? static_cast<double>(raw) / static_cast<double>(stored) : 0.0;
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
  for (const auto& f : m.fields) {
    std::string shape;
    for (size_t i = 0; i < f.shape.size(); ++i) shape += (i ? "," : "") + std::to_string(f.shape[i]);
    std::printf("field %-5s %s[%s]\n", f.name.c_str(), DTypeName(f.dtype),
                shape.empty() ? "varies" : shape.c_str());
    for (size_t c = 0; c < f.stats.size(); ++c) {
      const ChannelStats& s = f.stats[c];
      const std::string name = c < f.channel_names.size() ? f.channel_names[c] : std::to_string(c);
      std::printf("  %-12s mean %-12.6g std %-12.6g min %-12.6g max %-12.6g valid %.4f\n",
                  name.c_str(), s.mean, s.std(), s.min, s.max, s.valid_fraction());
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
