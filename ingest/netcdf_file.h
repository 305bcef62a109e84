// NcFile: a thin RAII handle over one netCDF-C file (any format: classic, 64-bit offset, CDF-5,
// netCDF-4/HDF5), turning netCDF-C errors into Status messages that name the file, the variable
// and the problem.
//
// Thread-safety: netCDF-C (and the HDF5 library below it) is not thread-safe, so every call into
// it, from every NcFile in the process, holds one process-wide mutex (NetcdfMutex()). NcFile
// methods may therefore be called from any thread, but they serialize; callers that want
// parallelism read raw bytes here and decode them elsewhere without the lock.
//
// Direct reads: where a variable's bytes lie in the file as one plain strided array (netCDF-3
// classic/64-bit offset/CDF-5, and contiguous unfiltered netCDF-4 variables), DirectLayout()
// says where, and ReadDirect() reads them with pread on the file's own descriptor: no netCDF-C
// call and no lock, so any number of threads read at once. Everything else (chunked or filtered
// netCDF-4 data, ...) stays on ReadRaw(), the netCDF-C path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::ingest {

// The one lock held around every netCDF-C call in this process.
std::mutex& NetcdfMutex();

// Status for a netCDF-C return code: "<path>: <what>: <nc_strerror(rc)>". Out-of-memory codes
// map to ResourceExhausted, "not a netCDF file"/HDF5/truncation codes to DataLoss, the rest to
// IOError. Call only with rc != NC_NOERR.
Status NcStatus(int rc, const std::string& path, const std::string& what);

struct NcVarInfo {
  std::string name;
  int varid = -1;
  int type = 0;  // nc_type
  std::vector<int> dimids;
  std::vector<std::string> dim_names;
  std::vector<size_t> dim_lens;
};

struct NcClassicHeader;  // a parsed netCDF-3 header (netcdf_file.cc)

// Where one variable's values lie in its file, for reads that bypass netCDF-C.
struct NcDirectLayout {
  bool direct = false;
  std::string reason;   // why not direct ("chunked", "filtered", ...); empty when direct
  uint64_t offset = 0;  // byte offset of element [0, ..., 0]
  size_t element_bytes = 0;
  bool big_endian = false;  // byte order on disk (netCDF-3: always big-endian)
  // Bytes between consecutive indices of each dimension; along a netCDF-3 record dimension the
  // record size (record variables interleave record by record).
  std::vector<uint64_t> stride_bytes;

  // "direct" or "netCDF library (<reason>)" for manifests.
  std::string Describe() const;
};

class NcFile {
 public:
  // Opens read-only. A damaged or truncated header is DataLoss naming the file.
  static Result<std::unique_ptr<NcFile>> Open(const std::string& path);
  ~NcFile();
  NcFile(const NcFile&) = delete;
  NcFile& operator=(const NcFile&) = delete;

  const std::string& path() const { return path_; }
  // "classic", "64bit_offset", "cdf5", "netcdf4", "netcdf4_classic".
  const std::string& format() const { return format_; }
  const std::vector<std::string>& variable_names() const { return variable_names_; }

  // NotFound "<path>: no variable \"x\" (variables: a, b, c)" when absent.
  Result<NcVarInfo> Inquire(const std::string& name) const;
  // nullopt when no such variable.
  std::optional<NcVarInfo> Find(const std::string& name) const;
  // Attribute of a variable (varid NC_GLOBAL for global ones). nullopt when absent; an attribute
  // of the wrong kind (text vs numeric) is InvalidArgument naming it.
  Result<std::optional<std::string>> TextAttr(int varid, const std::string& name) const;
  Result<std::optional<std::vector<double>>> NumAttr(int varid, const std::string& name) const;
  // Every attribute of a variable as JSON: text as a string, one number as a number, several as
  // an array (for manifests: a grid_mapping variable's projection parameters).
  Result<nlohmann::json> AllAttrs(int varid) const;
  // Reads a hyperslab in the variable's own type (nc_get_vara) into out, which must hold
  // prod(count) elements of that type.
  Status ReadRaw(const NcVarInfo& var, const std::vector<size_t>& start,
                 const std::vector<size_t>& count, void* out) const;
  // A whole variable converted to double (coordinates).
  Result<std::vector<double>> ReadAllDouble(const NcVarInfo& var) const;

  // Whether var can be read directly, and where its bytes are. Not being direct is not an error
  // (layout.direct is false and layout.reason says why); data that run past the end of the file
  // are DataLoss naming the file and the variable ("truncated").
  Result<NcDirectLayout> DirectLayout(const NcVarInfo& var) const;
  // The same hyperslab as ReadRaw (same output order and native byte order), read with pread
  // through a layout from DirectLayout(var). Lock-free. A short read is DataLoss naming the file,
  // the variable, the hyperslab and the byte offset; a failed read is IOError.
  Status ReadDirect(const NcDirectLayout& layout, const NcVarInfo& var,
                    const std::vector<size_t>& start, const std::vector<size_t>& count,
                    void* out) const;

 private:
  NcFile(std::string path, int ncid) : path_(std::move(path)), ncid_(ncid) {}
  Result<NcDirectLayout> ClassicLayout(const NcVarInfo& var) const;
  Result<NcDirectLayout> Hdf5Layout(const NcVarInfo& var) const;  // NetcdfMutex held

  std::string path_;
  int ncid_ = -1;
  int fd_ = -1;              // for direct reads; -1 when it could not be opened
  uint64_t file_bytes_ = 0;  // size when opened
  std::shared_ptr<const NcClassicHeader> classic_;  // netCDF-3 formats, when the header parsed
  std::string format_;
  std::vector<std::string> variable_names_;
};

// Size in bytes of one element of nc_type type; 0 for types tilestage does not read (strings,
// compound, vlen...).
size_t NcTypeSize(int type);
const char* NcTypeName(int type);

}  // namespace tilestage::ingest
