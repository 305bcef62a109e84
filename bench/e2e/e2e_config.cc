#include "bench/e2e/e2e_config.h"

#include <fstream>

namespace tilestage::bench {

Json E2eConfig::ToJson() const {
  return Json{{"preset", preset},
              {"np", np},
              {"copies", copies},
              {"geotiff_copies", geotiff_copies},
              {"geotiff_tile", geotiff_tile},
              {"geotiff_dtype", geotiff_dtype},
              {"codec", codec},
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
              {"peer_copies", peer_copies},
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
  } else if (name == "demo") {
    // The demo's scale (issue 18): a GeoTIFF store over 1 GB from copies of the one real scene,
    // kept as float32 tiles without compression so that the store's size follows from the
    // inputs; a model whose training dwarfs mpirun start-up and model set-up; one round of data
    // stalls, since each round reads the whole store three times. Its size and share rules are
    // checked by tests/bench/demo_config_test.cc.
    c.geotiff_copies = 250;
    c.copies = 4;
    c.geotiff_tile = 64;
    c.geotiff_dtype = "float32";
    c.codec = "none";
    c.epochs = 2;
    c.batch = 64;
    c.loader_batch = 64;
    c.dim = 64;
    c.depth = 2;
    c.heads = 2;
    c.patch = 16;
    c.stall_rounds = 1;
    c.peer_copies = 25;  // gdal_retile.py over all 250 scenes alone would take ~45 s
  } else {
    return InvalidArgument("--preset ", name, ": expected tiny, small, medium or demo");
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
    n.geotiff_copies = base["geotiff_copies"];
    n.geotiff_tile = base["geotiff_tile"];
    n.geotiff_dtype = base["geotiff_dtype"];
    n.codec = base["codec"];
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
    n.peer_copies = base["peer_copies"];
    n.stall_rounds = base["stall_rounds"];
  } catch (const std::exception& e) {
    return InvalidArgument("--config ", path, ": ", e.what());
  }
  if (n.np < 1 || n.copies < 1 || n.geotiff_copies < 0 || n.peer_copies < 0 || n.epochs < 1 ||
      n.batch < n.np || n.threads < 1 || n.loader_batch < 1 || n.geotiff_tile < n.patch ||
      n.stall_rounds < 1) {
    return InvalidArgument("--config ", path,
                           ": np, copies, epochs, threads, loader_batch, "
                           "stall_rounds must be >= 1, geotiff_copies, peer_copies >= 0, batch >= "
                           "np, geotiff_tile >= patch");
  }
  *c = n;
  return Status::Ok();
}

}  // namespace tilestage::bench
