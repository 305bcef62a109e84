#include "ingest/netcdf_file.h"

#include <fcntl.h>
#include <netcdf.h>
#include <netcdf_filter.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <span>

#include "ingest/hdf5_util.h"
#include "tiling/codec.h"
#include "tiling/storage.h"

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

// A netCDF-3 (CDF-1/2/5) header, parsed far enough to know where every variable's data lie
// (NetCDF Classic Format Specification). It gives two things netCDF-C does not: the size the file
// must have (netCDF-C fills short reads of a truncated classic file with zeros instead of failing,
// so without this check a cut-off file would ingest as silent zeros) and each variable's begin
// offset for direct reads.
struct NcClassicHeader {
  struct Var {
    std::string name;
    int type = 0;  // nc_type
    bool is_record = false;
    std::vector<uint64_t> dim_lens;  // the record dimension as the number of records
    uint64_t begin = 0;              // file offset of element 0 (of record 0)
    uint64_t bytes = 0;  // unpadded bytes of the variable, of one record for record variables
  };
  uint64_t numrecs = 0;
  uint64_t recsize = 0;        // bytes from one record to the next
  std::vector<Var> vars;       // in variable id order
  uint64_t expected_size = 0;  // the smallest file size that holds every variable's data
};

namespace {

uint64_t Padded4(uint64_t bytes) { return (bytes + 3) / 4 * 4; }

class ClassicHeaderParser {
 public:
  explicit ClassicHeaderParser(std::span<const uint8_t> bytes) : b_(bytes) {}

  // nullopt when the header cannot be parsed from the bytes at hand (netCDF-C then reports its
  // own errors, and reads stay on the library path).
  std::optional<NcClassicHeader> Parse() {
    if (b_.size() < 4 || b_[0] != 'C' || b_[1] != 'D' || b_[2] != 'F') return std::nullopt;
    version_ = b_[3];
    if (version_ != 1 && version_ != 2 && version_ != 5) return std::nullopt;
    pos_ = 4;
    NcClassicHeader h;
    if (!NonNeg(&h.numrecs)) return std::nullopt;
    if (version_ != 5 && h.numrecs == 0xFFFFFFFFull) return std::nullopt;  // streaming
    std::vector<uint64_t> dim_lens;
    uint64_t tag = 0, n = 0;
    if (!Word(&tag) || !NonNeg(&n)) return std::nullopt;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t len = 0;
      if (!Name(nullptr) || !NonNeg(&len)) return std::nullopt;
      dim_lens.push_back(len);
    }
    if (std::count(dim_lens.begin(), dim_lens.end(), 0) > 1) return std::nullopt;  // one unlimited
    if (!AttrList()) return std::nullopt;
    if (!Word(&tag) || !NonNeg(&n)) return std::nullopt;
    uint64_t fixed_end = 0;
    std::optional<size_t> first_record;
    for (uint64_t i = 0; i < n; ++i) {
      NcClassicHeader::Var v;
      uint64_t ndims = 0;
      if (!Name(&v.name) || !NonNeg(&ndims)) return std::nullopt;
      uint64_t elems = 1;
      for (uint64_t d = 0; d < ndims; ++d) {
        uint64_t dimid = 0;
        if (!NonNeg(&dimid) || dimid >= dim_lens.size()) return std::nullopt;
        // The record dimension (length 0 in the list) may only come first, as the format says.
        if (d > 0 && dim_lens[dimid] == 0) return std::nullopt;
        if (d == 0 && dim_lens[dimid] == 0) {
          v.is_record = true;
          v.dim_lens.push_back(h.numrecs);
        } else {
          v.dim_lens.push_back(dim_lens[dimid]);
          elems *= dim_lens[dimid];
        }
      }
      uint64_t type = 0, vsize = 0;
      if (!AttrList() || !Word(&type) || !NonNeg(&vsize)) return std::nullopt;
      if (!(version_ == 1 ? Word(&v.begin) : Big(8, &v.begin))) return std::nullopt;
      v.type = static_cast<int>(type);
      // An unknown type has no size; netCDF-C divides by it (a SIGFPE the header fuzzer found).
      if (type > NC_MAX_ATOMIC_TYPE || NcTypeSize(v.type) == 0) return std::nullopt;
      v.bytes = elems * NcTypeSize(v.type);
      if (v.is_record) {
        // vsize is this padded size too, but it saturates for huge variables: compute it.
        h.recsize += Padded4(v.bytes);
        if (!first_record) first_record = h.vars.size();
      } else {
        // vsize is padded to 4 bytes; the last variable's padding may be absent.
        fixed_end = std::max(fixed_end, v.begin + v.bytes);
      }
      h.vars.push_back(std::move(v));
    }
    h.expected_size = fixed_end;
    if (first_record) {
      // As netCDF-C (NC_computeshapes): a lone record variable is not padded.
      const NcClassicHeader::Var& first = h.vars[*first_record];
      if (h.recsize == Padded4(first.bytes)) h.recsize = first.bytes;
      for (const auto& v : h.vars) {
        if (v.is_record && h.numrecs > 0) {
          h.expected_size =
              std::max(h.expected_size, v.begin + (h.numrecs - 1) * h.recsize + v.bytes);
        }
      }
    }
    return h;
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
    const uint64_t padded = Padded4(bytes);
    if (bytes > b_.size() || pos_ + padded > b_.size()) return false;
    pos_ += padded;
    return true;
  }
  bool Name(std::string* name) {
    uint64_t len = 0;
    if (!NonNeg(&len)) return false;
    const size_t at = pos_;
    if (!Skip(len)) return false;
    if (name) name->assign(reinterpret_cast<const char*>(b_.data() + at), len);
    return true;
  }
  bool AttrList() {
    uint64_t tag = 0, n = 0;
    if (!Word(&tag) || !NonNeg(&n)) return false;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t type = 0, count = 0;
      if (!Name(nullptr) || !Word(&type) || !NonNeg(&count)) return false;
      const size_t size = NcTypeSize(static_cast<int>(type));
      if (size == 0 || count > b_.size()) return false;
      if (!Skip(count * size)) return false;
    }
    return true;
  }

  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  int version_ = 0;
};

std::string Hyperslab(const std::vector<size_t>& start, const std::vector<size_t>& count) {
  std::string out = "[";
  for (size_t i = 0; i < start.size(); ++i) {
    out += StrCat(i ? "," : "", start[i], ":", start[i] + count[i]);
  }
  return out + "]";
}

NcDirectLayout NotDirect(std::string reason) {
  NcDirectLayout layout;
  layout.reason = std::move(reason);
  return layout;
}

bool IsClassicFormat(const std::string& format) {
  return format == "classic" || format == "64bit_offset" || format == "cdf5";
}

// Headers are small: nearly all fit the first read. A header the first read does not hold is read
// again with twice the bytes, up to 16 MiB (files with very many variables and attributes).
constexpr uint64_t kFirstClassicHeaderBytes = 64 << 10;
constexpr uint64_t kMaxClassicHeaderBytes = 16ull << 20;

// The netCDF-3 header of the file at path, read and checked before netCDF-C sees it: netCDF-C
// (4.9.0) trusts a header, so a damaged one makes nc_open read out of bounds, divide by zero (an
// unknown variable type) or allocate gigabytes; Debian's ncdump crashes on such files too.
// DataLoss naming the file when a name, count, length, type or dimension is not what the format
// allows. nullopt, left to netCDF-C, for what is not netCDF-3 (netCDF-4, not netCDF at all, a
// missing file), an unknown version, and streaming files (record count not written), which the
// parser does not handle.
Result<std::optional<NcClassicHeader>> ReadClassicHeader(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::optional<NcClassicHeader>();
  const struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  const uint64_t file_bytes = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  std::vector<uint8_t> bytes;
  // The first min(n, file size) bytes into `bytes`; false (errno set) when the read fails.
  const auto read_first = [&](uint64_t n) {
    bytes.resize(std::min(n, file_bytes));
    const int64_t got = PreadFull(fd, bytes.data(), bytes.size(), 0);
    if (got < 0) return false;
    bytes.resize(static_cast<size_t>(got));
    return true;
  };
  if (!read_first(kFirstClassicHeaderBytes)) return ErrnoStatus("read", path, errno);
  const auto at = [&](size_t i) { return i < bytes.size() ? bytes[i] : 0; };
  const bool classic =
      at(0) == 'C' && at(1) == 'D' && at(2) == 'F' && (at(3) == 1 || at(3) == 2 || at(3) == 5);
  const bool streaming =
      at(3) != 5 && at(4) == 0xFF && at(5) == 0xFF && at(6) == 0xFF && at(7) == 0xFF;
  if (!classic || streaming) return std::optional<NcClassicHeader>();
  std::optional<NcClassicHeader> header = ClassicHeaderParser(bytes).Parse();
  for (uint64_t n = 2 * kFirstClassicHeaderBytes;
       !header && bytes.size() < file_bytes && n <= kMaxClassicHeaderBytes; n *= 2) {
    if (!read_first(n)) return ErrnoStatus("read", path, errno);
    header = ClassicHeaderParser(bytes).Parse();
  }
  if (!header) {
    return DataLoss(path, ": damaged netCDF-3 header: a name, count, length, type or dimension ",
                    "in its first ", bytes.size(), " bytes is not what the format allows");
  }
  return header;
}

}  // namespace

std::string NcDirectLayout::Describe() const {
  return direct ? std::string("direct") : "netCDF library (" + reason + ")";
}

Result<std::unique_ptr<NcFile>> NcFile::Open(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return InvalidArgument(path, ": is a directory, not a netCDF file");
  TS_ASSIGN_OR_RETURN(std::optional<NcClassicHeader> header, ReadClassicHeader(path));
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
  // The file's own descriptor, for direct reads (pread is thread-safe on a shared descriptor).
  file->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd_ < 0) return ErrnoStatus("open", path, errno);
  struct stat st;
  if (::fstat(file->fd_, &st) != 0) return ErrnoStatus("stat", path, errno);
  file->file_bytes_ = static_cast<uint64_t>(st.st_size);
  if (IsClassicFormat(file->format_) && header) {
    if (file->file_bytes_ < header->expected_size) {
      return DataLoss(path, ": truncated: its netCDF header places data up to byte ",
                      header->expected_size, " but the file has ", file->file_bytes_, " bytes");
    }
    file->classic_ = std::make_shared<const NcClassicHeader>(std::move(*header));
  }
  return file;
}

NcFile::~NcFile() {
  if (fd_ >= 0) ::close(fd_);
  if (ncid_ >= 0) {
    std::lock_guard<std::mutex> lock(NetcdfMutex());
    nc_close(ncid_);
  }
}

Result<NcDirectLayout> NcFile::DirectLayout(const NcVarInfo& var) const {
  const size_t element_bytes = NcTypeSize(var.type);
  if (element_bytes == 0 || var.type == NC_CHAR) {
    return NotDirect(StrCat("type ", NcTypeName(var.type)));
  }
  NcDirectLayout layout;
  if (IsClassicFormat(format_)) {
    TS_ASSIGN_OR_RETURN(layout, ClassicLayout(var));
  } else if (format_ == "netcdf4" || format_ == "netcdf4_classic") {
    std::lock_guard<std::mutex> lock(NetcdfMutex());
    TS_ASSIGN_OR_RETURN(layout, Hdf5Layout(var));
  } else {
    return NotDirect("format " + format_);
  }
  if (!layout.direct) return layout;
  if (layout.element_bytes != element_bytes || layout.stride_bytes.size() != var.dim_lens.size() ||
      layout.stride_bytes.empty()) {
    return NotDirect("layout not understood");
  }
  uint64_t end = layout.offset + element_bytes;
  for (size_t d = 0; d < var.dim_lens.size(); ++d) {
    if (var.dim_lens[d] == 0) return NotDirect("no data");
    end += (var.dim_lens[d] - 1) * layout.stride_bytes[d];
  }
  if (end > file_bytes_) {
    return DataLoss(path_, ": truncated: variable ", var.name, " has data up to byte ", end,
                    " but the file has ", file_bytes_, " bytes");
  }
  return layout;
}

Result<NcDirectLayout> NcFile::ClassicLayout(const NcVarInfo& var) const {
  if (!classic_) return NotDirect("netCDF-3 header not parsed");
  if (var.varid < 0 || static_cast<size_t>(var.varid) >= classic_->vars.size()) {
    return NotDirect("variable not in the parsed header");
  }
  const NcClassicHeader::Var& v = classic_->vars[static_cast<size_t>(var.varid)];
  const std::vector<uint64_t> lens(var.dim_lens.begin(), var.dim_lens.end());
  if (v.name != var.name || v.type != var.type || v.dim_lens != lens) {
    return NotDirect("parsed header disagrees with netCDF-C");
  }
  NcDirectLayout layout;
  layout.direct = true;
  layout.offset = v.begin;
  layout.element_bytes = NcTypeSize(var.type);
  layout.big_endian = true;
  layout.stride_bytes.resize(lens.size());
  uint64_t stride = layout.element_bytes;
  for (size_t d = lens.size(); d-- > 0;) {
    if (d == 0 && v.is_record) {
      layout.stride_bytes[d] = classic_->recsize;
    } else {
      layout.stride_bytes[d] = stride;
      stride *= lens[d];
    }
  }
  return layout;
}

Result<NcDirectLayout> NcFile::Hdf5Layout(const NcVarInfo& var) const {
  int storage = 0;
  if (nc_inq_var_chunking(ncid_, var.varid, &storage, nullptr) != NC_NOERR) {
    return NotDirect("storage unknown");
  }
  if (storage != NC_CONTIGUOUS) return NotDirect(storage == NC_CHUNKED ? "chunked" : "compact");
  size_t num_filters = 0;
  if (nc_inq_var_filter_ids(ncid_, var.varid, &num_filters, nullptr) != NC_NOERR ||
      num_filters != 0) {
    return NotDirect("filtered");
  }
  // Ask HDF5 where the bytes are. H5Fopen of a file netCDF-C already has open shares that open
  // file; closing our ids leaves netCDF-C's handle alone. Lock order: NetcdfMutex, Hdf5Mutex.
  Hdf5Lock hdf5_lock;
  Hid file(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) return NotDirect("HDF5 cannot open the file");
  Hid fcpl(H5Fget_create_plist(file.get()));
  hsize_t userblock = 0;
  if (!fcpl.valid() || H5Pget_userblock(fcpl.get(), &userblock) < 0 || userblock != 0) {
    return NotDirect("HDF5 user block");
  }
  // Variables in groups are not read by tilestage; this is the root group's dataset. netCDF-C
  // stores a variable named like a dimension it is not the coordinate of under a prefix (the
  // plain name then belongs to the dimension scale).
  std::string dataset_name = "/_nc4_non_coord_" + var.name;
  if (H5Lexists(file.get(), dataset_name.c_str(), H5P_DEFAULT) <= 0) dataset_name = "/" + var.name;
  Hid dataset(H5Dopen2(file.get(), dataset_name.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) return NotDirect("no HDF5 dataset of that name");
  Hid dcpl(H5Dget_create_plist(dataset.get()));
  if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS ||
      H5Pget_nfilters(dcpl.get()) != 0 || H5Pget_external_count(dcpl.get()) != 0) {
    return NotDirect("HDF5 layout not contiguous");
  }
  const haddr_t address = H5Dget_offset(dataset.get());
  if (address == HADDR_UNDEF) return NotDirect("not written (no storage allocated)");
  Hid space(H5Dget_space(dataset.get()));
  const int ndims = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (ndims != static_cast<int>(var.dim_lens.size())) return NotDirect("HDF5 shape differs");
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] != var.dim_lens[d]) return NotDirect("HDF5 shape differs");
  }
  Hid type(H5Dget_type(dataset.get()));
  const size_t element_bytes = NcTypeSize(var.type);
  const H5T_class_t type_class = type.valid() ? H5Tget_class(type.get()) : H5T_NO_CLASS;
  const bool is_float = var.type == NC_FLOAT || var.type == NC_DOUBLE;
  if (type_class != (is_float ? H5T_FLOAT : H5T_INTEGER) ||
      H5Tget_size(type.get()) != element_bytes ||
      H5Tget_precision(type.get()) != 8 * element_bytes || H5Tget_offset(type.get()) != 0) {
    return NotDirect("HDF5 type differs");
  }
  const H5T_order_t order = H5Tget_order(type.get());
  if (order != H5T_ORDER_LE && order != H5T_ORDER_BE) return NotDirect("byte order");
  NcDirectLayout layout;
  layout.direct = true;
  layout.offset = address;
  layout.element_bytes = element_bytes;
  layout.big_endian = order == H5T_ORDER_BE;
  layout.stride_bytes.resize(dims.size());
  uint64_t stride = element_bytes;
  for (size_t d = dims.size(); d-- > 0;) {
    layout.stride_bytes[d] = stride;
    stride *= dims[d];
  }
  return layout;
}

Status NcFile::ReadDirect(const NcDirectLayout& layout, const NcVarInfo& var,
                          const std::vector<size_t>& start, const std::vector<size_t>& count,
                          void* out) const {
  const size_t n = start.size();
  if (!layout.direct || n == 0 || count.size() != n || layout.stride_bytes.size() != n) {
    return Internal(path_, ": variable ", var.name, ": no direct layout for this read");
  }
  for (size_t c : count) {
    if (c == 0) return Status::Ok();
  }
  // Dimensions [inner, n) form one contiguous run per pread: going outwards, a dimension joins
  // while its stride is the size of the run so far, and the run stops growing at the first
  // dimension read in part. A full-width window of a [.., y, x] variable is one pread.
  size_t inner = n;
  uint64_t whole_bytes = layout.element_bytes;
  while (inner > 0 && layout.stride_bytes[inner - 1] == whole_bytes) {
    --inner;
    if (count[inner] != var.dim_lens[inner]) break;
    whole_bytes *= var.dim_lens[inner];
  }
  uint64_t run_elements = 1, base = layout.offset;
  for (size_t d = inner; d < n; ++d) {
    run_elements *= count[d];
    base += start[d] * layout.stride_bytes[d];
  }
  const uint64_t run_bytes = run_elements * layout.element_bytes;
  uint64_t runs = 1;
  for (size_t d = 0; d < inner; ++d) runs *= count[d];
  std::vector<size_t> index(inner, 0);
  uint8_t* dst = static_cast<uint8_t*>(out);
  for (uint64_t r = 0; r < runs; ++r) {
    uint64_t offset = base;
    for (size_t d = 0; d < inner; ++d) offset += (start[d] + index[d]) * layout.stride_bytes[d];
    const int64_t got = PreadFull(fd_, dst, run_bytes, offset);
    if (got < 0) {
      return IOError(path_, ": reading ", var.name, " ", Hyperslab(start, count), ": pread of ",
                     run_bytes, " bytes at byte offset ", offset, ": ", std::strerror(errno));
    }
    if (static_cast<uint64_t>(got) != run_bytes) {
      struct stat st;
      const int64_t now = ::fstat(fd_, &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
      return DataLoss(path_, ": reading ", var.name, " ", Hyperslab(start, count),
                      ": short read at byte offset ", offset, ": ", got, " of ", run_bytes,
                      " bytes (the file has ", now, " bytes; truncated?)");
    }
    dst += run_bytes;
    for (size_t d = inner; d-- > 0;) {
      if (++index[d] < count[d]) break;
      index[d] = 0;
    }
  }
  if (layout.big_endian != (std::endian::native == std::endian::big)) {
    ByteSwap({static_cast<uint8_t*>(out), runs * run_bytes}, layout.element_bytes);
  }
  return Status::Ok();
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

Result<nlohmann::json> NcFile::AllAttrs(int varid) const {
  std::vector<std::pair<std::string, bool>> names;  // name, is text
  {
    std::lock_guard<std::mutex> lock(NetcdfMutex());
    int natts = 0;
    int rc = nc_inq_varnatts(ncid_, varid, &natts);
    if (rc != NC_NOERR) return NcStatus(rc, path_, "counting attributes");
    for (int i = 0; i < natts; ++i) {
      char name[NC_MAX_NAME + 1] = {};
      nc_type type = 0;
      rc = nc_inq_attname(ncid_, varid, i, name);
      if (rc == NC_NOERR) rc = nc_inq_atttype(ncid_, varid, name, &type);
      if (rc != NC_NOERR) return NcStatus(rc, path_, StrCat("attribute ", i));
      if (type == NC_CHAR || type == NC_STRING)
        names.emplace_back(name, true);
      else if (NcTypeSize(type) != 0)
        names.emplace_back(name, false);
    }
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, text] : names) {
    if (text) {
      TS_ASSIGN_OR_RETURN(auto value, TextAttr(varid, name));
      if (value) out[name] = *value;
    } else {
      TS_ASSIGN_OR_RETURN(auto values, NumAttr(varid, name));
      if (values)
        out[name] = values->size() == 1 ? nlohmann::json(values->front()) : nlohmann::json(*values);
    }
  }
  return out;
}

Status NcFile::ReadRaw(const NcVarInfo& var, const std::vector<size_t>& start,
                       const std::vector<size_t>& count, void* out) const {
  std::lock_guard<std::mutex> lock(NetcdfMutex());
  const int rc = nc_get_vara(ncid_, var.varid, start.data(), count.data(), out);
  if (rc != NC_NOERR) {
    Status s = NcStatus(rc, path_, "reading " + var.name + " " + Hyperslab(start, count));
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
