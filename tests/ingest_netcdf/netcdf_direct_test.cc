// The direct read path (NcFile::DirectLayout + ReadDirect: pread, no netCDF-C call) against
// netCDF-C's own reads: nc_get_vara through NcFile::ReadRaw, and whole datasets opened with
// direct_reads = false (the library path). Files are written with netCDF-C in every format, with
// record variables, big-endian and deflated netCDF-4 variables, any dimension order; plus the
// shared real files and truncated files.
#include <gtest/gtest.h>
#include <netcdf.h>

#include <numeric>
#include <thread>

#include "ingest/netcdf_dataset.h"
#include "ingest/netcdf_file.h"
#include "tests/common/test_util.h"
#include "tests/ingest_netcdf/nc_fixture.h"

namespace tilestage::ingest {
namespace {

using testing::FixtureSpec;
using testing::FixtureVar;
using testing::TempDir;

bool HasSubstring(const Status& s, const std::string& needle) {
  return s.message().find(needle) != std::string::npos;
}

std::unique_ptr<NetcdfDataset> OpenDataset(const std::vector<std::string>& files,
                                           const std::vector<std::string>& vars, bool direct) {
  NetcdfRequest request;
  request.files = files;
  request.variables = vars;
  request.direct_reads = direct;
  auto ds = NetcdfDataset::Open(request);
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return ds.ok() ? std::move(ds).value() : nullptr;
}

// Every step, whole grid and a few windows (one row, one column, an inner block, a full-width
// band), bit-identical raw bytes, decoded values and valid counts on both paths.
void ExpectDirectEqualsLibrary(const std::vector<std::string>& files,
                               const std::vector<std::string>& vars, bool expect_direct) {
  auto direct = OpenDataset(files, vars, true);
  auto library = OpenDataset(files, vars, false);
  ASSERT_TRUE(direct && library);
  ASSERT_EQ(direct->steps().size(), library->steps().size());
  for (size_t f = 0; f < direct->files().size(); ++f) {
    for (size_t c = 0; c < direct->channels().size(); ++c) {
      EXPECT_EQ(direct->reads_directly(f, c), expect_direct) << direct->files()[f] << " " << c;
      EXPECT_FALSE(library->reads_directly(f, c));
    }
  }
  const int64_t h = direct->height(), w = direct->width();
  const std::vector<NetcdfDataset::Window> windows = {
      {0, 0, h, w},
      {h / 2, 0, 1, w},
      {0, w / 2, h, 1},
      {std::min<int64_t>(1, h - 1), std::min<int64_t>(1, w - 1), std::max<int64_t>(1, h - 2),
       std::max<int64_t>(1, w - 2)},
      {h / 3, 0, h - h / 3, w}};
  for (size_t step = 0; step < direct->steps().size(); ++step) {
    for (const auto& window : windows) {
      NetcdfDataset::RawStep raw_a, raw_b;
      ASSERT_TRUE(direct->ReadRaw(step, window, &raw_a).ok());
      ASSERT_TRUE(library->ReadRaw(step, window, &raw_b).ok());
      ASSERT_EQ(raw_a.bytes, raw_b.bytes)
          << "step " << step << " window " << window.row << "," << window.col << " "
          << window.height << "x" << window.width;
      Array a, b;
      std::vector<uint64_t> valid_a, valid_b;
      ASSERT_TRUE(direct->Decode(raw_a, &a, &valid_a).ok());
      ASSERT_TRUE(library->Decode(raw_b, &b, &valid_b).ok());
      // Compared as bytes, so NaN payloads count too.
      EXPECT_EQ(a.shape, b.shape);
      EXPECT_TRUE(a.data == b.data) << "step " << step;
      EXPECT_EQ(valid_a, valid_b) << "step " << step;
    }
  }
}

std::string FormatName(int format) {
  switch (format) {
    case 0:
      return "Classic";
    case NC_64BIT_OFFSET:
      return "Offset64";
    case NC_64BIT_DATA:
      return "Cdf5";
    case NC_NETCDF4:
      return "Netcdf4";
    default:
      return "Netcdf4Classic";
  }
}

class DirectAllFormats : public ::testing::TestWithParam<int> {};

TEST_P(DirectAllFormats, DirectReadsEqualTheLibraryPathBitForBit) {
  TempDir tmp;
  FixtureSpec spec;
  spec.format = GetParam();
  spec.nt = 4;
  spec.ny = 7;
  spec.nx = 9;
  const std::string path = tmp.Sub("f.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  ExpectDirectEqualsLibrary({path}, {"t2m", "t"}, true);
}

// Record variables interleave record by record: the time coordinate (double), a packed int16
// variable whose 7x9 grid (126 bytes) is padded to 128 bytes per record, and a float variable on
// levels. netCDF-4 keeps an unlimited dimension in chunks, so it stays on the library path.
TEST_P(DirectAllFormats, RecordVariablesOnAnUnlimitedTimeEqualTheLibraryPath) {
  TempDir tmp;
  FixtureSpec spec;
  spec.format = GetParam();
  spec.unlimited_time = true;
  spec.nt = 5;
  spec.ny = 7;
  spec.nx = 9;
  spec.vars = {{"t2m", true, false}, {"t", false, true}, {"sp", true, false}};
  const std::string path = tmp.Sub("rec.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  const bool netcdf4 = (GetParam() & NC_NETCDF4) != 0;
  ExpectDirectEqualsLibrary({path}, {"t2m", "t", "sp"}, !netcdf4);
}

// A netCDF-3 header larger than the first read of it (64 KiB): here a 300 KB global attribute,
// as files with very many variables and attributes have. It is read again with more bytes, still
// parses, and the data behind it reads directly.
TEST(NetcdfDirect, Netcdf3HeaderLargerThanTheFirstReadStillParses) {
  for (int format : {0, NC_64BIT_OFFSET, NC_64BIT_DATA}) {
    TempDir tmp;
    FixtureSpec spec;
    spec.format = format;
    const std::string path = tmp.Sub("big-header.nc");
    ASSERT_TRUE(testing::WriteFixture(path, spec));
    int ncid = -1;
    ASSERT_EQ(nc_open(path.c_str(), NC_WRITE, &ncid), NC_NOERR);
    ASSERT_EQ(nc_redef(ncid), NC_NOERR);
    const std::string history(300000, 'h');
    ASSERT_EQ(nc_put_att_text(ncid, NC_GLOBAL, "history", history.size(), history.data()),
              NC_NOERR);
    ASSERT_EQ(nc_close(ncid), NC_NOERR);
    ExpectDirectEqualsLibrary({path}, {"t2m", "t"}, true);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, DirectAllFormats,
                         ::testing::Values(0, NC_64BIT_OFFSET, NC_64BIT_DATA, NC_NETCDF4,
                                           NC_NETCDF4 | NC_CLASSIC_MODEL),
                         [](const auto& info) { return FormatName(info.param); });

// Every index of every dimension of var, through ReadDirect and through nc_get_vara (ReadRaw):
// whole slabs along the first dimension, and one-element-wide windows.
void ExpectNcFileDirectEqualsRaw(const std::string& path, const std::string& name,
                                 uint64_t expect_record_stride) {
  auto file = NcFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto var = (*file)->Inquire(name);
  ASSERT_TRUE(var.ok());
  auto layout = (*file)->DirectLayout(*var);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  ASSERT_TRUE(layout->direct) << layout->reason;
  EXPECT_EQ(layout->stride_bytes[0], expect_record_stride);
  const size_t n = var->dim_lens.size();
  const size_t elem = NcTypeSize(var->type);
  for (size_t first = 0; first < var->dim_lens[0]; ++first) {
    std::vector<size_t> start(n, 0), count = var->dim_lens;
    start[0] = first;
    count[0] = 1;
    for (size_t narrow = 0; narrow <= n; ++narrow) {  // narrow == n: the whole slab
      if (narrow > 0 && narrow < n) {
        start[narrow] = var->dim_lens[narrow] / 2;
        count[narrow] = 1;
      }
      const size_t elems =
          std::accumulate(count.begin(), count.end(), size_t{1}, std::multiplies<>());
      std::vector<uint8_t> a(elems * elem), b(elems * elem);
      ASSERT_TRUE((*file)->ReadDirect(*layout, *var, start, count, a.data()).ok());
      ASSERT_TRUE((*file)->ReadRaw(*var, start, count, b.data()).ok());
      EXPECT_EQ(a, b) << name << " record " << first << " narrow " << narrow;
      if (narrow > 0 && narrow < n) {
        start[narrow] = 0;
        count[narrow] = var->dim_lens[narrow];
      }
    }
  }
}

// A netCDF-3 file whose only record variable is v(rec, y, x) of short, 3x5 (30 bytes per
// record): netCDF-C does not pad a lone record variable, so records are 30 bytes apart.
TEST(NcFileDirect, LoneRecordVariableIsNotPadded) {
  TempDir tmp;
  for (int format : {0, NC_64BIT_OFFSET, NC_64BIT_DATA}) {
    const std::string path = tmp.Sub("lone" + FormatName(format) + ".nc");
    int ncid = -1, rec = -1, y = -1, x = -1, v = -1, fixed = -1;
    ASSERT_EQ(nc_create(path.c_str(), NC_CLOBBER | format, &ncid), NC_NOERR);
    nc_def_dim(ncid, "rec", NC_UNLIMITED, &rec);
    nc_def_dim(ncid, "y", 3, &y);
    nc_def_dim(ncid, "x", 5, &x);
    int dims[] = {rec, y, x};
    ASSERT_EQ(nc_def_var(ncid, "v", NC_SHORT, 3, dims, &v), NC_NOERR);
    ASSERT_EQ(nc_def_var(ncid, "fixed", NC_BYTE, 2, dims + 1, &fixed), NC_NOERR);
    ASSERT_EQ(nc_enddef(ncid), NC_NOERR);
    std::vector<short> values(4 * 15);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<short>(i * 37 - 999);
    size_t start[] = {0, 0, 0}, count[] = {4, 3, 5};
    ASSERT_EQ(nc_put_vara_short(ncid, v, start, count, values.data()), NC_NOERR);
    std::vector<signed char> bytes(15, 7);
    ASSERT_EQ(nc_put_var_schar(ncid, fixed, bytes.data()), NC_NOERR);
    ASSERT_EQ(nc_close(ncid), NC_NOERR);
    ExpectNcFileDirectEqualsRaw(path, "v", 30);
  }
}

// Two record variables of odd sizes (a byte grid of 15 bytes, a double per record): each is
// padded to 4 bytes, so a record is 16 + 8 = 24 bytes, not a multiple of every element size.
TEST(NcFileDirect, InterleavedRecordVariablesUsePaddedRecordSize) {
  TempDir tmp;
  for (int format : {0, NC_64BIT_OFFSET, NC_64BIT_DATA}) {
    const std::string path = tmp.Sub("two" + FormatName(format) + ".nc");
    int ncid = -1, rec = -1, y = -1, x = -1, b = -1, d = -1;
    ASSERT_EQ(nc_create(path.c_str(), NC_CLOBBER | format, &ncid), NC_NOERR);
    nc_def_dim(ncid, "rec", NC_UNLIMITED, &rec);
    nc_def_dim(ncid, "y", 3, &y);
    nc_def_dim(ncid, "x", 5, &x);
    int dims[] = {rec, y, x};
    ASSERT_EQ(nc_def_var(ncid, "b", NC_BYTE, 3, dims, &b), NC_NOERR);
    ASSERT_EQ(nc_def_var(ncid, "d", NC_DOUBLE, 1, dims, &d), NC_NOERR);
    ASSERT_EQ(nc_enddef(ncid), NC_NOERR);
    std::vector<signed char> bytes(6 * 15);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<signed char>(i * 5 - 100);
    std::vector<double> doubles = {1.5, -2.25, 3e300, 4, 5, 6};
    size_t start[] = {0, 0, 0}, count[] = {6, 3, 5};
    ASSERT_EQ(nc_put_vara_schar(ncid, b, start, count, bytes.data()), NC_NOERR);
    ASSERT_EQ(nc_put_vara_double(ncid, d, start, count, doubles.data()), NC_NOERR);
    ASSERT_EQ(nc_close(ncid), NC_NOERR);
    ExpectNcFileDirectEqualsRaw(path, "b", 24);
    ExpectNcFileDirectEqualsRaw(path, "d", 24);
  }
}

// netCDF-4 stores a variable named like a dimension it does not index under
// "_nc4_non_coord_<name>"; the HDF5 dataset "<name>" is then the dimension's scale.
TEST(NcFileDirect, Netcdf4VariableNamedLikeAnotherDimensionReadsItsOwnBytes) {
  TempDir tmp;
  const std::string path = tmp.Sub("noncoord.nc");
  int ncid = -1, y = -1, x = -1, v = -1;
  ASSERT_EQ(nc_create(path.c_str(), NC_CLOBBER | NC_NETCDF4, &ncid), NC_NOERR);
  nc_def_dim(ncid, "y", 4, &y);
  nc_def_dim(ncid, "x", 4, &x);
  int dims[] = {y, x};
  ASSERT_EQ(nc_def_var(ncid, "x", NC_INT, 2, dims, &v), NC_NOERR);
  ASSERT_EQ(nc_enddef(ncid), NC_NOERR);
  std::vector<int> values(16);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>(i * 1001 + 3);
  ASSERT_EQ(nc_put_var_int(ncid, v, values.data()), NC_NOERR);
  ASSERT_EQ(nc_close(ncid), NC_NOERR);
  ExpectNcFileDirectEqualsRaw(path, "x", 16);
}

TEST(NetcdfDirect, BigEndianNetcdf4VariablesAreSwapped) {
  TempDir tmp;
  FixtureSpec spec;
  spec.format = NC_NETCDF4;
  spec.big_endian = true;
  const std::string path = tmp.Sub("be.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto file = NcFile::Open(path);
  ASSERT_TRUE(file.ok());
  for (const char* name : {"t2m", "t"}) {
    auto var = (*file)->Inquire(name);
    ASSERT_TRUE(var.ok());
    auto layout = (*file)->DirectLayout(*var);
    ASSERT_TRUE(layout.ok() && layout->direct) << name;
    EXPECT_TRUE(layout->big_endian) << name;
  }
  ExpectDirectEqualsLibrary({path}, {"t2m", "t"}, true);
}

TEST(NetcdfDirect, ChunkedDeflatedNetcdf4FallsBackToTheLibraryAndStillMatches) {
  TempDir tmp;
  FixtureSpec spec;
  spec.format = NC_NETCDF4;
  spec.deflate = true;
  const std::string path = tmp.Sub("deflated.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  auto file = NcFile::Open(path);
  ASSERT_TRUE(file.ok());
  auto var = (*file)->Inquire("t2m");
  ASSERT_TRUE(var.ok());
  auto layout = (*file)->DirectLayout(*var);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();  // not direct is not an error
  EXPECT_FALSE(layout->direct);
  EXPECT_EQ(layout->reason, "chunked");
  ExpectDirectEqualsLibrary({path}, {"t2m", "t"}, false);
  auto ds = OpenDataset({path}, {"t2m"}, true);
  ASSERT_TRUE(ds);
  EXPECT_EQ(ds->Describe()["files"][0]["reads"]["t2m"], "netCDF library (chunked)");
}

// x before y on disk ([x][y] slabs, latitude fastest) and levels innermost-but-two.
TEST(NetcdfDirect, TransposedDimensionOrderEqualsTheLibraryPath) {
  TempDir tmp;
  for (int format : {0, NC_NETCDF4}) {
    FixtureSpec spec;
    spec.format = format;
    spec.order = "xtzy";
    spec.ny = 6;
    spec.nx = 5;
    const std::string path = tmp.Sub("xtzy" + FormatName(format) + ".nc");
    ASSERT_TRUE(testing::WriteFixture(path, spec));
    ExpectDirectEqualsLibrary({path}, {"t2m", "t"}, true);
  }
}

TEST(NetcdfDirect, MixedFormatSeriesEqualsTheLibraryPath) {
  TempDir tmp;
  std::vector<std::string> paths;
  const int formats[] = {NC_64BIT_DATA, NC_NETCDF4 | NC_CLASSIC_MODEL, 0};
  for (int f = 0; f < 3; ++f) {
    FixtureSpec spec;
    spec.format = formats[f];
    spec.t_first = 3 * f;
    spec.unlimited_time = f == 2;
    paths.push_back(tmp.Sub("year" + std::to_string(f) + ".nc"));
    ASSERT_TRUE(testing::WriteFixture(paths.back(), spec));
  }
  ExpectDirectEqualsLibrary(paths, {"t", "t2m"}, true);
}

// Four threads reading the steps of a series at once (direct reads take no lock) give the same
// bytes as one thread reading them through netCDF-C.
TEST(NetcdfDirect, ConcurrentDirectReadsEqualSequentialLibraryReads) {
  TempDir tmp;
  std::vector<std::string> paths;
  for (int f = 0; f < 2; ++f) {
    FixtureSpec spec;
    spec.format = f == 0 ? 0 : NC_NETCDF4;
    spec.t_first = 8 * f;
    spec.nt = 8;
    spec.ny = 16;
    spec.nx = 24;
    paths.push_back(tmp.Sub("p" + std::to_string(f) + ".nc"));
    ASSERT_TRUE(testing::WriteFixture(paths.back(), spec));
  }
  auto direct = OpenDataset(paths, {"t2m", "t"}, true);
  auto library = OpenDataset(paths, {"t2m", "t"}, false);
  ASSERT_TRUE(direct && library);
  const size_t steps = direct->steps().size();
  ASSERT_EQ(steps, 16u);
  std::vector<Array> expected(steps), got(steps);
  std::vector<uint64_t> valid;
  for (size_t t = 0; t < steps; ++t) ASSERT_TRUE(library->ReadStep(t, &expected[t], &valid).ok());
  std::vector<Status> status(steps);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      std::vector<uint64_t> v;
      for (int round = 0; round < 5; ++round) {
        for (size_t t = k; t < steps; t += 4) status[t] = direct->ReadStep(t, &got[t], &v);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < steps; ++t) {
    ASSERT_TRUE(status[t].ok()) << status[t].ToString();
    EXPECT_TRUE(got[t].data == expected[t].data) << "step " << t;
  }
}

TEST(NetcdfDirect, SharedRealFilesEqualTheLibraryPath) {
  ExpectDirectEqualsLibrary({testing::SharedData("netcdf/era5_1995-07-14T12.nc")},
                            {"t2m", "u10", "v10", "d2m", "sp", "t2m_C"}, true);
  ExpectDirectEqualsLibrary({testing::SharedData("netcdf/uvt.nc")}, {"U", "V", "T"}, true);
  ExpectDirectEqualsLibrary({testing::SharedData("netcdf/T2m_1x1.nc")}, {"T"}, true);
}

// A file cut short after it was opened (and its header checked): the direct read fails with
// DataLoss naming the file, the variable, the step and the byte offset.
TEST(NetcdfDirect, FileTruncatedAfterOpenIsDataLossNamingFileVariableStepAndOffset) {
  TempDir tmp;
  for (int format : {0, NC_NETCDF4}) {
    FixtureSpec spec;
    spec.format = format;
    spec.vars = {{"t2m", true, false}};
    spec.nt = 6;
    spec.ny = 20;
    spec.nx = 30;
    const std::string path = tmp.Sub("cut" + FormatName(format) + ".nc");
    ASSERT_TRUE(testing::WriteFixture(path, spec));
    auto ds = OpenDataset({path}, {"t2m"}, true);
    ASSERT_TRUE(ds);
    ASSERT_TRUE(ds->reads_directly(0, 0));
    Array out;
    std::vector<uint64_t> valid;
    ASSERT_TRUE(ds->ReadStep(5, &out, &valid).ok());
    // The last step of t2m is the last 1200 bytes of its data; cut into it.
    auto file = NcFile::Open(path);
    ASSERT_TRUE(file.ok());
    auto var = (*file)->Inquire("t2m");
    ASSERT_TRUE(var.ok());
    auto layout = (*file)->DirectLayout(*var);
    ASSERT_TRUE(layout.ok() && layout->direct);
    const uint64_t last_step = layout->offset + 5 * layout->stride_bytes[0];
    file->reset();
    testing::TruncateFile(path, static_cast<long>(last_step + 100));
    const Status s = ds->ReadStep(5, &out, &valid);
    ASSERT_FALSE(s.ok()) << FormatName(format);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_TRUE(HasSubstring(s, path)) << s.ToString();
    EXPECT_TRUE(HasSubstring(s, "reading t2m [5:6,0:20,0:30]")) << s.ToString();
    EXPECT_TRUE(HasSubstring(s, "step 5 (2000-01-02T06:00:00)")) << s.ToString();
    EXPECT_TRUE(HasSubstring(s, "short read at byte offset " + std::to_string(last_step)))
        << s.ToString();
  }
}

// A netCDF-4 file cut inside a variable's data does not open, on either path.
TEST(NetcdfDirect, TruncatedNetcdf4IsDataLossNamingTheFileOnBothPaths) {
  TempDir tmp;
  FixtureSpec spec;
  spec.format = NC_NETCDF4;
  spec.nt = 10;
  spec.ny = 20;
  spec.nx = 30;
  const std::string path = tmp.Sub("cut4.nc");
  ASSERT_TRUE(testing::WriteFixture(path, spec));
  uint64_t t_end = 0;
  {
    auto file = NcFile::Open(path);
    ASSERT_TRUE(file.ok());
    auto var = (*file)->Inquire("t");
    ASSERT_TRUE(var.ok());
    auto layout = (*file)->DirectLayout(*var);
    ASSERT_TRUE(layout.ok() && layout->direct);
    t_end = layout->offset + 10 * layout->stride_bytes[0];
  }
  testing::TruncateFile(path, static_cast<long>(t_end - 500));
  for (bool direct : {true, false}) {
    NetcdfRequest request;
    request.files = {path};
    request.variables = {"t2m", "t"};
    request.direct_reads = direct;
    auto ds = NetcdfDataset::Open(request);
    ASSERT_FALSE(ds.ok()) << "direct " << direct;
    EXPECT_EQ(ds.status().code(), StatusCode::kDataLoss) << ds.status().ToString();
    EXPECT_TRUE(HasSubstring(ds.status(), path)) << ds.status().ToString();
  }
}

}  // namespace
}  // namespace tilestage::ingest
