#include "bench/e2e/e2e_config.h"

#include <fstream>

namespace tilestage::bench {

Json E2eConfig::ToJson() const {
  return Json{{"preset", preset},
              {"np", np},
              {"copies", copies},
              {"geotiff_tile", geotiff_tile},
              {"netcdf_vars", netcdf_vars},
              {"hdf5_tile", hdf5_tile},
              {"epochs", epochs},
              {"batch", batch},
              {"dim", dim},
              {"depth", depth},
              {"heads", heads},
              {"patch", patch},
              {"eval_fraction", eval_fraction},
              {"threads", threads},
              {"loader_batch", loader_batch},
              {"peers", peers},
              {"stall_rounds", stall_rounds}};
}

Result<E2eConfig> PresetE2eConfig(const std::string& name) {
  E2eConfig c;
  c.preset = name;
  if (name == "tiny") {
    c.geotiff_tile = 64;
    c.epochs = 2;
    c.batch = 16;
    c.dim = 32;
    c.depth = 1;
    c.loader_batch = 16;
  } else if (name == "small") {
    // the defaults
  } else if (name == "medium") {
    c.copies = 8;
    c.epochs = 4;
    c.dim = 96;
    c.depth = 4;
    c.heads = 3;
  } else {
    return InvalidArgument("--preset ", name, ": expected tiny, small or medium");
  }
  return c;
}

Status ApplyE2eConfigFile(const std::string& path, E2eConfig* c) {
  std::ifstream in(path);
  if (!in) return NotFound("--config ", path, ": cannot open");
  Json j;
  try {
    j = Json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgument("--config ", path, ": not JSON: ", e.what());
  }
  if (!j.is_object()) return InvalidArgument("--config ", path, ": expected a JSON object");
  Json base = c->ToJson();
  for (const auto& [key, value] : j.items()) {
    if (!base.contains(key))
      return InvalidArgument("--config ", path, ": unknown key \"", key, "\"");
    const Json& b = base[key];
    const bool ok = (b.is_string() && value.is_string()) ||
                    (b.is_boolean() && value.is_boolean()) ||
                    (b.is_number_integer() && value.is_number_integer()) ||
                    (b.is_number_float() && value.is_number());
    if (!ok) return InvalidArgument("--config ", path, ": key \"", key, "\" has the wrong type");
    base[key] = value;
  }
  E2eConfig n = *c;
  try {
    n.np = base["np"];
    n.copies = base["copies"];
    n.geotiff_tile = base["geotiff_tile"];
    n.netcdf_vars = base["netcdf_vars"];
    n.hdf5_tile = base["hdf5_tile"];
    n.epochs = base["epochs"];
    n.batch = base["batch"];
    n.dim = base["dim"];
    n.depth = base["depth"];
    n.heads = base["heads"];
    n.patch = base["patch"];
    n.eval_fraction = base["eval_fraction"];
    n.threads = base["threads"];
    n.loader_batch = base["loader_batch"];
    n.peers = base["peers"];
    n.stall_rounds = base["stall_rounds"];
  } catch (const std::exception& e) {
    return InvalidArgument("--config ", path, ": ", e.what());
  }
  if (n.np < 1 || n.copies < 1 || n.epochs < 1 || n.batch < n.np || n.threads < 1 ||
      n.loader_batch < 1 || n.geotiff_tile < n.patch || n.stall_rounds < 1) {
    return InvalidArgument("--config ", path,
                           ": np, copies, epochs, threads, loader_batch, "
                           "stall_rounds must be >= 1, batch >= np, geotiff_tile >= patch");
  }
  *c = n;
  return Status::Ok();
}

}  // namespace tilestage::bench
