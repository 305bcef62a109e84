// `tilestage ingest netcdf` end to end: stores read back and compared with netCDF-C's own reads
// (NcTruth), lead pairs across file boundaries, statistics against a direct computation over all
// files, tiles with bounds, bad inputs that leave no manifest, and 1 rank vs mpirun -np 2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "tests/common/test_util.h"
#include "tests/ingest_netcdf/nc_fixture.h"
#include "tests/ingest_netcdf/netcdf_truth.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using testing::FixtureSpec;
using testing::NcTruth;
using testing::TempDir;

struct Series {
  std::vector<std::string> paths;  // in time order
  std::vector<FixtureSpec> specs;
  std::string files_arg;  // given to the CLI in scrambled order
};

// Three files of three 6-hourly steps each, formats mixed, given out of order.
Series WriteSeries(const TempDir& tmp) {
  Series s;
  const int formats[] = {0, NC_NETCDF4, NC_64BIT_DATA};
  for (int f = 0; f < 3; ++f) {
    FixtureSpec spec;
    spec.format = formats[f];
    spec.t_first = 3 * f;
    spec.ny = 6;
    spec.nx = 7;
    s.specs.push_back(spec);
    s.paths.push_back(tmp.Sub("year" + std::to_string(f) + ".nc"));
    EXPECT_TRUE(testing::WriteFixture(s.paths.back(), spec));
  }
  s.files_arg = s.paths[2] + " " + s.paths[0] + " " + s.paths[1];
  return s;
}

testing::CommandResult Ingest(const std::string& args) {
  return testing::RunCommand(testing::CliPath() + " ingest netcdf " + args);
}

// The [C,H,W] truth of global step t for channels t2m and t_850.
std::vector<double> TruthStep(const Series& s, int64_t t) {
  const std::string& file = s.paths[t / 3];
  const FixtureSpec& spec = s.specs[t / 3];
  std::vector<double> out;
  for (const auto& [var, level] : std::vector<std::pair<std::string, int>>{{"t2m", -1}, {"t", 0}}) {
    NcTruth truth(file, var);
    for (size_t y = 0; y < static_cast<size_t>(spec.ny); ++y) {
      for (size_t x = 0; x < static_cast<size_t>(spec.nx); ++x) {
        std::map<std::string, size_t> idx = {{"time", t % 3}, {"lat", y}, {"lon", x}};
        if (level >= 0) idx["level"] = level;
        out.push_back(truth.At(idx));
      }
    }
  }
  return out;
}

void ExpectArrayEqualsTruth(const Array& a, const std::vector<double>& truth) {
  ASSERT_EQ(a.dtype, DType::kF32);
  ASSERT_EQ(static_cast<size_t>(a.NumElements()), truth.size());
  for (size_t i = 0; i < truth.size(); ++i) {
    const float got = a.As<float>()[i];
    if (std::isnan(truth[i])) {
      EXPECT_TRUE(std::isnan(got)) << i;
    } else {
      EXPECT_EQ(got, static_cast<float>(truth[i])) << i;
    }
  }
}

TEST(NetcdfCli, FullGridStoreMatchesNetcdfReadsAndPooledStatistics) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run =
      Ingest("--out " + out + " --vars t2m,t --levels 850 --lat-weights --json " + s.files_arg);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("\"tiles_written\": 9"), std::string::npos) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_EQ((*store)->size(), 9u);
  const Manifest& m = (*store)->manifest();
  EXPECT_EQ(m.kind, "netcdf");
  // The NetCDF default codec shuffles bytes before zstd; the values below still equal netCDF's.
  EXPECT_EQ(m.codec.codec, Codec::kZstd);
  EXPECT_TRUE(m.codec.shuffle);
  const FieldSchema* x = m.FindField("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->channel_names, (std::vector<std::string>{"t2m", "t_850"}));
  const auto& attrs = m.attrs.at("netcdf");
  EXPECT_EQ(attrs.at("latitude").at("values").size(), 6u);
  EXPECT_EQ(attrs.at("longitude").at("values")[1].get<double>(), 11.5);
  EXPECT_EQ(attrs.at("time").at("calendar"), "standard");
  EXPECT_EQ(attrs.at("latitude_weights").size(), 6u);
  EXPECT_EQ(attrs.at("item_times")[4], "2000-01-02T00:00:00");

  // Direct statistics over every step of every file, from netCDF-C's reads.
  std::vector<double> sum(2, 0.0), sum2(2, 0.0), lo(2, INFINITY), hi(2, -INFINITY);
  std::vector<uint64_t> count(2, 0);
  const size_t plane = 6 * 7;
  for (int64_t t = 0; t < 9; ++t) {
    auto sample = (*store)->Read(t);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    const std::vector<double> truth = TruthStep(s, t);
    ExpectArrayEqualsTruth(*sample->Find("x"), truth);
    char iso[32];
    std::snprintf(iso, sizeof(iso), "2000-01-%02dT%02d:00:00", static_cast<int>(1 + t / 4),
                  static_cast<int>(t % 4 * 6));
    EXPECT_EQ(sample->meta.at("time"), iso);
    EXPECT_EQ(sample->meta.at("file"), s.paths[t / 3]);
    for (size_t c = 0; c < 2; ++c) {
      for (size_t i = 0; i < plane; ++i) {
        const double v = static_cast<float>(truth[c * plane + i]);
        if (std::isnan(v)) continue;
        sum[c] += v;
        sum2[c] += v * v;
        lo[c] = std::min(lo[c], v);
        hi[c] = std::max(hi[c], v);
        ++count[c];
      }
    }
  }
  ASSERT_EQ(x->stats.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    const double mean = sum[c] / count[c];
    const double var = sum2[c] / count[c] - mean * mean;
    EXPECT_EQ(x->stats[c].count, count[c]);
    EXPECT_EQ(x->stats[c].total, 9 * plane);
    EXPECT_NEAR(x->stats[c].mean, mean, 1e-9 * std::fabs(mean));
    EXPECT_NEAR(x->stats[c].std(), std::sqrt(var), 1e-6);
    EXPECT_EQ(x->stats[c].min, lo[c]);
    EXPECT_EQ(x->stats[c].max, hi[c]);
  }
  auto verify = testing::RunCommand(testing::CliPath() + " verify " + out);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST(NetcdfCli, LeadPairsLineUpAcrossFileBoundaries) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m,t --levels 850 --lead 2 " + s.files_arg);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_EQ((*store)->size(), 7u);  // steps 0..6 have a target 2 steps later
  for (int64_t k = 0; k < 7; ++k) {
    auto sample = (*store)->Read(k);
    ASSERT_TRUE(sample.ok());
    ExpectArrayEqualsTruth(*sample->Find("x"), TruthStep(s, k));
    ASSERT_NE(sample->Find("y"), nullptr);
    ExpectArrayEqualsTruth(*sample->Find("y"), TruthStep(s, k + 2));
    EXPECT_EQ(sample->meta.at("step_y"), k + 2);
    EXPECT_EQ(sample->meta.at("file_y"), s.paths[(k + 2) / 3]);
  }
  auto sample = (*store)->Read(2);  // x: last step of year0, y: second step of year1
  ASSERT_TRUE(sample.ok());
  EXPECT_EQ(sample->meta.at("time"), "2000-01-01T12:00:00");
  EXPECT_EQ(sample->meta.at("time_y"), "2000-01-02T00:00:00");
  EXPECT_EQ((*store)->manifest().attrs.at("netcdf").at("lead_steps"), 2);
}

TEST(NetcdfCli, TimeStrideKeepsEveryKthStep) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m --time-stride 4 " + s.files_arg);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok());
  ASSERT_EQ((*store)->size(), 3u);  // steps 0, 4, 8
  auto sample = (*store)->Read(2);
  ASSERT_TRUE(sample.ok());
  EXPECT_EQ(sample->meta.at("step"), 8);
}

TEST(NetcdfCli, SpatialTilesCarryLatLonBoundsAndGridIndices) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run =
      Ingest("--out " + out + " --vars t2m,t --levels 850 --tile 4,4 --edge shift " + s.paths[0]);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok());
  ASSERT_EQ((*store)->size(), 3u * 4u);  // 6x7 grid: rows {0,2} x cols {0,3}
  const std::vector<double> truth = TruthStep(s, 1);
  for (uint64_t i = 4; i < 8; ++i) {  // the tiles of step 1
    auto sample = (*store)->Read(i);
    ASSERT_TRUE(sample.ok());
    const auto& w = sample->meta.at("window");
    const int64_t row = w[0], col = w[1];
    EXPECT_EQ(sample->meta.at("grid_index")[0], row);
    // lat = 50 - y, lon = 10 + 1.5 x in the fixture.
    EXPECT_EQ(sample->meta.at("lat_bounds")[0].get<double>(), 50.0 - (row + 3));
    EXPECT_EQ(sample->meta.at("lat_bounds")[1].get<double>(), 50.0 - row);
    EXPECT_EQ(sample->meta.at("lon_bounds")[0].get<double>(), 10.0 + 1.5 * col);
    const Array& a = *sample->Find("x");
    for (int64_t c = 0; c < 2; ++c) {
      for (int64_t y = 0; y < 4; ++y) {
        for (int64_t x = 0; x < 4; ++x) {
          const double t = truth[(c * 6 + row + y) * 7 + col + x];
          const float got = a.As<float>()[(c * 4 + y) * 4 + x];
          if (std::isnan(t)) {
            EXPECT_TRUE(std::isnan(got));
          } else {
            EXPECT_EQ(got, static_cast<float>(t));
          }
        }
      }
    }
  }
}

bool HasManifest(const std::string& dir) {
  return std::filesystem::exists(dir + "/" + kManifestName);
}

TEST(NetcdfCli, LeadLongerThanTheSeriesIsAnErrorAndWritesNoManifest) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m --lead 9 " + s.files_arg);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("--lead 9 is longer than the series: 9 time step(s)"),
            std::string::npos)
      << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, MissingVariableListsTheVariablesAndWritesNoManifest) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m,msl " + s.files_arg);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("no variable \"msl\" (variables: time, lon, lat, level, t2m, t)"),
            std::string::npos)
      << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, LevelThatDoesNotExistIsAnError) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t --levels 850,925 " + s.files_arg);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("has no level 925"), std::string::npos) << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, TruncatedFileInTheSeriesNamesItAndWritesNoManifest) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  testing::TruncateFile(s.paths[0], testing::FileSize(s.paths[0]) - 100);  // classic
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m,t " + s.files_arg);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find(s.paths[0] + ": truncated"), std::string::npos) << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, DamagedHeaderNamesTheFile) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  testing::FlipByte(s.paths[1], 1);  // netCDF-4: the HDF5 signature
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m " + s.files_arg);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find(s.paths[1]), std::string::npos) << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, UnknownCalendarNamesFileAndCalendarAndWritesNoManifest) {
  TempDir tmp;
  FixtureSpec spec;
  spec.calendar = "martian";
  const std::string path = tmp.Sub("mars.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m " + path);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find(path + ": time coordinate time: unknown calendar \"martian\""),
            std::string::npos)
      << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, FilesOnDifferentGridsAreAnError) {
  TempDir tmp;
  FixtureSpec spec;
  const std::string a = tmp.Sub("coarse.nc"), b = tmp.Sub("fine.nc");
  ASSERT_TRUE(testing::WriteFixture(a, spec));
  spec.t_first = 3;
  spec.nx = 9;
  ASSERT_TRUE(testing::WriteFixture(b, spec));
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m " + a + " " + b);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find(b + ": grid (lat=4, lon=9) differs from " + a), std::string::npos)
      << run.output;
  EXPECT_FALSE(HasManifest(out));
}

TEST(NetcdfCli, SharedEra5FileIngestsWithTimeStamp) {
  TempDir tmp;
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m,u10,sp --tile 64,64 --edge pad " +
                    testing::SharedData("netcdf/era5_1995-07-14T12.nc"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->size(), 2u * 4u);  // 105x237 padded into 64x64 tiles
  auto sample = (*store)->Read(0);
  ASSERT_TRUE(sample.ok());
  EXPECT_EQ(sample->meta.at("time"), "1995-07-14T12:00:00");
}

// The same store from one process and from `mpirun -np 2` (ranks split the time steps): same
// records in the same order, bit-identical statistics, one manifest listing both ranks' shards.
TEST(NetcdfCli, TwoRanksWriteTheSameStoreAsOne) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string one = tmp.Sub("one"), two = tmp.Sub("two");
  const std::string args = " --vars t2m,t --lead 1 --tile 4,4 --threads 1 " + s.files_arg;
  auto run1 = Ingest("--out " + one + args);
  ASSERT_EQ(run1.exit_code, 0) << run1.output;
  auto run2 = testing::RunCommand(std::string(TILESTAGE_MPIRUN_CMD) + " -np 2 " +
                                  testing::CliPath() + " ingest netcdf --out " + two + args);
  ASSERT_EQ(run2.exit_code, 0) << run2.output;
  auto a = Store::Open(LocalStorage(), one);
  auto b = Store::Open(LocalStorage(), two);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->size(), (*b)->size());
  ASSERT_EQ((*a)->size(), 8u * 4u);
  bool r0 = false, r1 = false;
  for (const auto& shard : (*b)->manifest().shards) {
    r0 |= shard.file.rfind("r0000-", 0) == 0;
    r1 |= shard.file.rfind("r0001-", 0) == 0;
  }
  EXPECT_TRUE(r0 && r1) << "the 2-rank manifest lists both ranks' shards";
  for (uint64_t i = 0; i < (*a)->size(); ++i) {
    auto sa = (*a)->Read(i);
    auto sb = (*b)->Read(i);
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_EQ(sa->Find("x")->data, sb->Find("x")->data) << i;
    EXPECT_EQ(sa->Find("y")->data, sb->Find("y")->data) << i;
    EXPECT_EQ(sa->meta, sb->meta) << i;
  }
  for (const char* field : {"x", "y"}) {
    const auto& sa = (*a)->manifest().FindField(field)->stats;
    const auto& sb = (*b)->manifest().FindField(field)->stats;
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t c = 0; c < sa.size(); ++c) {
      EXPECT_EQ(sa[c].count, sb[c].count);
      EXPECT_EQ(sa[c].mean, sb[c].mean);
      EXPECT_EQ(sa[c].m2, sb[c].m2);
    }
  }
  EXPECT_EQ((*a)->manifest().attrs.at("netcdf"), (*b)->manifest().attrs.at("netcdf"));
}

// The default (direct pread) path and --library-reads (every read through nc_get_vara) store the
// same records, bit for bit, with the same statistics; the manifest says which path read each
// variable of each file. Two threads, so direct reads of different steps run at once.
TEST(NetcdfCli, LibraryReadsStoreTheSameBytesAsDirectReads) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  const std::string direct = tmp.Sub("direct"), library = tmp.Sub("library");
  const std::string args =
      " --vars t2m,t --levels 850 --lead 1 --codec none --threads 2 " + s.files_arg;
  auto run1 = Ingest("--out " + direct + args);
  ASSERT_EQ(run1.exit_code, 0) << run1.output;
  auto run2 = Ingest("--library-reads --out " + library + args);
  ASSERT_EQ(run2.exit_code, 0) << run2.output;
  auto a = Store::Open(LocalStorage(), direct);
  auto b = Store::Open(LocalStorage(), library);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->size(), 8u);
  ASSERT_EQ((*b)->size(), 8u);
  for (uint64_t i = 0; i < (*a)->size(); ++i) {
    auto sa = (*a)->Read(i);
    auto sb = (*b)->Read(i);
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_TRUE(sa->Find("x")->data == sb->Find("x")->data) << i;
    EXPECT_TRUE(sa->Find("y")->data == sb->Find("y")->data) << i;
    EXPECT_EQ(sa->meta, sb->meta) << i;
    ExpectArrayEqualsTruth(*sa->Find("x"), TruthStep(s, static_cast<int64_t>(i)));
    ExpectArrayEqualsTruth(*sa->Find("y"), TruthStep(s, static_cast<int64_t>(i) + 1));
  }
  for (const char* field : {"x", "y"}) {
    const auto& sa = (*a)->manifest().FindField(field)->stats;
    const auto& sb = (*b)->manifest().FindField(field)->stats;
    ASSERT_EQ(sa.size(), 2u);
    ASSERT_EQ(sb.size(), 2u);
    for (size_t c = 0; c < sa.size(); ++c) EXPECT_EQ(sa[c].ToJson(), sb[c].ToJson()) << field;
  }
  const auto& files_a = (*a)->manifest().attrs.at("netcdf").at("files");
  const auto& files_b = (*b)->manifest().attrs.at("netcdf").at("files");
  ASSERT_EQ(files_a.size(), 3u);
  for (size_t f = 0; f < 3; ++f) {
    for (const char* var : {"t2m", "t"}) {
      EXPECT_EQ(files_a[f].at("reads").at(var), "direct") << files_a[f].at("path");
      EXPECT_EQ(files_b[f].at("reads").at(var), "netCDF library (direct reads off)");
    }
  }
}

}  // namespace
}  // namespace tilestage
