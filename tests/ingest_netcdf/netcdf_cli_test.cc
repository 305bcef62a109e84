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

// Found by ingest/fuzz/netcdf_header_fuzzer: a 837-byte netCDF-3 header whose lengths run past
// the file makes netCDF-C 4.9.0's nc_open read out of bounds (Debian's ncdump -h segfaults on it).
TEST(NetcdfCli, HeaderThatCrashesNetcdfCIsRefusedAsDamagedNamingTheFile) {
  TempDir tmp;
  const std::string input =
      testing::SourceDir() + "/ingest/fuzz/netcdf_corpus/crash_netcdfc_ncx_pad_getn_text.nc";
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--out " + out + " --vars t2m " + input);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("DataLoss: " + input + ": damaged netCDF-3 header"),
            std::string::npos)
      << run.output;
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

// Small grids the fixture generator does not write: a Lambert conformal (projected) grid and a
// curvilinear one, written here with netCDF-C. Values: v = 100 t + 10 y + x.
struct GridFile {
  bool projected = true;  // false: curvilinear (dims nj, ni without coordinate variables)
  std::vector<double> hours = {0, 6};
  bool coordinates_attr = true;
  double lat_origin = 30.0;  // latitude of pixel (0, 0)
};

void Check(int rc, const char* what) { ASSERT_EQ(rc, NC_NOERR) << what << ": " << nc_strerror(rc); }

void PutText(int ncid, int varid, const char* name, const std::string& value) {
  Check(nc_put_att_text(ncid, varid, name, value.size(), value.c_str()), name);
}

const char* kWkt = "PROJCS[\"unnamed\",GEOGCS[\"WGS 84\"],PROJECTION[\"Lambert_Conformal_Conic\"]]";

void WriteGridFile(const std::string& path, const GridFile& g) {
  const size_t nt = g.hours.size(), ny = 5, nx = 6;
  int ncid = -1, dt, dy, dx, vt, vlat, vlon, var;
  Check(nc_create(path.c_str(), NC_CLOBBER | NC_NETCDF4, &ncid), "create");
  Check(nc_def_dim(ncid, "time", nt, &dt), "time");
  Check(nc_def_dim(ncid, g.projected ? "y" : "nj", ny, &dy), "y");
  Check(nc_def_dim(ncid, g.projected ? "x" : "ni", nx, &dx), "x");
  Check(nc_def_var(ncid, "time", NC_DOUBLE, 1, &dt, &vt), "time var");
  PutText(ncid, vt, "units", "hours since 2000-01-01 00:00:00");
  PutText(ncid, vt, "standard_name", "time");
  int yx[2] = {dy, dx};
  if (g.projected) {
    int vy, vx;
    Check(nc_def_var(ncid, "y", NC_DOUBLE, 1, &dy, &vy), "y var");
    Check(nc_def_var(ncid, "x", NC_DOUBLE, 1, &dx, &vx), "x var");
    for (auto [v, sn, axis] : {std::tuple{vy, "projection_y_coordinate", "Y"},
                               std::tuple{vx, "projection_x_coordinate", "X"}}) {
      PutText(ncid, v, "standard_name", sn);
      PutText(ncid, v, "axis", axis);
      PutText(ncid, v, "units", "km");
    }
    int crs;
    Check(nc_def_var(ncid, "lambert_conformal_conic", NC_INT, 0, nullptr, &crs), "crs");
    PutText(ncid, crs, "grid_mapping_name", "lambert_conformal_conic");
    const double parallels[2] = {25.0, 35.0};
    Check(nc_put_att_double(ncid, crs, "standard_parallel", NC_DOUBLE, 2, parallels), "sp");
    const double meridian = 265.0;
    Check(nc_put_att_double(ncid, crs, "longitude_of_central_meridian", NC_DOUBLE, 1, &meridian),
          "lon0");
    PutText(ncid, crs, "crs_wkt", kWkt);
  }
  Check(nc_def_var(ncid, "lat", NC_DOUBLE, 2, yx, &vlat), "lat");
  PutText(ncid, vlat, "standard_name", "latitude");
  PutText(ncid, vlat, "units", "degrees_north");
  Check(nc_def_var(ncid, "lon", NC_DOUBLE, 2, yx, &vlon), "lon");
  PutText(ncid, vlon, "standard_name", "longitude");
  PutText(ncid, vlon, "units", "degrees_east");
  int tyx[3] = {dt, dy, dx};
  Check(nc_def_var(ncid, "tas", NC_FLOAT, 3, tyx, &var), "tas");
  PutText(ncid, var, "units", "K");
  if (g.coordinates_attr) PutText(ncid, var, "coordinates", "lat lon");
  if (g.projected) PutText(ncid, var, "grid_mapping", "lambert_conformal_conic");
  Check(nc_enddef(ncid), "enddef");
  Check(nc_put_var_double(ncid, vt, g.hours.data()), "time values");
  if (g.projected) {
    const double ys[5] = {-200, -100, 0, 100, 200}, xs[6] = {-250, -150, -50, 50, 150, 250};
    int vy, vx;
    nc_inq_varid(ncid, "y", &vy);
    nc_inq_varid(ncid, "x", &vx);
    Check(nc_put_var_double(ncid, vy, ys), "y values");
    Check(nc_put_var_double(ncid, vx, xs), "x values");
  }
  std::vector<double> lat(ny * nx), lon(ny * nx), values(nt * ny * nx);
  for (size_t y = 0; y < ny; ++y)
    for (size_t x = 0; x < nx; ++x) {
      // A rotated, sheared grid: latitude varies along both dimensions.
      lat[y * nx + x] = g.lat_origin + 0.9 * y - 0.2 * x;
      lon[y * nx + x] = -100.0 + 1.1 * x + 0.3 * y;
    }
  for (size_t t = 0; t < nt; ++t)
    for (size_t i = 0; i < ny * nx; ++i)
      values[t * ny * nx + i] = 100.0 * t + 10.0 * (i / nx) + i % nx;
  Check(nc_put_var_double(ncid, vlat, lat.data()), "lat values");
  Check(nc_put_var_double(ncid, vlon, lon.data()), "lon values");
  Check(nc_put_var_double(ncid, var, values.data()), "tas values");
  Check(nc_close(ncid), "close");
}

nlohmann::json NetcdfAttrs(const Store& store) { return store.manifest().attrs.at("netcdf"); }

TEST(NetcdfCli, ProjectedGridKeepsItsGridMappingAndNamesItsAxesYAndX) {
  TempDir tmp;
  const std::string file = tmp.Sub("lcc.nc");
  WriteGridFile(file, {});
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--no-progress --out " + out + " --vars tas --tile 2,3 " + file);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok());
  const auto attrs = NetcdfAttrs(**store);
  // The grid mapping's attributes as netCDF-C reads them.
  int ncid = -1, crs = -1;
  ASSERT_EQ(nc_open(file.c_str(), NC_NOWRITE, &ncid), NC_NOERR);
  ASSERT_EQ(nc_inq_varid(ncid, "lambert_conformal_conic", &crs), NC_NOERR);
  double parallels[2] = {0, 0}, meridian = 0;
  ASSERT_EQ(nc_get_att_double(ncid, crs, "standard_parallel", parallels), NC_NOERR);
  ASSERT_EQ(nc_get_att_double(ncid, crs, "longitude_of_central_meridian", &meridian), NC_NOERR);
  size_t wkt_len = 0;
  ASSERT_EQ(nc_inq_attlen(ncid, crs, "crs_wkt", &wkt_len), NC_NOERR);
  std::string wkt(wkt_len, '\0');
  ASSERT_EQ(nc_get_att_text(ncid, crs, "crs_wkt", wkt.data()), NC_NOERR);
  nc_close(ncid);
  const auto& gm = attrs.at("grid_mapping");
  EXPECT_EQ(gm.at("name"), "lambert_conformal_conic");
  EXPECT_EQ(gm.at("attributes").at("grid_mapping_name"), "lambert_conformal_conic");
  EXPECT_EQ(gm.at("attributes").at("standard_parallel"),
            nlohmann::json::array({parallels[0], parallels[1]}));
  EXPECT_EQ(gm.at("attributes").at("longitude_of_central_meridian"), meridian);
  EXPECT_EQ(attrs.at("crs_wkt"), wkt);
  // y/x in km are projection coordinates, not latitude/longitude.
  EXPECT_EQ(attrs.at("y").at("kind"), "projection_y_coordinate");
  EXPECT_EQ(attrs.at("y").at("units"), "km");
  EXPECT_EQ(attrs.at("x").at("kind"), "projection_x_coordinate");
  EXPECT_FALSE(attrs.contains("latitude"));
  EXPECT_FALSE(attrs.contains("longitude"));
  auto first = (*store)->Read(0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->meta.at("y_bounds"), nlohmann::json::array({-200.0, -100.0}));
  EXPECT_EQ(first->meta.at("x_bounds"), nlohmann::json::array({-250.0, -50.0}));
  // Cosine weights of kilometres would be nonsense: refused.
  auto weights =
      Ingest("--no-progress --out " + tmp.Sub("w") + " --vars tas --lat-weights " + file);
  EXPECT_EQ(weights.exit_code, 2) << weights.output;
  EXPECT_NE(weights.output.find("is projection_y_coordinate (km), not latitude"), std::string::npos)
      << weights.output;
}

TEST(NetcdfCli, CurvilinearGridTilesOverItsDimensionsWithTwoDimensionalCoordinateBounds) {
  TempDir tmp;
  const std::string file = tmp.Sub("curvi.nc");
  WriteGridFile(file, {.projected = false});
  const std::string out = tmp.Sub("store");
  auto run = Ingest("--no-progress --out " + out + " --vars tas --tile 2,3 " + file);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), out);
  ASSERT_TRUE(store.ok());
  ASSERT_EQ((*store)->size(), 2u * 3u * 2u);  // 5x6 grid: rows {0,2,3} x cols {0,3}, 2 steps
  testing::NcTruth tas(file, "tas"), lat(file, "lat"), lon(file, "lon");
  for (uint64_t i = 0; i < (*store)->size(); ++i) {
    auto s = (*store)->Read(i);
    ASSERT_TRUE(s.ok());
    const auto& w = s->meta.at("window");
    const size_t t = s->meta.at("step"), r0 = w[0], c0 = w[1];
    double lat_lo = 1e9, lat_hi = -1e9, lon_lo = 1e9, lon_hi = -1e9;
    for (size_t y = 0; y < 2; ++y)
      for (size_t x = 0; x < 3; ++x) {
        const std::map<std::string, size_t> at = {{"time", t}, {"nj", r0 + y}, {"ni", c0 + x}};
        EXPECT_EQ(s->Find("x")->As<float>()[y * 3 + x], static_cast<float>(tas.At(at)));
        lat_lo = std::min(lat_lo, lat.At(at));
        lat_hi = std::max(lat_hi, lat.At(at));
        lon_lo = std::min(lon_lo, lon.At(at));
        lon_hi = std::max(lon_hi, lon.At(at));
      }
    EXPECT_EQ(s->meta.at("lat_bounds"), nlohmann::json::array({lat_lo, lat_hi}));
    EXPECT_EQ(s->meta.at("lon_bounds"), nlohmann::json::array({lon_lo, lon_hi}));
    EXPECT_EQ(s->meta.at("corners_lat_lon")[0],
              nlohmann::json::array(
                  {lat.At({{"nj", r0}, {"ni", c0}}), lon.At({{"nj", r0}, {"ni", c0}})}));
  }
  const auto attrs = NetcdfAttrs(**store);
  EXPECT_EQ(attrs.at("coordinates_2d").at("dims"), nlohmann::json::array({"nj", "ni"}));
  EXPECT_EQ(attrs.at("y").at("kind"), "y");
}

// Files along time on a curvilinear grid: the same 2-D latitude/longitude concatenate (the tiles
// of the second file carry its coordinates, which are the first's); a second file whose
// latitudes differ, on a grid of the same size, is refused naming it and the first difference.
TEST(NetcdfCli, CurvilinearFilesWithDifferentTwoDimensionalCoordinatesAreRefused) {
  TempDir tmp;
  const std::string a = tmp.Sub("a.nc"), b = tmp.Sub("b.nc"), moved = tmp.Sub("moved.nc");
  WriteGridFile(a, {.projected = false});
  WriteGridFile(b, {.projected = false, .hours = {12, 18}});
  WriteGridFile(moved, {.projected = false, .hours = {12, 18}, .lat_origin = 30.5});
  auto same =
      Ingest("--no-progress --out " + tmp.Sub("same") + " --vars tas --tile 5,6 " + a + " " + b);
  ASSERT_EQ(same.exit_code, 0) << same.output;
  auto store = Store::Open(LocalStorage(), tmp.Sub("same"));
  ASSERT_TRUE(store.ok());
  ASSERT_EQ((*store)->size(), 4u);
  testing::NcTruth lat_b(b, "lat");
  auto last = (*store)->Read(3);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->meta.at("corners_lat_lon")[0][0], lat_b.At({{"nj", 0}, {"ni", 0}}));

  auto refused = Ingest("--no-progress --out " + tmp.Sub("moved") + " --vars tas --tile 5,6 " + a +
                        " " + moved);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find(moved + ": curvilinear grid differs from " + a +
                                " (lat[0,0] 30.5 vs 30 there)"),
            std::string::npos)
      << refused.output;
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("moved") + "/manifest.json"));
}

TEST(NetcdfCli, GridDimsNameTheGridOfAVariableWithoutCoordinates) {
  TempDir tmp;
  const std::string file = tmp.Sub("bare.nc");
  WriteGridFile(file, {.projected = false, .coordinates_attr = false});
  auto refused = Ingest("--no-progress --out " + tmp.Sub("a") + " --vars tas " + file);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--grid-dims"), std::string::npos) << refused.output;
  auto run =
      Ingest("--no-progress --out " + tmp.Sub("b") + " --vars tas --grid-dims nj,ni " + file);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = Store::Open(LocalStorage(), tmp.Sub("b"));
  ASSERT_TRUE(store.ok());
  auto s = (*store)->Read(1);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Find("x")->shape, (std::vector<int64_t>{1, 5, 6}));
  EXPECT_EQ(s->Find("x")->As<float>()[6 + 2], 100.0f + 10.0f + 2.0f);  // step 1, row 1, col 2
  auto wrong =
      Ingest("--no-progress --out " + tmp.Sub("c") + " --vars tas --grid-dims j,i " + file);
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.output.find("has no dimension j"), std::string::npos) << wrong.output;
}

TEST(NetcdfCli, LeadInStepsIsRefusedOnAnIrregularSeriesAndADurationPairsByTime) {
  TempDir tmp;
  const std::string file = tmp.Sub("irregular.nc");
  // 2000-01-01, one day later, then 141 days later.
  WriteGridFile(file, {.projected = false, .hours = {0, 24, 24 * 142}});
  auto steps = Ingest("--no-progress --out " + tmp.Sub("a") + " --vars tas --lead 1 " + file);
  EXPECT_EQ(steps.exit_code, 2) << steps.output;
  EXPECT_NE(steps.output.find("--lead 1 counts time steps, but the series is irregular: " + file +
                              " 2000-01-01T00:00:00 -> " + file +
                              " 2000-01-02T00:00:00 is 1d, "
                              "then -> " +
                              file + " 2000-05-22T00:00:00 is 141d"),
            std::string::npos)
      << steps.output;
  EXPECT_FALSE(HasManifest(tmp.Sub("a")));
  auto day = Ingest("--no-progress --out " + tmp.Sub("b") + " --vars tas --lead 1d " + file);
  ASSERT_EQ(day.exit_code, 0) << day.output;
  auto store = Store::Open(LocalStorage(), tmp.Sub("b"));
  ASSERT_TRUE(store.ok());
  ASSERT_EQ((*store)->size(), 1u);  // only 2000-01-01 has a step one day later
  auto s = (*store)->Read(0);
  EXPECT_EQ(s->meta.at("time_y"), "2000-01-02T00:00:00");
  EXPECT_EQ(s->Find("y")->As<float>()[0], 100.0f);
  EXPECT_EQ(NetcdfAttrs(**store).at("lead_ms"), 86400000);
  auto none = Ingest("--no-progress --out " + tmp.Sub("c") + " --vars tas --lead 6h " + file);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.output.find("--lead 6h: no time step has a step that much later"),
            std::string::npos)
      << none.output;
  auto bad = Ingest("--no-progress --out " + tmp.Sub("d") + " --vars tas --lead 2months " + file);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--lead '2months'"), std::string::npos) << bad.output;
}

TEST(NetcdfCli, LeadAsADurationEqualsTheSameLeadInStepsOnARegularSeries) {
  TempDir tmp;
  Series s = WriteSeries(tmp);  // 6-hourly
  auto steps =
      Ingest("--no-progress --out " + tmp.Sub("a") + " --vars t2m --lead 2 " + s.files_arg);
  auto hours =
      Ingest("--no-progress --out " + tmp.Sub("b") + " --vars t2m --lead 12h " + s.files_arg);
  ASSERT_EQ(steps.exit_code, 0) << steps.output;
  ASSERT_EQ(hours.exit_code, 0) << hours.output;
  auto a = Store::Open(LocalStorage(), tmp.Sub("a"));
  auto b = Store::Open(LocalStorage(), tmp.Sub("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->size(), 7u);
  ASSERT_EQ((*b)->size(), 7u);
  for (uint64_t i = 0; i < 7; ++i) {
    auto sa = (*a)->Read(i);
    auto sb = (*b)->Read(i);
    EXPECT_EQ(sa->Find("y")->data, sb->Find("y")->data);
    EXPECT_EQ(sa->meta.at("time_y"), sb->meta.at("time_y"));
  }
}

TEST(NetcdfCli, DirectoryInputSaysItIsADirectory) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.Sub("era5.nc"));
  auto run = Ingest("--no-progress --out " + tmp.Sub("s") + " --vars t2m " + tmp.Sub("era5.nc"));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find(tmp.Sub("era5.nc") + ": is a directory"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("damaged"), std::string::npos) << run.output;
}

TEST(NetcdfCli, TileLargerThanTheGridNamesTheFileAndTheTime) {
  TempDir tmp;
  Series s = WriteSeries(tmp);
  auto run = Ingest("--no-progress --out " + tmp.Sub("s") + " --vars t2m --tile 8,8 " + s.paths[0]);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(
      run.output.find(s.paths[0] + " 2000-01-01T00:00:00: tile 8x8 is larger than the raster"),
      std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace tilestage
