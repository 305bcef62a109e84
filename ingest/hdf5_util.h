// Small helpers around the HDF5 C API: one process-wide lock, RAII handles, the HDF5 error stack
// as a Status, and HDF5 type <-> DType mapping.
//
// HDF5 is not to be called from several threads at once, so every HDF5 call in tilestage runs
// while holding Hdf5Lock. The lock is not recursive: take it once per call sequence and never
// call code that takes it again while holding it. Hid is a move-only owner of one hid_t; it must
// be destroyed while the lock is held (declare it inside the locked scope).
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tiling/dtype.h"
#include "tiling/status.h"

namespace tilestage::ingest {

// The one mutex serializing HDF5 calls in this process.
std::mutex& Hdf5Mutex();

// Locks Hdf5Mutex and switches off HDF5's automatic error printing for this thread (the error
// stack is per thread in thread-safe builds); errors are read back with Hdf5Error.
class Hdf5Lock {
 public:
  Hdf5Lock();
  Hdf5Lock(const Hdf5Lock&) = delete;
  Hdf5Lock& operator=(const Hdf5Lock&) = delete;

 private:
  std::lock_guard<std::mutex> guard_;
};

// Owns one HDF5 identifier (file, group, dataset, dataspace, type, property list, attribute)
// and closes it with H5Idec_ref. Call only while holding Hdf5Lock.
class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  Hid(Hid&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      Reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  ~Hid() { Reset(); }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void Reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// The current thread's HDF5 error stack, innermost first, as one line
// ("H5Dread: can't read data; ... "). Empty when the stack is empty. Clears the stack.
std::string Hdf5ErrorStack();

// A Status for a failed HDF5 call: "<what>: <error stack>". `code` is the tilestage code to use;
// DataLoss replaces it when the stack says the file is truncated or a checksum failed.
Status Hdf5Error(StatusCode code, const std::string& what);

// The tilestage dtype of an HDF5 file type (integer or float, any byte order); InvalidArgument
// naming `where` for other classes (compound, string, ...).
Result<DType> DTypeFromHdf5(hid_t file_type, const std::string& where);
// The native in-memory HDF5 type for a dtype (H5T_NATIVE_UINT16, ...): HDF5 converts byte order
// while reading into it. The returned id is a library constant: do not close it.
hid_t NativeHdf5Type(DType dtype);

// Debian package that provides the HDF5 plugin for a filter id ("bitshuffle" for 32008), or an
// empty string when unknown.
std::string FilterPackage(H5Z_filter_t id);
// Human name of a filter id ("deflate", "bitshuffle", "blosc", ...).
std::string FilterName(H5Z_filter_t id);

}  // namespace tilestage::ingest
