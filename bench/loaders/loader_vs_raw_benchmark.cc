// Loader throughput against the physical limit: the raw read rate of the store's shard bytes.
//
//   loaders_loader_vs_raw_benchmark STORE [--threads T] [--batch B] [--repeats R] [--epochs E]
//                                   [--block BYTES] [--cold] [--json]
//
// In one process, alternating R times: (1) raw: every shard file read whole in pread blocks of
// --block bytes (default 8 MiB) by T threads (what any reader must at least do; no checksum, no
// decode); (2) one Loader (global shuffle, T threads, normalization on) run for E epochs
// (default 3), each epoch timed on its own. The first epoch of a fresh Loader also pays for
// mapping the shards into the process (page-table set-up on first touch) and for first-touching
// its batch buffers; later epochs are the steady state a training run sees. Reports the best of
// R for raw, for first epochs and for later epochs, and each loader figure / raw. Both run warm,
// so the comparison is page cache to page cache on this machine: the files are evicted, then
// read back by one untimed raw pass, so that every run starts from the same page cache whatever
// wrote the store (readahead fills it with large folios; record-sized writes leave 4-64 KiB ones,
// which cost a fresh mapping ~30 ms per GB of page-table set-up instead of ~5 on this VM);
// with --cold the shard files' pages are evicted (posix_fadvise DONTNEED) before each raw read
// and before each fresh Loader's first epoch instead, so both read from the device, as a dataset
// larger than the node's memory is read; only first epochs are measured then (the pages a Loader
// has mapped stay resident while it holds them: eviction cannot touch them). Beside both, the
// checksum floor: XXH3 of every record's stored bytes (as the Loader computes them) on T threads
// over freshly mapped shards, then again over the same mappings: the least any loader that
// checks every record must do, with nothing decoded, normalized or collated; (warm) the
// checksum + copy floor: XXH3 of each record, then a copy of its bytes into a ring of batch
// buffers as large as the Loader's: what a loader that checks every record and hands its values
// over in batches moves, before converting anything; the same with the records in a shuffled
// order (a Loader's steady state visits them shuffled: at tens of KB a record, each record's
// first pages then miss the CPU's prefetch and TLB); and the same over fresh mappings into a
// freshly mapped ring: what a fresh Loader's first epoch must do at least (page tables of the
// shards' mappings, first touches of its batch buffers; cold, the device's reads too).
// Measures, never asserts.
#include <fcntl.h>
#include <sys/mman.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/e2e/page_cache.h"
#include "loaders/loader.h"
#include "tiling/checksum.h"
#include "tiling/storage.h"
#include "tiling/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using tilestage::Batch;
using tilestage::Loader;
using tilestage::LoaderOptions;

void EvictOrExit(const std::vector<std::string>& files) {
  const tilestage::Status evicted = tilestage::bench::EvictFromPageCache(files);
  if (!evicted.ok()) {
    std::cerr << evicted.ToString() << "\n";
    std::exit(1);
  }
}

double RawRead(const std::vector<std::string>& files, int threads, uint64_t block_bytes,
               uint64_t* bytes) {
  const uint64_t kBlock = block_bytes;
  struct Piece {
    int fd;
    uint64_t offset, size;
  };
  std::vector<int> fds;
  std::vector<Piece> pieces;
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    fds.push_back(fd);
    const uint64_t size = static_cast<uint64_t>(::lseek(fd, 0, SEEK_END));
    for (uint64_t off = 0; off < size; off += kBlock)
      pieces.push_back({fd, off, std::min(kBlock, size - off)});
  }
  tbb::task_arena arena(threads);
  std::atomic<uint64_t> total{0};
  std::vector<std::vector<uint8_t>> buffers(threads, std::vector<uint8_t>(kBlock, 1));
  const auto t0 = Clock::now();
  arena.execute([&] {
    tbb::parallel_for(size_t{0}, pieces.size(), [&](size_t i) {
      const int slot = tbb::this_task_arena::current_thread_index();
      std::vector<uint8_t>& buf = buffers[static_cast<size_t>(slot)];
      const ssize_t n =
          ::pread(pieces[i].fd, buf.data(), pieces[i].size, static_cast<off_t>(pieces[i].offset));
      if (n > 0) total += static_cast<uint64_t>(n);
    });
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int fd : fds) ::close(fd);
  *bytes = total;
  return seconds;
}

// The least a loader that checks every record must do, on `threads` threads, each pass over a
// fresh mapping of every shard or over the mapping of the previous pass: seconds[0] XXH3 of every
// record, fresh mappings (page-table set-up on first touch included); seconds[1] the same over
// the same mappings; seconds[2] XXH3 of every record and a copy of its bytes into a ring of
// `batch`-record buffers as many as the Loader keeps (what any loader that checks every record
// and hands its values over in batches moves, with nothing converted), same mappings; seconds[3]
// that again over fresh mappings and a freshly mapped ring (what a first epoch must do);
// seconds[4] seconds[2]'s pass with the records visited in a shuffled order, as a loader that
// shuffles must visit them (each record's first bytes then miss the CPU's prefetch and the TLB
// entries of its predecessor). before_fresh runs before each pass over fresh mappings (the cold
// run evicts the shards there).
std::vector<double> HashRecords(const tilestage::Store& store, int threads, int64_t batch,
                                const std::function<void()>& before_fresh) {
  struct Record {
    const uint8_t* bytes;
    uint64_t size;
  };
  std::vector<std::pair<void*, size_t>> maps;
  std::vector<Record> records;
  const auto map_shards = [&] {
    for (auto [map, size] : maps) ::munmap(map, size);
    maps.clear();
    records.clear();
    before_fresh();  // after the unmapping: mapped pages cannot be evicted
    for (size_t s = 0; s < store.num_shards(); ++s) {
      const tilestage::ShardReader& shard = store.shard(s);
      // Mapped as the Loader maps it (huge-page advice included).
      auto map = tilestage::MapForReading(shard.path(), shard.file_size());
      if (!map.ok()) {
        std::cerr << map.status().ToString() << "\n";
        std::exit(1);
      }
      maps.emplace_back(const_cast<uint8_t*>(map->data()), map->size());
      for (uint64_t r = 0; r < shard.num_records(); ++r)
        records.push_back({map->data() + shard.entry(r).offset, shard.entry(r).stored_size});
    }
  };
  map_shards();
  uint64_t slot_bytes = 0;
  for (const Record& r : records) slot_bytes = std::max(slot_bytes, r.size);
  const uint64_t slots = static_cast<uint64_t>(batch) * (LoaderOptions{}.prefetch + 1);
  tbb::task_arena arena(threads);
  std::atomic<uint64_t> sink{0};
  std::vector<size_t> in_order(records.size()), shuffled(records.size());
  std::iota(in_order.begin(), in_order.end(), size_t{0});
  std::iota(shuffled.begin(), shuffled.end(), size_t{0});
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(1));
  // One pass over the records in `order`; with a ring, the i-th is also copied into slot
  // i % slots.
  const auto pass = [&](uint8_t* ring, const std::vector<size_t>& order = {}) {
    const std::vector<size_t>& visit = order.empty() ? in_order : order;
    const auto t0 = Clock::now();
    arena.execute([&] {
      tbb::parallel_for(size_t{0}, visit.size(), [&](size_t i) {
        const Record& r = records[visit[i]];
        sink ^= tilestage::Hash64({r.bytes, r.size});
        if (ring) std::memcpy(ring + (i % slots) * slot_bytes, r.bytes, r.size);
      });
    });
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  std::vector<double> seconds;
  seconds.push_back(pass(nullptr));
  seconds.push_back(pass(nullptr));
  double shuffled_s = 0;
  {
    std::vector<uint8_t> ring(slots * slot_bytes, 1);
    seconds.push_back(pass(ring.data()));
    shuffled_s = pass(ring.data(), shuffled);
  }
  map_shards();
  void* fresh_ring = ::mmap(nullptr, slots * slot_bytes, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh_ring == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  seconds.push_back(pass(static_cast<uint8_t*>(fresh_ring)));
  seconds.push_back(shuffled_s);
  ::munmap(fresh_ring, slots * slot_bytes);
  for (auto [map, size] : maps) ::munmap(map, size);
  return seconds;
}

// One Loader for `epochs` epochs; seconds[e] is epoch e's time (first Next to end of epoch).
std::vector<double> LoadEpochs(const std::string& store, int threads, int64_t batch, int epochs,
                               uint64_t* bytes_per_epoch, uint64_t* samples) {
  LoaderOptions o;
  o.batch_size = batch;
  o.threads = threads;
  o.seed = 1;
  auto loader = Loader::Open(tilestage::LocalStorage(), store, o);
  if (!loader.ok()) {
    std::cerr << loader.status().ToString() << "\n";
    std::exit(1);
  }
  Batch b;
  std::vector<double> seconds;
  for (int e = 0; e < epochs; ++e) {
    const auto t0 = Clock::now();
    *samples = 0;
    while (true) {
      auto more = (*loader)->Next(&b);
      if (!more.ok()) {
        std::cerr << more.status().ToString() << "\n";
        std::exit(1);
      }
      if (!*more) break;
      *samples += static_cast<uint64_t>(b.size);
    }
    seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  *bytes_per_epoch = (*loader)->stats().bytes_read / static_cast<uint64_t>(epochs);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0]
              << " STORE [--threads T] [--batch B] [--repeats R] [--epochs E] [--block BYTES]"
                 " [--cold] [--json]\n";
    return 2;
  }
  std::string store = argv[1];
  int threads = tbb::this_task_arena::max_concurrency(), repeats = 3, epochs = 3;
  int64_t batch = 64;
  uint64_t block_bytes = 8 << 20;
  bool json = false, cold = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::stoll(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::stoi(argv[++i]);
    else if (a == "--epochs" && i + 1 < argc) epochs = std::max(2, std::stoi(argv[++i]));
    else if (a == "--block" && i + 1 < argc) block_bytes = std::stoull(argv[++i]);
    else if (a == "--cold")
      cold = true;
    else if (a == "--json") json = true;
  }
  if (cold) epochs = 1;  // first epochs only: a Loader's mapped pages cannot be evicted
  auto opened = tilestage::Store::Open(tilestage::LocalStorage(), store);
  if (!opened.ok()) {
    std::cerr << opened.status().ToString() << "\n";
    return 1;
  }
  std::vector<std::string> files;
  for (size_t s = 0; s < (*opened)->num_shards(); ++s) files.push_back((*opened)->shard(s).path());
  const std::string codec = (*opened)->manifest().codec.ToString();

  uint64_t raw_bytes = 0, load_bytes = 0, samples = 0;
  if (!cold) {
    EvictOrExit(files);
    RawRead(files, threads, block_bytes, &raw_bytes);
  }
  double raw_best = 1e30, first_best = 1e30, steady_best = 1e30;
  double hash_first_best = 1e30, hash_steady_best = 1e30, hash_copy_best = 1e30;
  double hash_copy_fresh_best = 1e30, hash_copy_shuffled_best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    if (cold) EvictOrExit(files);
    raw_best = std::min(raw_best, RawRead(files, threads, block_bytes, &raw_bytes));
    const auto hashed = HashRecords(**opened, threads, batch, [&] {
      if (cold) EvictOrExit(files);
    });
    hash_first_best = std::min(hash_first_best, hashed[0]);
    hash_steady_best = std::min(hash_steady_best, hashed[1]);
    hash_copy_best = std::min(hash_copy_best, hashed[2]);
    hash_copy_fresh_best = std::min(hash_copy_fresh_best, hashed[3]);
    hash_copy_shuffled_best = std::min(hash_copy_shuffled_best, hashed[4]);
    if (cold) EvictOrExit(files);
    const auto seconds = LoadEpochs(store, threads, batch, epochs, &load_bytes, &samples);
    first_best = std::min(first_best, seconds[0]);
    for (size_t e = 1; e < seconds.size(); ++e) steady_best = std::min(steady_best, seconds[e]);
  }
  const double raw_gbs = raw_bytes / raw_best / 1e9;
  const double first_gbs = load_bytes / first_best / 1e9;
  const double steady_gbs = load_bytes / steady_best / 1e9;
  const double hash_first_gbs = load_bytes / hash_first_best / 1e9;
  const double hash_steady_gbs = load_bytes / hash_steady_best / 1e9;
  const double hash_copy_gbs = load_bytes / hash_copy_best / 1e9;
  const double hash_copy_fresh_gbs = load_bytes / hash_copy_fresh_best / 1e9;
  const double hash_copy_shuffled_gbs = load_bytes / hash_copy_shuffled_best / 1e9;
  nlohmann::json j = {{"store", store},
                      {"codec", codec},
                      {"page_cache", cold ? "cold" : "warm"},
                      {"threads", threads},
                      {"batch", batch},
                      {"repeats", repeats},
                      {"epochs", epochs},
                      {"raw_block_bytes", block_bytes},
                      {"raw_bytes", raw_bytes},
                      {"raw_s", raw_best},
                      {"raw_gb_per_s", raw_gbs},
                      {"loader_stored_bytes", load_bytes},
                      {"loader_samples", samples},
                      {"loader_s", first_best},
                      {"loader_gb_per_s", first_gbs},
                      {"loader_samples_per_s", samples / first_best},
                      {"loader_over_raw", first_gbs / raw_gbs},
                      {"checksum_floor_gb_per_s", hash_first_gbs},
                      {"checksum_floor_over_raw", hash_first_gbs / raw_gbs},
                      {"checksum_copy_fresh_floor_gb_per_s", hash_copy_fresh_gbs},
                      {"checksum_copy_fresh_floor_over_raw", hash_copy_fresh_gbs / raw_gbs},
                      {"loader_over_checksum_copy_fresh_floor", first_gbs / hash_copy_fresh_gbs},
                      {"loader_over_checksum_floor", first_gbs / hash_first_gbs}};
  if (!cold) {
    j["loader_steady_s"] = steady_best;
    j["loader_steady_gb_per_s"] = steady_gbs;
    j["loader_steady_samples_per_s"] = samples / steady_best;
    j["loader_steady_over_raw"] = steady_gbs / raw_gbs;
    j["checksum_floor_steady_gb_per_s"] = hash_steady_gbs;
    j["loader_steady_over_checksum_floor"] = steady_gbs / hash_steady_gbs;
    j["checksum_copy_floor_gb_per_s"] = hash_copy_gbs;
    j["checksum_copy_floor_over_raw"] = hash_copy_gbs / raw_gbs;
    j["loader_steady_over_checksum_copy_floor"] = steady_gbs / hash_copy_gbs;
    j["checksum_copy_shuffled_floor_gb_per_s"] = hash_copy_shuffled_gbs;
    j["checksum_copy_shuffled_floor_over_raw"] = hash_copy_shuffled_gbs / raw_gbs;
    j["loader_steady_over_checksum_copy_shuffled_floor"] = steady_gbs / hash_copy_shuffled_gbs;
  }
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf(
      "store %s (codec %s), %d threads, batch %lld, best of %d, %d epochs per loader, "
      "page cache %s\n",
      store.c_str(), codec.c_str(), threads, static_cast<long long>(batch), repeats, epochs,
      cold ? "cold" : "warm");
  std::printf("  raw pread of shard files (%llu-byte blocks): %8.3f GB/s (%llu bytes in %.3f s)\n",
              static_cast<unsigned long long>(block_bytes), raw_gbs,
              static_cast<unsigned long long>(raw_bytes), raw_best);
  std::printf("  checksum floor, fresh mappings (XXH3 only):  %8.3f GB/s stored, of raw %.2f\n",
              hash_first_gbs, hash_first_gbs / raw_gbs);
  if (!cold)
    std::printf("  checksum floor, mapped (XXH3 only):          %8.3f GB/s stored, of raw %.2f\n",
                hash_steady_gbs, hash_steady_gbs / raw_gbs);
  if (!cold)
    std::printf("  checksum + copy into batch buffers (mapped): %8.3f GB/s stored, of raw %.2f\n",
                hash_copy_gbs, hash_copy_gbs / raw_gbs);
  if (!cold)
    std::printf("  checksum + copy, shuffled order (mapped):     %8.3f GB/s stored, of raw %.2f\n",
                hash_copy_shuffled_gbs, hash_copy_shuffled_gbs / raw_gbs);
  std::printf("  checksum + copy, fresh mappings and ring:    %8.3f GB/s stored, of raw %.2f\n",
              hash_copy_fresh_gbs, hash_copy_fresh_gbs / raw_gbs);
  std::printf(
      "  loader, first epoch (maps the shards):      %8.3f GB/s stored, %.0f samples/s"
      "  loader / raw = %.2f, / checksum floor = %.2f, / checksum + copy (fresh) = %.2f\n",
      first_gbs, samples / first_best, first_gbs / raw_gbs, first_gbs / hash_first_gbs,
      first_gbs / hash_copy_fresh_gbs);
  if (!cold)
    std::printf(
        "  loader, later epochs (steady state):        %8.3f GB/s stored, %.0f samples/s"
        "  loader / raw = %.2f, / checksum floor = %.2f, / checksum + copy = %.2f, / shuffled "
        "= %.2f\n",
        steady_gbs, samples / steady_best, steady_gbs / raw_gbs, steady_gbs / hash_steady_gbs,
        steady_gbs / hash_copy_gbs, steady_gbs / hash_copy_shuffled_gbs);
  std::printf("  (verify+decode+normalize+collate; goals: first epoch >= 0.8 of raw, later >= 0.9)\n");
  return 0;
}
