#include "ingest/netcdf_file.h"

#include <netcdf.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <numeric>

namespace tilestage::ingest {

std::mutex& NetcdfMutex() {
  static std::mutex mu;
  return mu;
}

Status NcStatus(int rc, const std::string& path, const std::string& what) {
  const std::string message =
      StrCat(path, ": ", what, ": ", nc_strerror(rc), " (netCDF error ", rc, ")");
  switch (rc) {
    case NC_ENOMEM:
      return Status(StatusCode::kResourceExhausted, message);
    case NC_ENOTNC:
    case NC_EHDFERR:
    case NC_ENOTBUILT:
    case NC_EBADDIM:
    case NC_EVARSIZE:
    case NC_EEDGE:
    case NC_EINVALCOORDS:
    case NC_ETRUNC:
      return Status(StatusCode::kDataLoss, message);
    case ENOENT:
      return Status(StatusCode::kNotFound, message);
    default:
      break;
  }
  // Other negative codes from reading bytes that are not there are data problems too.
  if (rc > 0) return ErrnoStatus(what, path, rc);
  return Status(StatusCode::kDataLoss, message);
}

size_t NcTypeSize(int type) {
  switch (type) {
    case NC_BYTE:
    case NC_UBYTE:
    case NC_CHAR:
      return 1;
    case NC_SHORT:
    case NC_USHORT:
      return 2;
    case NC_INT:
    case NC_UINT:
    case NC_FLOAT:
      return 4;
    case NC_INT64:
    case NC_UINT64:
    case NC_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

const char* NcTypeName(int type) {
  switch (type) {
    case NC_BYTE:
      return "byte";
    case NC_UBYTE:
      return "ubyte";
    case NC_CHAR:
      return "char";
    case NC_SHORT:
      return "short";
    case NC_USHORT:
      return "ushort";
    case NC_INT:
      return "int";
    case NC_UINT:
      return "uint";
    case NC_FLOAT:
      return "float";
    case NC_INT64:
      return "int64";
    case NC_UINT64:
      return "uint64";
    case NC_DOUBLE:
      return "double";
    case NC_STRING:
      return "string";
    default:
      return "user-defined";
  }
}

namespace {

// Reads the netCDF-3 (CDF-1/2/5) header far enough to know where the data end. netCDF-C fills
// short reads of a truncated classic file with zeros instead of failing, so without this check a
// cut-off file would ingest as silent zeros. Format: NetCDF Classic Format Specification.
class ClassicHeader {
 public:
  explicit ClassicHeader(std::vector<uint8_t> bytes) : b_(std::move(bytes)) {}

  // The smallest file size that holds every variable's data; nullopt when the header cannot be
  // parsed from the bytes at hand (netCDF-C then reports its own errors).
  std::optional<uint64_t> ExpectedSize() {
    if (b_.size() < 4 || b_[0] != 'C' || b_[1] != 'D' || b_[2] != 'F') return std::nullopt;
    version_ = b_[3];
    if (version_ != 1 && version_ != 2 && version_ != 5) return std::nullopt;
    pos_ = 4;
    uint64_t numrecs = 0;
    if (!NonNeg(&numrecs)) return std::nullopt;
    if (version_ != 5 && numrecs == 0xFFFFFFFFull) return std::nullopt;  // streaming
    std::vector<uint64_t> dim_lens;
    uint64_t tag = 0, n = 0;
    if (!Word(&tag) || !NonNeg(&n)) return std::nullopt;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t len = 0;
      if (!Name() || !NonNeg(&len)) return std::nullopt;
      dim_lens.push_back(len);
    }
    if (!AttrList()) return std::nullopt;
    if (!Word(&tag) || !NonNeg(&n)) return std::nullopt;
    uint64_t fixed_end = 0, rec_begin = UINT64_MAX, rec_size = 0, rec_vars = 0, rec_unpadded = 0;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t ndims = 0;
      if (!Name() || !NonNeg(&ndims)) return std::nullopt;
      bool is_record = false;
      uint64_t elems = 1;
      for (uint64_t d = 0; d < ndims; ++d) {
        uint64_t dimid = 0;
        if (!NonNeg(&dimid) || dimid >= dim_lens.size()) return std::nullopt;
        if (d == 0 && dim_lens[dimid] == 0) {
          is_record = true;
        } else {
          elems *= dim_lens[dimid];
        }
      }
      uint64_t type = 0, vsize = 0, begin = 0;
      if (!AttrList() || !Word(&type) || !NonNeg(&vsize)) return std::nullopt;
      if (!(version_ == 1 ? Word(&begin) : Big(8, &begin))) return std::nullopt;
      if (is_record) {
        rec_begin = std::min(rec_begin, begin);
        rec_size += vsize;
        rec_unpadded = elems * NcTypeSize(static_cast<int>(type));
        ++rec_vars;
      } else {
        // vsize is padded to 4 bytes; the last variable's padding may be absent.
        fixed_end = std::max(fixed_end, begin + elems * NcTypeSize(static_cast<int>(type)));
      }
    }
    uint64_t end = fixed_end;
    if (rec_vars > 0 && numrecs > 0) {
      if (rec_vars == 1) rec_size = rec_unpadded;  // a lone record variable is not padded
      end = std::max(end, rec_begin + numrecs * rec_size - (rec_vars == 1 ? 0 : 3));
    }
    return end;
  }

 private:
  bool Big(int bytes, uint64_t* out) {
    if (pos_ + bytes > b_.size()) return false;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | b_[pos_ + i];
    pos_ += bytes;
    *out = v;
    return true;
  }
  bool Word(uint64_t* out) { return Big(4, out); }
  bool NonNeg(uint64_t* out) { return Big(version_ == 5 ? 8 : 4, out); }
  bool Skip(uint64_t bytes) {
    const uint64_t padded = (bytes + 3) / 4 * 4;
    if (pos_ + padded > b_.size()) return false;
    pos_ += padded;
    return true;
  }
  bool Name() {
    uint64_t len = 0;
    return NonNeg(&len) && Skip(len);
  }
  bool AttrList() {
    uint64_t tag = 0, n = 0;
    if (!Word(&tag) || !NonNeg(&n)) return false;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t type = 0, count = 0;
      if (!Name() || !Word(&type) || !NonNeg(&count)) return false;
      const size_t size = NcTypeSize(static_cast<int>(type));
      if (size == 0) return false;
      if (!Skip(count * size)) return false;
    }
    return true;
  }

  std::vector<uint8_t> b_;
  size_t pos_ = 0;
  int version_ = 0;
};

// DataLoss when a classic-format file is shorter than its header says.
Status CheckClassicSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // Headers are small; 16 MiB covers files with very many variables and attributes.
  const uint64_t header_bytes = std::min<uint64_t>(size, 16ull << 20);
  std::vector<uint8_t> bytes(header_bytes);
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    return ErrnoStatus("read", path, errno);
  }
  ClassicHeader header(std::move(bytes));
  const auto expected = header.ExpectedSize();
  if (expected && size < *expected) {
    return DataLoss(path, ": truncated: its netCDF header places data up to byte ", *expected,
                    " but the file has ", size, " bytes");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<NcFile>> NcFile::Open(const std::string& path) {
  std::unique_ptr<NcFile> file;
  int format = 0;
  // Every netCDF call under the lock; `file` (whose destructor takes the lock to close) is only
  // destroyed after the lock is released.
  const Status opened = [&]() -> Status {
    std::lock_guard<std::mutex> lock(NetcdfMutex());
    int ncid = -1;
    int rc = nc_open(path.c_str(), NC_NOWRITE, &ncid);
    if (rc != NC_NOERR) {
      if (rc == ENOENT) return NotFound(path, ": no such file");
      Status s = NcStatus(rc, path, "cannot open as netCDF (damaged or truncated header?)");
      if (s.code() != StatusCode::kResourceExhausted) {
        s = Status(StatusCode::kDataLoss, s.message());
      }
      return s;
    }
    file.reset(new NcFile(path, ncid));
    rc = nc_inq_format(ncid, &format);
    if (rc != NC_NOERR) return NcStatus(rc, path, "inquiring the format");
    switch (format) {
      case NC_FORMAT_CLASSIC:
        file->format_ = "classic";
        break;
      case NC_FORMAT_64BIT_OFFSET:
        file->format_ = "64bit_offset";
        break;
      case NC_FORMAT_CDF5:
        file->format_ = "cdf5";
        break;
      case NC_FORMAT_NETCDF4:
        file->format_ = "netcdf4";
        break;
      case NC_FORMAT_NETCDF4_CLASSIC:
        file->format_ = "netcdf4_classic";
        break;
      default:
        file->format_ = "unknown";
        break;
    }
    int nvars = 0;
    rc = nc_inq_nvars(ncid, &nvars);
    if (rc != NC_NOERR) return NcStatus(rc, path, "listing variables");
    for (int v = 0; v < nvars; ++v) {
      char name[NC_MAX_NAME + 1] = {0};
      rc = nc_inq_varname(ncid, v, name);
      if (rc != NC_NOERR) return NcStatus(rc, path, StrCat("reading the name of variable ", v));
      file->variable_names_.emplace_back(name);
    }
    return Status::Ok();
  }();
  TS_RETURN_IF_ERROR(opened);
  if (format == NC_FORMAT_CLASSIC || format == NC_FORMAT_64BIT_OFFSET || format == NC_FORMAT_CDF5) {
    TS_RETURN_IF_ERROR(CheckClassicSize(path));
  }
  return file;
}

NcFile::~NcFile() {
  if (ncid_ >= 0) {
    std::lock_guard<std::mutex> lock(NetcdfMutex());
    nc_close(ncid_);
  }
}

std::optional<NcVarInfo> NcFile::Find(const std::string& name) const {
  auto info = Inquire(name);
  if (!info.ok()) return std::nullopt;
  return std::move(info).value();
}

Result<NcVarInfo> NcFile::Inquire(const std::string& name) const {
  std::lock_guard<std::mutex> lock(NetcdfMutex());
  NcVarInfo info;
  info.name = name;
  int rc = nc_inq_varid(ncid_, name.c_str(), &info.varid);
  if (rc == NC_ENOTVAR) {
    std::string all;
    for (const auto& n : variable_names_) all += (all.empty() ? "" : ", ") + n;
    return NotFound(path_, ": no variable \"", name, "\" (variables: ", all, ")");
  }
  if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("looking up variable ", name));
  int ndims = 0;
  nc_type type = 0;
  rc = nc_inq_var(ncid_, info.varid, nullptr, &type, &ndims, nullptr, nullptr);
  if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("inquiring variable ", name));
  info.type = type;
  info.dimids.resize(ndims);
  rc = nc_inq_vardimid(ncid_, info.varid, info.dimids.data());
  if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("dimensions of variable ", name));
  for (int d : info.dimids) {
    char dim_name[NC_MAX_NAME + 1] = {0};
    size_t len = 0;
    rc = nc_inq_dim(ncid_, d, dim_name, &len);
    if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("dimension of variable ", name));
    info.dim_names.emplace_back(dim_name);
    info.dim_lens.push_back(len);
  }
  return info;
}

Result<std::optional<std::string>> NcFile::TextAttr(int varid, const std::string& name) const {
  std::lock_guard<std::mutex> lock(NetcdfMutex());
  nc_type type = 0;
  size_t len = 0;
  int rc = nc_inq_att(ncid_, varid, name.c_str(), &type, &len);
  if (rc == NC_ENOTATT) return std::optional<std::string>();
  if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("attribute ", name));
  if (type == NC_CHAR) {
    std::string value(len, '\0');
    rc = nc_get_att_text(ncid_, varid, name.c_str(), value.data());
    if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("reading attribute ", name));
    while (!value.empty() && value.back() == '\0') value.pop_back();
    return std::optional<std::string>(std::move(value));
  }
  if (type == NC_STRING && len >= 1) {
    std::vector<char*> values(len, nullptr);
    rc = nc_get_att_string(ncid_, varid, name.c_str(), values.data());
    if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("reading attribute ", name));
    std::string value = values[0] ? values[0] : "";
    nc_free_string(len, values.data());
    return std::optional<std::string>(std::move(value));
  }
  return InvalidArgument(path_, ": attribute ", name, " is ", NcTypeName(type), ", expected text");
}

Result<std::optional<std::vector<double>>> NcFile::NumAttr(int varid,
                                                           const std::string& name) const {
  std::lock_guard<std::mutex> lock(NetcdfMutex());
  nc_type type = 0;
  size_t len = 0;
  int rc = nc_inq_att(ncid_, varid, name.c_str(), &type, &len);
  if (rc == NC_ENOTATT) return std::optional<std::vector<double>>();
  if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("attribute ", name));
  if (type == NC_CHAR || type == NC_STRING || NcTypeSize(type) == 0) {
    return InvalidArgument(path_, ": attribute ", name, " is ", NcTypeName(type),
                           ", expected a number");
  }
  std::vector<double> values(len);
  if (len > 0) {
    // 64-bit integers beyond 2^53 lose precision as doubles; fill values that large are not
    // representable in the float output anyway.
    rc = nc_get_att_double(ncid_, varid, name.c_str(), values.data());
    if (rc != NC_NOERR && rc != NC_ERANGE) {
      return NcStatus(rc, path_, StrCat("reading attribute ", name));
    }
  }
  return std::optional<std::vector<double>>(std::move(values));
}

Status NcFile::ReadRaw(const NcVarInfo& var, const std::vector<size_t>& start,
                       const std::vector<size_t>& count, void* out) const {
  std::lock_guard<std::mutex> lock(NetcdfMutex());
  const int rc = nc_get_vara(ncid_, var.varid, start.data(), count.data(), out);
  if (rc != NC_NOERR) {
    std::string where = "reading " + var.name + " [";
    for (size_t i = 0; i < start.size(); ++i) {
      where += StrCat(i ? "," : "", start[i], ":", start[i] + count[i]);
    }
    where += "]";
    Status s = NcStatus(rc, path_, where);
    // A short read of a netCDF-3 file ends in a generic error; it is still lost data.
    if (s.code() == StatusCode::kIOError) s = Status(StatusCode::kDataLoss, s.message());
    return s;
  }
  return Status::Ok();
}

Result<std::vector<double>> NcFile::ReadAllDouble(const NcVarInfo& var) const {
  const size_t n =
      std::accumulate(var.dim_lens.begin(), var.dim_lens.end(), size_t{1}, std::multiplies<>());
  std::vector<double> values(n);
  std::lock_guard<std::mutex> lock(NetcdfMutex());
  if (n == 0) return values;
  const int rc = nc_get_var_double(ncid_, var.varid, values.data());
  if (rc != NC_NOERR && rc != NC_ERANGE) {
    return NcStatus(rc, path_, StrCat("reading variable ", var.name));
  }
  return values;
}

}  // namespace tilestage::ingest
