// NetcdfDataset against netCDF-C's own reads (NcTruth), on fixtures written with netCDF-C in
// every on-disk format and on the real files in ../shared/data/netcdf; plus each bad input.
#include "ingest/netcdf_dataset.h"

#include <gtest/gtest.h>
#include <netcdf.h>

#include <cmath>
#include <map>

#include "tests/common/test_util.h"
#include "tests/ingest_netcdf/nc_fixture.h"
#include "tests/ingest_netcdf/netcdf_truth.h"

namespace tilestage::ingest {
namespace {

using testing::FixtureSpec;
using testing::NcTruth;
using testing::TempDir;

bool HasSubstring(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos;
}

// Every value of step `step` equals the truth read of (file, local index), channel by channel.
void ExpectStepMatchesTruth(const NetcdfDataset& ds, size_t step, const FixtureSpec& spec,
                            const std::vector<std::string>& var_of_channel,
                            const std::vector<int>& level_index_of_channel) {
  Array out;
  std::vector<uint64_t> valid;
  ASSERT_TRUE(ds.ReadStep(step, &out, &valid).ok());
  const NetcdfStep& s = ds.steps()[step];
  const std::string& file = ds.files()[s.file];
  const int64_t h = ds.height(), w = ds.width();
  ASSERT_EQ(out.shape, (std::vector<int64_t>{static_cast<int64_t>(ds.channels().size()), h, w}));
  for (size_t c = 0; c < ds.channels().size(); ++c) {
    NcTruth truth(file, var_of_channel[c]);
    uint64_t expect_valid = 0;
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        std::map<std::string, size_t> idx = {{spec.t_name, s.index},
                                             {spec.y_name, static_cast<size_t>(y)},
                                             {spec.x_name, static_cast<size_t>(x)}};
        if (level_index_of_channel[c] >= 0) idx[spec.z_name] = level_index_of_channel[c];
        const double expected = truth.At(idx);
        const float got = out.As<float>()[(c * h + y) * w + x];
        if (std::isnan(expected)) {
          EXPECT_TRUE(std::isnan(got)) << "channel " << c << " y " << y << " x " << x;
        } else {
          ++expect_valid;
          EXPECT_EQ(got, static_cast<float>(expected)) << "channel " << c << " y " << y;
        }
      }
    }
    EXPECT_EQ(valid[c], expect_valid) << "channel " << c;
  }
}

class AllFormats : public ::testing::TestWithParam<int> {};

TEST_P(AllFormats, ValuesEqualNetcdfReadUnpacked) {
  TempDir tmp;
  FixtureSpec spec;
  spec.format = GetParam();
  const std::string path = tmp.Sub("f.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto ds = NetcdfDataset::Open({{path}, {"t2m", "t"}, {}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  const auto& channels = (*ds)->channels();
  ASSERT_EQ(channels.size(), 3u);
  EXPECT_EQ(channels[0].name, "t2m");
  EXPECT_EQ(channels[1].name, "t_850");
  EXPECT_EQ(channels[2].name, "t_500");
  ASSERT_EQ((*ds)->steps().size(), 3u);
  EXPECT_EQ((*ds)->steps()[1].iso, "2000-01-01T06:00:00");
  for (size_t t = 0; t < 3; ++t) {
    ExpectStepMatchesTruth(**ds, t, spec, {"t2m", "t", "t"}, {-1, 0, 1});
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, AllFormats,
                         ::testing::Values(0, NC_64BIT_OFFSET, NC_64BIT_DATA, NC_NETCDF4),
                         [](const auto& info) {
                           switch (info.param) {
                             case 0:
                               return std::string("Classic");
                             case NC_64BIT_OFFSET:
                               return std::string("Offset64");
                             case NC_64BIT_DATA:
                               return std::string("Cdf5");
                             default:
                               return std::string("Netcdf4");
                           }
                         });

TEST(NetcdfDataset, PackedValuesMatchTheGenerator) {
  TempDir tmp;
  FixtureSpec spec;
  const std::string path = tmp.Sub("f.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto ds = NetcdfDataset::Open({{path}, {"t2m"}, {}, /*float64=*/true});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  Array out;
  std::vector<uint64_t> valid;
  ASSERT_TRUE((*ds)->ReadStep(2, &out, &valid).ok());
  ASSERT_EQ(out.dtype, DType::kF64);
  int64_t missing = 0;
  for (int64_t y = 0; y < spec.ny; ++y) {
    for (int64_t x = 0; x < spec.nx; ++x) {
      const double got = out.As<double>()[y * spec.nx + x];
      if (testing::FixtureMissing(spec, 2, y * spec.nx + x)) {
        EXPECT_TRUE(std::isnan(got));
        ++missing;
      } else {
        EXPECT_NEAR(got, testing::FixtureValue(0, 2, 0, y, x), 0.5 * 0.01 + 1e-9);
      }
    }
  }
  EXPECT_GT(missing, 0);
  EXPECT_EQ(valid[0], static_cast<uint64_t>(spec.ny * spec.nx - missing));
}

TEST(NetcdfDataset, NonStandardDimensionOrderAndNamesRecognisedByAttributes) {
  TempDir tmp;
  FixtureSpec spec;
  spec.order = "xzty";  // longitude slowest, latitude fastest
  spec.t_name = "valid";
  spec.z_name = "plev";
  spec.y_name = "rows";
  spec.x_name = "cols";
  spec.cf_attrs_by_units_only = true;
  spec.format = NC_NETCDF4;
  const std::string path = tmp.Sub("odd.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto ds = NetcdfDataset::Open({{path}, {"t2m", "t"}, {500}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ((*ds)->channels().size(), 2u);
  EXPECT_EQ((*ds)->channels()[1].name, "t_500");
  EXPECT_EQ((*ds)->height(), spec.ny);
  EXPECT_EQ((*ds)->width(), spec.nx);
  EXPECT_EQ((*ds)->latitude().name, "rows");
  for (size_t t = 0; t < 3; ++t) ExpectStepMatchesTruth(**ds, t, spec, {"t2m", "t"}, {-1, 1});
}

TEST(NetcdfDataset, FilesAreConcatenatedInTimeOrder) {
  TempDir tmp;
  std::vector<std::string> paths;
  std::vector<FixtureSpec> specs;
  for (int f = 0; f < 3; ++f) {
    FixtureSpec spec;
    spec.t_first = f * 3;
    // Each "year" counts from its own reference date, as yearly files usually do.
    spec.time_units = f == 1 ? "days since 2000-01-01" : "hours since 2000-01-01";
    spec.time_step = f == 1 ? 0.25 : 6.0;
    specs.push_back(spec);
    paths.push_back(tmp.Sub("y" + std::to_string(f) + ".nc"));
    ASSERT_TRUE(testing::WriteFixture(paths.back(), spec));
  }
  auto ds = NetcdfDataset::Open({{paths[2], paths[0], paths[1]}, {"t2m", "t"}, {850}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ((*ds)->steps().size(), 9u);
  EXPECT_EQ((*ds)->files()[0], paths[0]);
  EXPECT_EQ((*ds)->files()[2], paths[2]);
  EXPECT_EQ((*ds)->steps()[4].iso, "2000-01-02T00:00:00");
  EXPECT_EQ((*ds)->steps()[8].iso, "2000-01-03T00:00:00");
  for (size_t t = 0; t < 9; ++t) {
    ExpectStepMatchesTruth(**ds, t, specs[t / 3], {"t2m", "t"}, {-1, 0});
  }
}

TEST(NetcdfDataset, WindowReadEqualsTheSameBlockOfAFullRead) {
  TempDir tmp;
  for (const char* order : {"tzyx", "xtzy"}) {
    FixtureSpec spec;
    spec.order = order;
    spec.ny = 9;
    spec.nx = 11;
    const std::string path = tmp.Sub(std::string(order) + ".nc");
    ASSERT_TRUE(testing::WriteFixture(path, spec));
    auto ds = NetcdfDataset::Open({{path}, {"t2m", "t"}, {}, false});
    ASSERT_TRUE(ds.ok()) << ds.status().ToString();
    Array full, part;
    std::vector<uint64_t> valid_full, valid_part;
    ASSERT_TRUE((*ds)->ReadStep(1, &full, &valid_full).ok());
    NetcdfDataset::RawStep raw;
    ASSERT_TRUE((*ds)->ReadRaw(1, {2, 3, 5, 4}, &raw).ok());
    ASSERT_TRUE((*ds)->Decode(raw, &part, &valid_part).ok());
    ASSERT_EQ(part.shape, (std::vector<int64_t>{3, 5, 4}));
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t y = 0; y < 5; ++y) {
        for (int64_t x = 0; x < 4; ++x) {
          const float a = full.As<float>()[(c * 9 + 2 + y) * 11 + 3 + x];
          const float b = part.As<float>()[(c * 5 + y) * 4 + x];
          EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << order << c << y << x;
        }
      }
    }
    EXPECT_FALSE((*ds)->ReadRaw(1, {6, 0, 5, 4}, &raw).ok());  // rows 6..11 of 9
  }
}

TEST(NetcdfDataset, NoLeapAnd360DayCalendarsDecode) {
  TempDir tmp;
  FixtureSpec spec;
  spec.calendar = "noleap";
  spec.time_units = "days since 2001-02-27";
  spec.time_step = 1.0;
  const std::string a = tmp.Sub("noleap.nc");
  ASSERT_TRUE(testing::WriteFixture(a, spec));
  auto ds = NetcdfDataset::Open({{a}, {"t2m"}, {}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ((*ds)->steps()[2].iso, "2001-03-01T00:00:00");
  EXPECT_EQ((*ds)->calendar(), Calendar::kNoLeap);

  spec.calendar = "360_day";
  const std::string b = tmp.Sub("360.nc");
  ASSERT_TRUE(testing::WriteFixture(b, spec));
  ds = NetcdfDataset::Open({{b}, {"t2m"}, {}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ((*ds)->steps()[1].iso, "2001-02-28T00:00:00");
  EXPECT_EQ((*ds)->steps()[2].iso, "2001-02-29T00:00:00");
}

TEST(NetcdfDataset, UnknownCalendarIsAnErrorNamingFileAndCalendar) {
  TempDir tmp;
  FixtureSpec spec;
  spec.calendar = "lunar";
  const std::string path = tmp.Sub("lunar.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto ds = NetcdfDataset::Open({{path}, {"t2m"}, {}, false});
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstring(ds.status(), path)) << ds.status().ToString();
  EXPECT_TRUE(HasSubstring(ds.status(), "lunar")) << ds.status().ToString();
}

TEST(NetcdfDataset, OverlappingFilesAreAnError) {
  TempDir tmp;
  FixtureSpec spec;
  const std::string a = tmp.Sub("a.nc"), b = tmp.Sub("b.nc");
  ASSERT_TRUE(testing::WriteFixture(a, spec));
  spec.t_first = 2;  // a has steps 0,1,2; b starts at 2: a duplicate time
  ASSERT_TRUE(testing::WriteFixture(b, spec));
  auto ds = NetcdfDataset::Open({{a, b}, {"t2m"}, {}, false});
  ASSERT_FALSE(ds.ok());
  EXPECT_TRUE(HasSubstring(ds.status(), "overlap")) << ds.status().ToString();
  EXPECT_TRUE(HasSubstring(ds.status(), "duplicate time")) << ds.status().ToString();
  EXPECT_TRUE(HasSubstring(ds.status(), a) && HasSubstring(ds.status(), b));
}

TEST(NetcdfDataset, SameFileTwiceIsDuplicateTimes) {
  TempDir tmp;
  FixtureSpec spec;
  const std::string a = tmp.Sub("a.nc");
  ASSERT_TRUE(testing::WriteFixture(a, spec));
  auto ds = NetcdfDataset::Open({{a, a}, {"t2m"}, {}, false});
  ASSERT_FALSE(ds.ok());
  EXPECT_TRUE(HasSubstring(ds.status(), "overlap")) << ds.status().ToString();
}

TEST(NetcdfDataset, MissingVariableListsTheVariablesThatExist) {
  TempDir tmp;
  FixtureSpec spec;
  const std::string path = tmp.Sub("f.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto ds = NetcdfDataset::Open({{path}, {"t2m", "z500"}, {}, false});
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstring(ds.status(), "z500"));
  EXPECT_TRUE(HasSubstring(ds.status(), "variables: time, lon, lat, level, t2m, t"))
      << ds.status().ToString();
  EXPECT_TRUE(HasSubstring(ds.status(), path));
}

TEST(NetcdfDataset, LevelThatDoesNotExistListsTheLevels) {
  TempDir tmp;
  FixtureSpec spec;
  const std::string path = tmp.Sub("f.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto ds = NetcdfDataset::Open({{path}, {"t"}, {700}, false});
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstring(ds.status(), "no level 700")) << ds.status().ToString();
  EXPECT_TRUE(HasSubstring(ds.status(), "levels: 850, 500")) << ds.status().ToString();
}

TEST(NetcdfDataset, VariablesOnDifferentGridsAreAnError) {
  TempDir tmp;
  const std::string path = tmp.Sub("grids.nc");
  int ncid, lat, lon, lat2, lon2, vlat, vlon, vlat2, vlon2, a, b;
  ASSERT_EQ(nc_create(path.c_str(), NC_CLOBBER, &ncid), NC_NOERR);
  nc_def_dim(ncid, "lat", 3, &lat);
  nc_def_dim(ncid, "lon", 4, &lon);
  nc_def_dim(ncid, "lat_fine", 6, &lat2);
  nc_def_dim(ncid, "lon_fine", 8, &lon2);
  nc_def_var(ncid, "lat", NC_FLOAT, 1, &lat, &vlat);
  nc_def_var(ncid, "lon", NC_FLOAT, 1, &lon, &vlon);
  nc_def_var(ncid, "lat_fine", NC_FLOAT, 1, &lat2, &vlat2);
  nc_def_var(ncid, "lon_fine", NC_FLOAT, 1, &lon2, &vlon2);
  for (int v : {vlat, vlat2}) nc_put_att_text(ncid, v, "units", 13, "degrees_north");
  for (int v : {vlon, vlon2}) nc_put_att_text(ncid, v, "units", 12, "degrees_east");
  int dims_a[] = {lat, lon}, dims_b[] = {lat2, lon2};
  nc_def_var(ncid, "coarse", NC_FLOAT, 2, dims_a, &a);
  nc_def_var(ncid, "fine", NC_FLOAT, 2, dims_b, &b);
  ASSERT_EQ(nc_close(ncid), NC_NOERR);  // values left at the default fill: fine here
  auto ds = NetcdfDataset::Open({{path}, {"coarse", "fine"}, {}, false});
  ASSERT_FALSE(ds.ok());
  EXPECT_TRUE(HasSubstring(ds.status(), "different grids")) << ds.status().ToString();
  EXPECT_TRUE(HasSubstring(ds.status(), "coarse") && HasSubstring(ds.status(), "fine"));
}

TEST(NetcdfDataset, TruncatedFileIsDataLossNamingTheFile) {
  TempDir tmp;
  FixtureSpec spec;
  spec.nt = 40;
  spec.ny = 20;
  spec.nx = 30;
  for (int format : {0, NC_NETCDF4}) {
    const std::string path = tmp.Sub("trunc" + std::to_string(format) + ".nc");
    ASSERT_TRUE(testing::WriteFixture(path, spec));
    testing::TruncateFile(path, testing::FileSize(path) / 2);
    auto ds = NetcdfDataset::Open({{path}, {"t2m", "t"}, {}, false});
    Status status = ds.status();
    if (ds.ok()) {
      // Classic headers survive truncation; reading the lost steps must then fail.
      Array out;
      std::vector<uint64_t> valid;
      for (size_t t = 0; t < (*ds)->steps().size() && status.ok(); ++t) {
        status = (*ds)->ReadStep(t, &out, &valid);
      }
    }
    ASSERT_FALSE(status.ok()) << "format " << format;
    EXPECT_EQ(status.code(), StatusCode::kDataLoss) << status.ToString();
    EXPECT_TRUE(HasSubstring(status, path)) << status.ToString();
  }
}

TEST(NetcdfDataset, DamagedHeaderIsDataLossNamingTheFile) {
  TempDir tmp;
  FixtureSpec spec;
  for (int format : {0, NC_NETCDF4}) {
    const std::string path = tmp.Sub("hdr" + std::to_string(format) + ".nc");
    ASSERT_TRUE(testing::WriteFixture(path, spec));
    for (long offset : {0L, 1L, 2L, 3L}) testing::FlipByte(path, offset);  // the magic number
    auto ds = NetcdfDataset::Open({{path}, {"t2m"}, {}, false});
    ASSERT_FALSE(ds.ok());
    EXPECT_EQ(ds.status().code(), StatusCode::kDataLoss) << ds.status().ToString();
    EXPECT_TRUE(HasSubstring(ds.status(), path)) << ds.status().ToString();
  }
}

TEST(NetcdfDataset, Era5PackedShortsWithScalarTime) {
  const std::string path = testing::SharedData("netcdf/era5_1995-07-14T12.nc");
  auto ds = NetcdfDataset::Open({{path}, {"u10", "v10", "d2m", "t2m", "sp"}, {}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ((*ds)->steps().size(), 1u);
  EXPECT_EQ((*ds)->steps()[0].iso, "1995-07-14T12:00:00");
  EXPECT_EQ((*ds)->height(), 105);
  EXPECT_EQ((*ds)->width(), 237);
  FixtureSpec names;
  names.y_name = "latitude";
  names.x_name = "longitude";
  ExpectStepMatchesTruth(**ds, 0, names, {"u10", "v10", "d2m", "t2m", "sp"}, {-1, -1, -1, -1, -1});
}

TEST(NetcdfDataset, UvtFourteenPressureLevels) {
  const std::string path = testing::SharedData("netcdf/uvt.nc");
  auto ds = NetcdfDataset::Open({{path}, {"U", "T"}, {}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ((*ds)->channels().size(), 28u);
  EXPECT_EQ((*ds)->channels()[0].name, "U_1000");
  EXPECT_FALSE((*ds)->has_time());  // its time is "Month", not CF: squeezed
  auto sub = NetcdfDataset::Open({{path}, {"T"}, {850, 200}, false});
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_EQ((*sub)->channels().size(), 2u);
  EXPECT_EQ((*sub)->channels()[0].name, "T_850");
  // uvt.nc's lev is 1000, 850, 700, 500, 400, 300, 250, 200, ...: 850 is index 1, 200 index 7.
  FixtureSpec names;
  names.z_name = "lev";
  ExpectStepMatchesTruth(**sub, 0, names, {"T", "T"}, {1, 7});
}

TEST(NetcdfDataset, T2mFillOf1e36BecomesNaN) {
  const std::string path = testing::SharedData("netcdf/T2m_1x1.nc");
  auto ds = NetcdfDataset::Open({{path}, {"T"}, {}, false});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  FixtureSpec names;
  ExpectStepMatchesTruth(**ds, 0, names, {"T"}, {-1});
}

}  // namespace
}  // namespace tilestage::ingest
