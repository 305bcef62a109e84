// Benchmark helper for bench/ingest_hdf5: writes a chunked, shuffle+deflate uint16 detector stack
// ("generate") and measures HDF5's own H5Dread rate over it ("raw-read"), the limit the ingest is
// compared against. Prints one JSON line per command.
#include <hdf5.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tiling/synth.h"

namespace {

// A diffraction-like frame: a bright centre with rings falling off as 1/r^2, plus Poisson-ish
// counting noise from the counter-based RNG (deterministic, so every run writes the same file).
void MakeFrame(uint64_t frame, int64_t h, int64_t w, uint16_t* out) {
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const double dy = static_cast<double>(y - h / 2), dx = static_cast<double>(x - w / 2);
      const double r = std::sqrt(dx * dx + dy * dy) + 1.0;
      const double mean = 4000.0 * std::pow(std::cos(r * 0.35 + 0.01 * frame), 2) / (r * r) + 0.3;
      const uint64_t pixel = static_cast<uint64_t>(y * w + x);
      const double u1 = tilestage::CounterUniform(42, frame, 2 * pixel);
      const double u2 = tilestage::CounterUniform(42, frame, 2 * pixel + 1);
      // Gaussian approximation of Poisson noise, clipped at zero.
      const double z = std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307 * u2);
      const double v = std::max(0.0, std::round(mean + std::sqrt(mean) * z));
      out[y * w + x] = static_cast<uint16_t>(std::min(v, 65535.0));
    }
  }
}

int Generate(const std::string& path, int64_t frames, int64_t size, int64_t chunk_frames) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return std::fprintf(stderr, "cannot create %s\n", path.c_str()), 1;
  hsize_t dims[3] = {static_cast<hsize_t>(frames), static_cast<hsize_t>(size),
                     static_cast<hsize_t>(size)};
  hsize_t chunk[3] = {static_cast<hsize_t>(chunk_frames), dims[1], dims[2]};
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 3, chunk);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, 4);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t space = H5Screate_simple(3, dims, nullptr);
  hid_t ds = H5Dcreate2(f, "/entry/data/data", H5T_STD_U16LE, space, lcpl, dcpl, H5P_DEFAULT);
  std::vector<uint16_t> buf(static_cast<size_t>(chunk_frames * size * size));
  for (int64_t first = 0; first < frames; first += chunk_frames) {
    const int64_t n = std::min(chunk_frames, frames - first);
    for (int64_t i = 0; i < n; ++i)
      MakeFrame(static_cast<uint64_t>(first + i), size, size, buf.data() + i * size * size);
    hsize_t start[3] = {static_cast<hsize_t>(first), 0, 0};
    hsize_t count[3] = {static_cast<hsize_t>(n), dims[1], dims[2]};
    hid_t fs = H5Dget_space(ds);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t ms = H5Screate_simple(3, count, nullptr);
    if (H5Dwrite(ds, H5T_NATIVE_UINT16, ms, fs, H5P_DEFAULT, buf.data()) < 0)
      return std::fprintf(stderr, "write failed\n"), 1;
    H5Sclose(ms);
    H5Sclose(fs);
  }
  H5Dclose(ds);
  H5Sclose(space);
  H5Pclose(lcpl);
  H5Pclose(dcpl);
  H5Fclose(f);
  std::printf("{\"generated\": \"%s\", \"frames\": %lld, \"size\": %lld}\n", path.c_str(),
              static_cast<long long>(frames), static_cast<long long>(size));
  return 0;
}

int RawRead(const std::string& path, int64_t batch_frames) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "/entry/data/data", H5P_DEFAULT);
  if (ds < 0) return std::fprintf(stderr, "cannot open %s\n", path.c_str()), 1;
  hid_t fs = H5Dget_space(ds);
  hsize_t dims[3];
  H5Sget_simple_extent_dims(fs, dims, nullptr);
  std::vector<uint16_t> buf(static_cast<size_t>(batch_frames) * dims[1] * dims[2]);
  uint64_t checksum = 0;
  for (hsize_t first = 0; first < dims[0]; first += static_cast<hsize_t>(batch_frames)) {
    hsize_t n = std::min<hsize_t>(static_cast<hsize_t>(batch_frames), dims[0] - first);
    hsize_t start[3] = {first, 0, 0}, count[3] = {n, dims[1], dims[2]};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t ms = H5Screate_simple(3, count, nullptr);
    if (H5Dread(ds, H5T_NATIVE_UINT16, ms, fs, H5P_DEFAULT, buf.data()) < 0)
      return std::fprintf(stderr, "read failed\n"), 1;
    H5Sclose(ms);
    for (size_t i = 0; i < buf.size(); i += 4099) checksum += buf[i];
  }
  H5Sclose(fs);
  H5Dclose(ds);
  H5Fclose(f);
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bytes = static_cast<double>(dims[0] * dims[1] * dims[2] * 2);
  std::printf(
      "{\"raw_read_s\": %.4f, \"bytes\": %.0f, \"raw_read_mb_s\": %.1f, "
      "\"checksum\": %llu}\n",
      elapsed_s, bytes, bytes / elapsed_s / 1e6, static_cast<unsigned long long>(checksum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "generate" && argc >= 6)
    return Generate(argv[2], std::atoll(argv[3]), std::atoll(argv[4]), std::atoll(argv[5]));
  if (cmd == "raw-read" && argc >= 4) return RawRead(argv[2], std::atoll(argv[3]));
  std::fprintf(stderr,
               "usage: hdf5_stack_tool generate FILE FRAMES SIZE CHUNK_FRAMES\n"
               "       hdf5_stack_tool raw-read FILE BATCH_FRAMES\n");
  return 2;
}
