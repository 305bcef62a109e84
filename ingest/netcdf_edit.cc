#include "ingest/netcdf_edit.h"

#include <netcdf.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "ingest/netcdf_file.h"

namespace tilestage::ingest {

Status ShiftNetcdfTime(const std::string& path, double offset) {
  std::lock_guard lock(NetcdfMutex());
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

}  // namespace tilestage::ingest
