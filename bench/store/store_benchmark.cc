// Tile store throughput against the physical limits of the same machine, in one run.
//
// For synthetic float32 and uint16 stores (tilestage synth's generator) it measures, per codec:
// write throughput (encode + checksum + write + fsync, one thread), read throughput decoding
// every record (Store::Read, sequential and random order, one thread), and the compression
// ratio; and, on the same shard files, the raw sequential read rate with read(2) in 8 MiB blocks,
// plus memcpy bandwidth. The page cache is warm for both store and raw reads (each is run once
// untimed first), so the comparison is against reading the same bytes from memory through the
// kernel. Prints a table and writes JSON. Measures, never asserts.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tiling/store.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
constexpr double kMiB = 1024.0 * 1024.0;

struct Options {
  std::string dir = "/tmp/tilestage-store-bench";
  double raw_mib = 256;
  std::string shape = "4,256,256";
  std::vector<std::string> dtypes = {"f32", "u16"};
  std::vector<std::string> codecs = {"none",           "lz4",           "lz4+shuffle", "zstd:1",
                                     "zstd:1+shuffle", "zstd:3+shuffle"};
  std::string shard_size = "256MiB";
  int repeats = 3;  // timed passes per measurement; the best is reported
  std::string json_out = "store_benchmark.json";
};

// read(2) of every file in 8 MiB blocks into one reused buffer: the kernel's copy from the page
// cache, i.e. the ceiling for any reader that returns the bytes in user memory.
double RawReadMiBps(const std::vector<std::string>& files, size_t block_bytes,
                    uint64_t* bytes_out) {
  const size_t kBlock = block_bytes;
  std::vector<uint8_t> buf(kBlock, 0);
  uint64_t bytes = 0;
  const auto t0 = Clock::now();
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) {
      std::perror(f.c_str());
      std::exit(1);
    }
    ssize_t n;
    while ((n = ::read(fd, buf.data(), kBlock)) > 0) bytes += n;
    ::close(fd);
  }
  const double s = Seconds(t0);
  *bytes_out = bytes;
  return bytes / kMiB / s;
}

double MemcpyMiBps(size_t bytes, int repeats) {
  std::vector<uint8_t> a(bytes, 1), b(bytes, 2);
  double best = 0;
  for (int r = 0; r < repeats + 1; ++r) {
    const auto t0 = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    const double s = Seconds(t0);
    if (r > 0) best = std::max(best, bytes / kMiB / s);  // first pass faults the pages in
    a[r] = b[bytes - 1 - r];                             // keep the copies observable
  }
  return best;
}

struct Row {
  std::string dtype, codec;
  uint64_t records = 0, raw_bytes = 0, file_bytes = 0;
  double write_mibps = 0, seq_read_mibps = 0, rand_read_mibps = 0, raw_read_mibps = 0;
  double seq_fresh_mibps = 0;                       // Read() returning a new Sample per record
  double raw8_read_mibps = 0, raw1_read_mibps = 0;  // read(2) in 8 MiB and 1 MiB blocks
  double seq_noverify_mibps = 0;                    // ReadInto without record checksum verification
  double ratio() const { return static_cast<double>(raw_bytes) / file_bytes; }
};

int Run(const Options& opt) {
  std::vector<int64_t> shape;
  for (size_t start = 0; start <= opt.shape.size();) {
    size_t comma = opt.shape.find(',', start);
    if (comma == std::string::npos) comma = opt.shape.size();
    shape.push_back(std::stoll(opt.shape.substr(start, comma - start)));
    start = comma + 1;
  }
  const uint64_t shard_bytes = [&] {
    std::string s = opt.shard_size;
    uint64_t scale = 1;
    if (s.ends_with("MiB")) {
      scale = 1 << 20;
      s.resize(s.size() - 3);
    } else if (s.ends_with("GiB")) {
      scale = 1ull << 30;
      s.resize(s.size() - 3);
    }
    return std::stoull(s) * scale;
  }();

  std::vector<Row> rows;
  std::printf(
      "tilestage store benchmark: %.0f MiB raw per dtype, samples [%s], shards %s, "
      "1 thread, page cache warm\n",
      opt.raw_mib, opt.shape.c_str(), opt.shard_size.c_str());
  const double memcpy_mibps = MemcpyMiBps(256 << 20, opt.repeats);
  std::printf("memcpy 256 MiB: %.0f MiB/s\n\n", memcpy_mibps);
  std::printf("%-5s %-15s %6s %7s %9s %9s %9s %9s %8s %8s %8s %8s %9s %9s %9s %9s\n", "dtype",
              "codec", "ratio", "write", "seq read", "rand read", "seq Read", "raw read", "seq/raw",
              "rand/raw", "Read/raw", "seq/mcpy", "raw 8MiB", "raw 1MiB", "seq nover", "nover/raw");
  std::printf("%-5s %-15s %6s %7s %9s %9s %9s %9s %8s %8s %8s %8s %9s %9s %9s %9s\n", "", "", "",
              "MiB/s", "MiB/s", "MiB/s", "MiB/s", "MiB/s", "", "", "", "", "MiB/s", "MiB/s",
              "MiB/s", "");

  for (const std::string& dtype_name : opt.dtypes) {
    auto dtype = ParseDType(dtype_name);
    if (!dtype.ok()) {
      std::cerr << dtype.status().ToString() << "\n";
      return 2;
    }
    SynthSpec spec{shape, *dtype, 1, 0};
    const uint64_t sample_bytes = Array(*dtype, shape).ByteSize();
    const uint64_t n =
        std::max<uint64_t>(1, static_cast<uint64_t>(opt.raw_mib * kMiB) / sample_bytes);
    std::vector<Sample> samples(n);
    for (uint64_t i = 0; i < n; ++i) samples[i] = MakeSynthSample(spec, i);

    for (const std::string& codec_name : opt.codecs) {
      auto codec = ParseCodec(codec_name);
      if (!codec.ok()) {
        std::cerr << codec.status().ToString() << "\n";
        return 2;
      }
      const std::string dir = opt.dir + "/" + dtype_name + "-" + codec_name;
      Row row{dtype_name, codec_name};
      row.records = n;

      // Write: the best of the repeats; each rewrites the whole store.
      for (int r = 0; r < opt.repeats; ++r) {
        StoreWriterOptions wopt;
        wopt.codec = *codec;
        wopt.shard_target_bytes = shard_bytes;
        const auto t0 = Clock::now();
        auto writer = StoreWriter::Create(LocalStorage(), dir, wopt);
        if (!writer.ok()) {
          std::cerr << writer.status().ToString() << "\n";
          return 1;
        }
        for (const Sample& s : samples) {
          Status st = (*writer)->Append(s);
          if (!st.ok()) {
            std::cerr << st.ToString() << "\n";
            return 1;
          }
        }
        auto shards = (*writer)->Close();
        if (!shards.ok()) {
          std::cerr << shards.status().ToString() << "\n";
          return 1;
        }
        Manifest m;
        m.kind = "synthetic";
        m.codec = *codec;
        m.shards = *shards;
        m.fields.push_back({"x", *dtype, shape, {}, {}, {}});
        Status st = WriteManifest(*LocalStorage(), dir, m);
        if (!st.ok()) {
          std::cerr << st.ToString() << "\n";
          return 1;
        }
        const double s = Seconds(t0);
        row.raw_bytes = n * sample_bytes;
        row.file_bytes = m.TotalBytes();
        row.write_mibps = std::max(row.write_mibps, row.raw_bytes / kMiB / s);
      }

      auto store = Store::Open(LocalStorage(), dir);
      if (!store.ok()) {
        std::cerr << store.status().ToString() << "\n";
        return 1;
      }
      std::vector<std::string> files;
      for (size_t s = 0; s < (*store)->num_shards(); ++s)
        files.push_back((*store)->shard(s).path());

      std::vector<uint64_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::vector<uint64_t> shuffled = order;
      std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(42));
      // reuse: ReadInto one Sample, as a loader does; otherwise Read() returns a fresh Sample.
      auto read_pass = [&](const std::vector<uint64_t>& idx, bool reuse, bool verify = true) {
        ReadOptions read_options;
        read_options.verify_checksum = verify;
        uint64_t checksum = 0;
        Sample sample;
        const auto t0 = Clock::now();
        for (uint64_t i : idx) {
          if (reuse) {
            Status st = (*store)->ReadInto(i, &sample, read_options);
            if (!st.ok()) {
              std::cerr << st.ToString() << "\n";
              std::exit(1);
            }
          } else {
            auto fresh = (*store)->Read(i);
            if (!fresh.ok()) {
              std::cerr << fresh.status().ToString() << "\n";
              std::exit(1);
            }
            sample = std::move(fresh).value();
          }
          checksum += sample.fields[0].array.data[i % sample_bytes];
        }
        const double s = Seconds(t0);
        if (checksum == 0xFFFFFFFFFFFFFFFFull) std::puts("");  // keep the reads observable
        return row.raw_bytes / kMiB / s;
      };
      uint64_t raw_bytes_read = 0;
      RawReadMiBps(files, 8 << 20, &raw_bytes_read);  // warm the page cache
      read_pass(order, true);
      for (int r = 0; r < opt.repeats; ++r) {
        // Interleaved so that all see the same machine state.
        // 8 MiB blocks as the issue asks, and 1 MiB blocks, whose buffer stays in cache and so
        // is often faster; the ratios use the faster of the two (the stricter ceiling).
        row.raw8_read_mibps =
            std::max(row.raw8_read_mibps, RawReadMiBps(files, 8 << 20, &raw_bytes_read));
        row.raw1_read_mibps =
            std::max(row.raw1_read_mibps, RawReadMiBps(files, 1 << 20, &raw_bytes_read));
        row.raw_read_mibps = std::max(row.raw8_read_mibps, row.raw1_read_mibps);
        row.seq_read_mibps = std::max(row.seq_read_mibps, read_pass(order, true));
        row.rand_read_mibps = std::max(row.rand_read_mibps, read_pass(shuffled, true));
        row.seq_fresh_mibps = std::max(row.seq_fresh_mibps, read_pass(order, false));
        row.seq_noverify_mibps =
            std::max(row.seq_noverify_mibps, read_pass(order, true, /*verify=*/false));
      }
      std::printf(
          "%-5s %-15s %6.2f %7.0f %9.0f %9.0f %9.0f %9.0f %8.2f %8.2f %8.2f %8.2f %9.0f "
          "%9.0f %9.0f %9.2f\n",
          dtype_name.c_str(), codec_name.c_str(), row.ratio(), row.write_mibps, row.seq_read_mibps,
          row.rand_read_mibps, row.seq_fresh_mibps, row.raw_read_mibps,
          row.seq_read_mibps / row.raw_read_mibps, row.rand_read_mibps / row.raw_read_mibps,
          row.seq_fresh_mibps / row.raw_read_mibps, row.seq_read_mibps / memcpy_mibps,
          row.raw8_read_mibps, row.raw1_read_mibps, row.seq_noverify_mibps,
          row.seq_noverify_mibps / row.raw_read_mibps);
      std::fflush(stdout);
      rows.push_back(row);
      std::filesystem::remove_all(dir);
    }
  }
  std::printf(
      "\nread rates are MiB/s of decoded sample data, checksums verified; seq/rand read "
      "use Store::ReadInto into one reused Sample, seq Read uses Store::Read (a new "
      "Sample per record), seq nover is ReadInto without record checksums; raw read is MiB/s of "
      "shard file bytes of the same store with "
      "read(2), the faster of 8 MiB and 1 MiB blocks (both shown).\n");

  nlohmann::json j;
  j["benchmark"] = "store";
  j["raw_mib_per_dtype"] = opt.raw_mib;
  j["shape"] = shape;
  j["shard_size"] = opt.shard_size;
  j["threads"] = 1;
  j["page_cache"] = "warm";
  j["memcpy_mibps"] = memcpy_mibps;
  j["hardware_threads"] = std::thread::hardware_concurrency();
  for (const Row& r : rows) {
    j["results"].push_back({{"dtype", r.dtype},
                            {"codec", r.codec},
                            {"records", r.records},
                            {"raw_bytes", r.raw_bytes},
                            {"file_bytes", r.file_bytes},
                            {"compression_ratio", r.ratio()},
                            {"write_mibps", r.write_mibps},
                            {"seq_read_mibps", r.seq_read_mibps},
                            {"rand_read_mibps", r.rand_read_mibps},
                            {"seq_read_fresh_sample_mibps", r.seq_fresh_mibps},
                            {"raw_read_mibps", r.raw_read_mibps},
                            {"raw_read_8mib_blocks_mibps", r.raw8_read_mibps},
                            {"raw_read_1mib_blocks_mibps", r.raw1_read_mibps},
                            {"seq_over_raw", r.seq_read_mibps / r.raw_read_mibps},
                            {"rand_over_raw", r.rand_read_mibps / r.raw_read_mibps},
                            {"seq_fresh_over_raw", r.seq_fresh_mibps / r.raw_read_mibps},
                            {"seq_read_no_checksum_mibps", r.seq_noverify_mibps},
                            {"seq_no_checksum_over_raw", r.seq_noverify_mibps / r.raw_read_mibps}});
  }
  std::ofstream(opt.json_out) << j.dump(2) << "\n";
  std::printf("wrote %s\n", opt.json_out.c_str());
  return 0;
}

}  // namespace
}  // namespace tilestage

int main(int argc, char** argv) {
  tilestage::Options opt;
  CLI::App app{"Tile store write/read throughput vs raw read(2) and memcpy"};
  app.add_option("--dir", opt.dir, "Scratch directory for the stores")->capture_default_str();
  app.add_option("--raw-mib", opt.raw_mib, "Raw sample MiB per dtype")->capture_default_str();
  app.add_option("--shape", opt.shape, "Sample shape C,H,W")->capture_default_str();
  app.add_option("--dtypes", opt.dtypes, "dtypes")->delimiter(',')->capture_default_str();
  app.add_option("--codecs", opt.codecs, "codecs")->delimiter(',')->capture_default_str();
  app.add_option("--shard-size", opt.shard_size, "Shard size (MiB/GiB)")->capture_default_str();
  app.add_option("--repeats", opt.repeats, "Timed passes (best reported)")->capture_default_str();
  app.add_option("--json", opt.json_out, "JSON output file")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return tilestage::Run(opt);
}
