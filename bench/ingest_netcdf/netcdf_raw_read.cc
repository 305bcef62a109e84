// The physical limit for NetCDF ingest: every time step of the given variables read with plain
// nc_get_vara in the stored type (no unpacking, no copies, one thread: netCDF-C is not
// thread-safe), one call per variable and step covering all its levels and the whole grid.
// Prints one JSON line: {"files", "steps", "bytes", "seconds", "mb_per_s"}.
//
// usage: netcdf_raw_read VAR[,VAR...] FILE...
#include <netcdf.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

int Fail(const char* what, const char* path, int rc) {
  std::fprintf(stderr, "netcdf_raw_read: %s: %s: %s\n", path, what, nc_strerror(rc));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VAR[,VAR...] FILE...\n", argv[0]);
    return 2;
  }
  std::vector<std::string> vars;
  std::stringstream in(argv[1]);
  for (std::string v; std::getline(in, v, ',');) vars.push_back(v);
  std::vector<unsigned char> buffer;
  uint64_t bytes = 0, steps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int f = 2; f < argc; ++f) {
    const char* path = argv[f];
    int ncid = -1;
    if (int rc = nc_open(path, NC_NOWRITE, &ncid); rc != NC_NOERR) return Fail("open", path, rc);
    size_t nt = 0;
    for (const std::string& name : vars) {
      int varid = -1, ndims = 0;
      nc_type type = 0;
      if (int rc = nc_inq_varid(ncid, name.c_str(), &varid); rc != NC_NOERR) {
        return Fail(name.c_str(), path, rc);
      }
      nc_inq_var(ncid, varid, nullptr, &type, &ndims, nullptr, nullptr);
      std::vector<int> dimids(ndims);
      nc_inq_vardimid(ncid, varid, dimids.data());
      std::vector<size_t> start(ndims, 0), count(ndims, 1);
      size_t elems = 1;
      for (int d = 1; d < ndims; ++d) {  // dimension 0 is time in the generated files
        nc_inq_dimlen(ncid, dimids[d], &count[d]);
        elems *= count[d];
      }
      nc_inq_dimlen(ncid, dimids[0], &nt);
      size_t type_size = 0;
      nc_inq_type(ncid, type, nullptr, &type_size);
      buffer.resize(elems * type_size);
      for (size_t t = 0; t < nt; ++t) {
        start[0] = t;
        if (int rc = nc_get_vara(ncid, varid, start.data(), count.data(), buffer.data());
            rc != NC_NOERR) {
          return Fail(name.c_str(), path, rc);
        }
        bytes += buffer.size();
      }
    }
    steps += nt;
    nc_close(ncid);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "{\"files\": %d, \"steps\": %llu, \"bytes\": %llu, \"seconds\": %.4f, \"mb_per_s\": %.1f}\n",
      argc - 2, static_cast<unsigned long long>(steps), static_cast<unsigned long long>(bytes),
      seconds, bytes / seconds / 1e6);
  return 0;
}
