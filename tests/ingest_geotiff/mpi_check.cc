// Run under `mpirun -np 2`: every process first ingests the inputs alone with one thread (before
// MPI_Init, so the driver sees a single rank and one lane), then all ranks ingest them together
// with two threads each; rank 0 checks that both stores hold the same records in the same order
// with bit-identical statistics, and that the 2-rank store has one manifest listing the shards of
// both lanes of both ranks. Exit code 0 on success.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "ingest/driver.h"
#include "ingest/geotiff_source.h"
#include "tests/common/test_util.h"
#include "tiling/store.h"

namespace ts = tilestage;
namespace ti = tilestage::ingest;

namespace {

int failures = 0;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      std::fprintf(stderr, "FAILED %s: ", #cond); \
      std::fprintf(stderr, __VA_ARGS__);          \
      std::fprintf(stderr, "\n");                 \
      ++failures;                                 \
    }                                             \
  } while (0)

ts::Result<ti::IngestSummary> IngestInto(const std::string& out, int threads) {
  ti::GeoTiffOptions g;
  for (const char* f : {"geotiff/RGB.byte.tif", "geotiff/shade.tif", "geotiff/world.byte.tif",
                        "geotiff/goes.tif", "geotiff/RGBA.uint16.tif"})
    g.files.push_back(ts::testing::SharedData(f));
  g.bands = {1};
  TS_ASSIGN_OR_RETURN(auto source, ti::OpenGeoTiffSource(g));
  ti::DriverOptions o;
  o.out = out;
  o.tile = ti::TileSpec{false, 128, 128, 128, 128, ti::EdgePolicy::kShift};
  o.min_valid = 0.2;
  o.x_dtype = ts::DType::kF32;  // mixes u8 and u16 scenes into one schema
  o.codec = *ts::ParseCodec("zstd");
  o.shard_target_bytes = 1 << 20;
  o.threads = threads;
  return ti::RunIngest(*source, o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
    return 2;
  }
  const std::string work = argv[1];
  std::filesystem::create_directories(work);
  const std::string one = work + "/one-" + std::to_string(::getpid());
  auto single = IngestInto(one, 1);  // MPI not initialized yet: one rank, one lane
  CHECK(single.ok(), "%s", single.status().ToString().c_str());

  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::string two = work + "/two";
  if (rank == 0) std::filesystem::remove_all(two);
  MPI_Barrier(MPI_COMM_WORLD);
  auto multi = IngestInto(two, 2);  // two ranks of two lanes each
  CHECK(multi.ok(), "%s", multi.status().ToString().c_str());
  CHECK(size == 2, "run me with mpirun -np 2 (size %d)", size);
  if (rank == 0 && single.ok() && multi.ok()) {
    CHECK(multi->ranks == 2, "ranks %d", multi->ranks);
    auto a = ts::Store::Open(ts::LocalStorage(), one);
    auto b = ts::Store::Open(ts::LocalStorage(), two);
    CHECK(a.ok() && b.ok(), "open");
    if (a.ok() && b.ok()) {
      const auto& ma = (*a)->manifest();
      const auto& mb = (*b)->manifest();
      CHECK((*a)->size() == (*b)->size(), "records %llu vs %llu", (unsigned long long)(*a)->size(),
            (unsigned long long)(*b)->size());
      CHECK((*b)->size() > 50, "too few records to mean anything: %llu",
            (unsigned long long)(*b)->size());
      std::set<std::string> writers;  // rank and lane of each shard
      for (const auto& s : mb.shards) writers.insert(s.file.substr(0, s.file.find("shard-")));
      CHECK(writers ==
                std::set<std::string>({"r0000-l000-", "r0000-l001-", "r0001-l000-", "r0001-l001-"}),
            "the 2-rank store lists shards of both lanes of both ranks");
      for (uint64_t i = 0; i < std::min((*a)->size(), (*b)->size()); ++i) {
        auto sa = (*a)->Read(i);
        auto sb = (*b)->Read(i);
        CHECK(sa.ok() && sb.ok(), "read %llu", (unsigned long long)i);
        if (!sa.ok() || !sb.ok()) break;
        CHECK(sa->fields[0].array.data == sb->fields[0].array.data, "record %llu pixels",
              (unsigned long long)i);
        CHECK(sa->meta == sb->meta, "record %llu meta %s vs %s", (unsigned long long)i,
              sa->meta.dump().c_str(), sb->meta.dump().c_str());
      }
      const auto& xa = ma.FindField("x")->stats;
      const auto& xb = mb.FindField("x")->stats;
      CHECK(xa.size() == 1 && xb.size() == 1, "one channel");
      if (xa.size() == 1 && xb.size() == 1) {
        CHECK(xa[0].count == xb[0].count && xa[0].total == xb[0].total, "counts");
        CHECK(xa[0].mean == xb[0].mean, "mean %.17g vs %.17g", xa[0].mean, xb[0].mean);
        CHECK(xa[0].m2 == xb[0].m2, "m2 %.17g vs %.17g", xa[0].m2, xb[0].m2);
        CHECK(xa[0].min == xb[0].min && xa[0].max == xb[0].max, "min/max");
      }
      CHECK(ma.provenance.at("sources") == mb.provenance.at("sources"), "source hashes");
      CHECK(ma.attrs.at("scenes") == mb.attrs.at("scenes"), "scenes");
    }
  }
  int all_failures = 0;
  MPI_Reduce(&failures, &all_failures, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
  std::filesystem::remove_all(one);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    std::filesystem::remove_all(two);
    std::printf("%s\n", all_failures ? "MPI CHECK FAILED" : "1 rank and 2 ranks: same store");
  }
  MPI_Finalize();
  return all_failures ? 1 : 0;
}
