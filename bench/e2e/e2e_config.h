// What one `tilestage bench e2e` run does: sizes of the inputs, the model and the runs. A preset
// (tiny, small, medium, demo) fills it; a JSON file may override any key.
//
// Thread-safety: a plain value type; the functions are pure apart from reading the config file.
#pragma once

#include <cstdint>
#include <string>

#include "bench/e2e/mllog.h"  // Json
#include "tiling/status.h"

namespace tilestage::bench {

struct E2eConfig {
  std::string preset = "small";
  int np = 2;                  // MPI ranks for staging and training
  int copies = 1;              // copies of each input file ingested (medium: bigger inputs)
  int geotiff_copies = 0;      // copies of the GeoTIFF scene; 0: `copies`
  int64_t geotiff_tile = 32;   // tile edge in pixels, for tilestage and gdal_retile.py
  std::string geotiff_dtype;   // --dtype of the GeoTIFF ingest; empty: the scene's (uint8)
  std::string codec = "zstd";  // --codec of every ingest
  std::string netcdf_vars = "t2m,u10,v10,d2m,sp";
  std::string hdf5_tile = "256,256";
  int epochs = 3;
  int batch = 32;  // global
  int dim = 64, depth = 2, heads = 2, patch = 8;
  double eval_fraction = 0.2;
  int threads = 1;  // per rank / per process
  int loader_batch = 32;
  bool peers = true;
  int peer_copies = 0;   // copies of each file the peers ingest (their rates are per MB); 0: all
  int stall_rounds = 3;  // repetitions of the DS-Analyzer runs (medians and spread reported)

  // Every key above, in this order; the provenance's "config".
  Json ToJson() const;
  // How many copies of the GeoTIFF scene the run ingests.
  int GeotiffCopies() const { return geotiff_copies > 0 ? geotiff_copies : copies; }
};

// The named preset; InvalidArgument "--preset <name>: expected tiny, small, medium or demo".
Result<E2eConfig> PresetE2eConfig(const std::string& name);

// Overrides from a JSON object in `path`. An unknown key, a value of the wrong type or an
// out-of-range setting is InvalidArgument naming the file and the key; NotFound when it cannot
// be opened.
Status ApplyE2eConfigFile(const std::string& path, E2eConfig* config);

}  // namespace tilestage::bench
