#include "bench/e2e/inputs.h"

#include <netcdf.h>

#include <algorithm>
#include <filesystem>

namespace tilestage::bench {

namespace fs = std::filesystem;

Status ShiftNetcdfTime(const std::string& path, double offset) {
  int nc = 0, var = 0, ndims = 0;
  int rc = nc_open(path.c_str(), NC_WRITE, &nc);
  if (rc != NC_NOERR) return IOError("nc_open ", path, ": ", nc_strerror(rc));
  size_t len = 1;  // a scalar time variable holds one value
  rc = nc_inq_varid(nc, "time", &var);
  if (rc == NC_NOERR) rc = nc_inq_varndims(nc, var, &ndims);
  std::vector<int> dims(size_t(std::max(ndims, 0)));
  if (rc == NC_NOERR && ndims > 0) rc = nc_inq_vardimid(nc, var, dims.data());
  for (int d : dims) {
    size_t n = 0;
    if (rc == NC_NOERR) rc = nc_inq_dimlen(nc, d, &n);
    len *= n;
  }
  std::vector<double> t(len);
  if (rc == NC_NOERR && len > 0) rc = nc_get_var_double(nc, var, t.data());
  for (double& v : t) v += offset * double(len);
  if (rc == NC_NOERR && len > 0) rc = nc_put_var_double(nc, var, t.data());
  const int close_rc = nc_close(nc);
  if (rc != NC_NOERR || close_rc != NC_NOERR) {
    return IOError(
        path, ": cannot shift the time variable: ", nc_strerror(rc != NC_NOERR ? rc : close_rc));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> CopyInputs(const std::vector<std::string>& files, int copies,
                                            const std::string& dir) {
  if (copies <= 1) return files;
  std::vector<std::string> out;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("cannot create ", dir, ": ", ec.message());
  for (int k = 0; k < copies; ++k) {
    for (const auto& f : files) {
      const fs::path p(f);
      const std::string dst =
          dir + "/" + p.stem().string() + "_" + std::to_string(k) + p.extension().string();
      fs::remove(dst, ec);
      // A file that stays as it is becomes a hard link (no bytes written; the demo preset links
      // 250 copies of its scene); one to change, or one on another file system, a copy.
      ec.clear();
      if (p.extension() != ".nc") fs::create_hard_link(f, dst, ec);
      if (p.extension() == ".nc" || ec) {
        ec.clear();
        fs::copy_file(f, dst, fs::copy_options::overwrite_existing, ec);
      }
      if (ec) return IOError("copy ", f, " to ", dst, ": ", ec.message());
      if (p.extension() == ".nc" && k > 0) TS_RETURN_IF_ERROR(ShiftNetcdfTime(dst, double(k)));
      out.push_back(dst);
    }
  }
  return out;
}

}  // namespace tilestage::bench
