#include "ingest/hdf5_util.h"

#include <algorithm>

namespace tilestage::ingest {

std::mutex& Hdf5Mutex() {
  static std::mutex mu;
  return mu;
}

Hdf5Lock::Hdf5Lock() : guard_(Hdf5Mutex()) { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

void Hid::Reset() {
  if (id_ >= 0) H5Idec_ref(id_);
  id_ = H5I_INVALID_HID;
}

namespace {

herr_t CollectError(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* lines = static_cast<std::vector<std::string>*>(data);
  char minor[256] = {0};
  if (H5Eget_msg(err->min_num, nullptr, minor, sizeof(minor)) < 0) minor[0] = '\0';
  std::string line = err->func_name ? err->func_name : "?";
  line += ": ";
  line += err->desc ? err->desc : "";
  if (minor[0] != '\0') {
    line += " (";
    line += minor;
    line += ")";
  }
  lines->push_back(std::move(line));
  return 0;
}

}  // namespace

std::string Hdf5ErrorStack() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, CollectError, &lines);
  H5Eclear2(H5E_DEFAULT);
  // Innermost first: the deepest frame usually says what actually went wrong.
  std::reverse(lines.begin(), lines.end());
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

Status Hdf5Error(StatusCode code, const std::string& what) {
  std::string stack = Hdf5ErrorStack();
  if (stack.find("truncated") != std::string::npos || stack.find("checksum") != std::string::npos ||
      stack.find("addr overflow") != std::string::npos) {
    code = StatusCode::kDataLoss;
  }
  return Status(code, stack.empty() ? what : what + ": " + stack);
}

Result<DType> DTypeFromHdf5(hid_t file_type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(file_type);
  const size_t size = H5Tget_size(file_type);
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(file_type) == H5T_SGN_2;
    switch (size) {
      case 1:
        return is_signed ? DType::kI8 : DType::kU8;
      case 2:
        return is_signed ? DType::kI16 : DType::kU16;
      case 4:
        return is_signed ? DType::kI32 : DType::kU32;
      default:
        break;
    }
    return InvalidArgument(where, ": ", is_signed ? "signed" : "unsigned", " integer of ", size,
                           " bytes is not supported (u8 i8 u16 i16 u32 i32 f32 f64)");
  }
  if (cls == H5T_FLOAT) {
    if (size == 4) return DType::kF32;
    if (size == 8) return DType::kF64;
    return InvalidArgument(where, ": float of ", size, " bytes is not supported (f32, f64)");
  }
  return InvalidArgument(where, ": HDF5 type class ", static_cast<int>(cls),
                         " is not a number (integer or float datasets only)");
}

hid_t NativeHdf5Type(DType dtype) {
  switch (dtype) {
    case DType::kU8:
      return H5T_NATIVE_UINT8;
    case DType::kI8:
      return H5T_NATIVE_INT8;
    case DType::kU16:
      return H5T_NATIVE_UINT16;
    case DType::kI16:
      return H5T_NATIVE_INT16;
    case DType::kU32:
      return H5T_NATIVE_UINT32;
    case DType::kI32:
      return H5T_NATIVE_INT32;
    case DType::kF32:
      return H5T_NATIVE_FLOAT;
    case DType::kF64:
      break;
  }
  return H5T_NATIVE_DOUBLE;
}

std::string FilterPackage(H5Z_filter_t id) {
  switch (id) {
    case 32008:  // bitshuffle (+LZ4)
    case 32000:  // LZF
      return "bitshuffle";
    case 32001:  // Blosc
      return "hdf5-filter-plugin-blosc-serial";
    case 32004:  // LZ4
    case 307:    // bzip2
      return "hdf5-filter-plugin";
    default:
      break;
  }
  return "";
}

std::string FilterName(H5Z_filter_t id) {
  switch (id) {
    case H5Z_FILTER_DEFLATE:
      return "deflate";
    case H5Z_FILTER_SHUFFLE:
      return "shuffle";
    case H5Z_FILTER_FLETCHER32:
      return "fletcher32";
    case H5Z_FILTER_SZIP:
      return "szip";
    case H5Z_FILTER_NBIT:
      return "nbit";
    case H5Z_FILTER_SCALEOFFSET:
      return "scaleoffset";
    case 307:
      return "bzip2";
    case 32000:
      return "lzf";
    case 32001:
      return "blosc";
    case 32004:
      return "lz4";
    case 32008:
      return "bitshuffle";
    case 32015:
      return "zstd";
    default:
      break;
  }
  return "unknown";
}

}  // namespace tilestage::ingest
