// The limit for GeoTIFF ingest: how fast GDAL itself reads a raster in-process, in the same
// 256-row bands of 256x256 tiles the ingest cuts, with one dataset handle per thread (as the
// ingest does, uncompressed files with GTIFF_DIRECT_IO as the ingest opens them). Prints one JSON
// object. Measures only; asserts nothing.
//
//   ingest_geotiff_gdal_read FILE [--threads N] [--tile T] [--repeat R]
#include <cpl_conv.h>
#include <gdal.h>
#include <sys/resource.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [--threads N] [--tile T] [--repeat R]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  int threads = 0, tile = 256, repeat = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tile"))
      tile = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeat"))
      repeat = std::atoi(argv[i + 1]);
  }
  GDALAllRegister();
  // The ingest reads uncompressed files with GTIFF_DIRECT_IO (ingest/geotiff_source.cc): the limit
  // reads them the same, faster, way.
  if (!CPLGetConfigOption("GTIFF_DIRECT_IO", nullptr)) CPLSetConfigOption("GTIFF_DIRECT_IO", "YES");
  GDALDatasetH probe = GDALOpen(path.c_str(), GA_ReadOnly);
  if (!probe) {
    std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(), CPLGetLastErrorMsg());
    return 1;
  }
  const int width = GDALGetRasterXSize(probe), height = GDALGetRasterYSize(probe);
  const int bands = GDALGetRasterCount(probe);
  const GDALDataType type = GDALGetRasterDataType(GDALGetRasterBand(probe, 1));
  const int elem = GDALGetDataTypeSizeBytes(type);
  GDALClose(probe);
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  const int rows = (height + tile - 1) / tile;
  struct Handle {
    GDALDatasetH ds = nullptr;
    std::vector<uint8_t> buf;
  };
  auto cpu_now = [] {
    rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  double best_s = 1e30, best_cpu_s = 0;
  bool failed = false;
  for (int rep = 0; rep < repeat; ++rep) {
    tbb::enumerable_thread_specific<Handle> handles;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_now();
    arena.execute([&] {
      tbb::parallel_for(0, rows, [&](int r) {
        Handle& h = handles.local();
        if (!h.ds) h.ds = GDALOpen(path.c_str(), GA_ReadOnly);
        const int y = r * tile, hh = std::min(tile, height - y);
        h.buf.resize(static_cast<size_t>(bands) * hh * width * elem);
        // Band-sequential, like the channel-first tiles the ingest produces.
        if (GDALDatasetRasterIO(h.ds, GF_Read, 0, y, width, hh, h.buf.data(), width, hh, type,
                                bands, nullptr, elem, static_cast<GSpacing>(elem) * width,
                                static_cast<GSpacing>(elem) * width * hh) != CE_None)
          failed = true;
      });
    });
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu_s = cpu_now() - cpu_start;
    for (auto& h : handles)
      if (h.ds) GDALClose(h.ds);
    if (s < best_s) {
      best_s = s;
      best_cpu_s = cpu_s;
    }
  }
  if (failed) {
    std::fprintf(stderr, "read failed: %s\n", CPLGetLastErrorMsg());
    return 1;
  }
  const double tiles = static_cast<double>(width) * height / (static_cast<double>(tile) * tile);
  const double bytes = static_cast<double>(width) * height * bands * elem;
  nlohmann::json out = {{"file", path},
                        {"width", width},
                        {"height", height},
                        {"bands", bands},
                        {"bytes", bytes},
                        {"tile", tile},
                        {"threads", threads},
                        {"best_s", best_s},
                        {"cpu_s", best_cpu_s},
                        {"repeat", repeat},
                        {"tiles_per_s", tiles / best_s},
                        {"mb_per_s", bytes / best_s / 1e6}};
  std::cout << out.dump() << "\n";
  return 0;
}
