// Independent truth for netCDF tests: a variable read whole with netCDF-C's own
// nc_get_var_double (which converts types but never unpacks), then unpacked here by the CF rule
// written out directly: NaN where the stored value equals _FillValue or missing_value, else
// value * scale_factor + add_offset. Indexing is by dimension name, so any on-disk order works.
// Not thread-safe (test helper).
#pragma once

#include <gtest/gtest.h>
#include <netcdf.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace tilestage::testing {

class NcTruth {
 public:
  NcTruth(const std::string& path, const std::string& var) {
    int ncid = -1, varid = -1, ndims = 0;
    EXPECT_EQ(nc_open(path.c_str(), NC_NOWRITE, &ncid), NC_NOERR) << path;
    EXPECT_EQ(nc_inq_varid(ncid, var.c_str(), &varid), NC_NOERR) << var;
    EXPECT_EQ(nc_inq_varndims(ncid, varid, &ndims), NC_NOERR);
    std::vector<int> dimids(ndims);
    nc_inq_vardimid(ncid, varid, dimids.data());
    size_t total = 1;
    for (int d : dimids) {
      char name[NC_MAX_NAME + 1] = {0};
      size_t len = 0;
      nc_inq_dim(ncid, d, name, &len);
      names_.push_back(name);
      lens_.push_back(len);
      total *= len;
    }
    raw_.resize(total);
    EXPECT_EQ(nc_get_var_double(ncid, varid, raw_.data()), NC_NOERR);
    const auto att = [&](const char* name, double* out) {
      return nc_get_att_double(ncid, varid, name, out) == NC_NOERR;
    };
    att("scale_factor", &scale_);
    att("add_offset", &offset_);
    double v = 0;
    if (att("_FillValue", &v)) missing_.push_back(v);
    if (att("missing_value", &v)) missing_.push_back(v);
    nc_close(ncid);
  }

  // Physical value at the given named indices (dimensions not named are index 0).
  double At(const std::map<std::string, size_t>& index) const {
    size_t flat = 0;
    for (size_t k = 0; k < names_.size(); ++k) {
      auto it = index.find(names_[k]);
      flat = flat * lens_[k] + (it == index.end() ? 0 : it->second);
    }
    const double stored = raw_[flat];
    for (double m : missing_) {
      if (stored == m) return std::numeric_limits<double>::quiet_NaN();
    }
    if (std::isnan(stored)) return stored;
    return stored * scale_ + offset_;
  }
  size_t Len(const std::string& dim) const {
    for (size_t k = 0; k < names_.size(); ++k) {
      if (names_[k] == dim) return lens_[k];
    }
    return 1;
  }

 private:
  std::vector<std::string> names_;
  std::vector<size_t> lens_;
  std::vector<double> raw_;
  double scale_ = 1.0, offset_ = 0.0;
  std::vector<double> missing_;
};

}  // namespace tilestage::testing
