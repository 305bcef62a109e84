#include "ingest/hdf5_frame_reader.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <libdeflate.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>

#include "ingest/hdf5_util.h"
#include "tiling/codec.h"

namespace tilestage::ingest {
namespace fs = std::filesystem;

struct Hdf5FrameReader::Handles {
  Hid file;
  Hid dataset;
  // Direct chunk reads: stacks chunked as whole frames, filtered only by shuffle and deflate,
  // are read as raw chunks under the HDF5 lock and decoded in parallel outside it (HDF5 itself
  // would decode them one at a time inside its global lock).
  bool direct = false;
  std::vector<H5Z_filter_t> filter_ids;  // pipeline order
  std::vector<int64_t> chunk;            // chunk dimensions
  size_t element_bytes = 0;
  size_t chunk_bytes = 0;
  bool swap_bytes = false;          // the file's byte order differs from this machine's
  bool whole_frame_chunks = false;  // chunks hold whole frames ([..., H, W])
};

Hdf5FrameReader::Hdf5FrameReader() : handles_(std::make_unique<Handles>()) {}

Hdf5FrameReader::~Hdf5FrameReader() {
  Hdf5Lock lock;
  handles_.reset();
}

namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string JoinPath(const std::string& parent, const std::string& child) {
  if (!child.empty() && child[0] == '/') return child;
  if (parent.empty() || parent == "/") return "/" + child;
  return parent + "/" + child;
}

// Reads a string attribute (fixed or variable length, scalar or the first element).
std::optional<std::string> ReadStringAttr(hid_t loc, const std::string& obj, const char* name) {
  if (H5Aexists_by_name(loc, obj.c_str(), name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  Hid attr(H5Aopen_by_name(loc, obj.c_str(), name, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) return std::nullopt;
  Hid type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) return std::nullopt;
  Hid space(H5Aget_space(attr.get()));
  const hssize_t n = std::max<hssize_t>(1, H5Sget_simple_extent_npoints(space.get()));
  std::string out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char*> values(static_cast<size_t>(n), nullptr);
    if (H5Aread(attr.get(), mem.get(), values.data()) < 0) return std::nullopt;
    if (values[0]) out = values[0];
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, values.data());
  } else {
    const size_t size = H5Tget_size(type.get());
    std::vector<char> buf(size * static_cast<size_t>(n) + 1, '\0');
    if (H5Aread(attr.get(), type.get(), buf.data()) < 0) return std::nullopt;
    out.assign(buf.data(), strnlen(buf.data(), size));
  }
  return out;
}

// The type of the object a path resolves to (following soft and external links), or
// H5I_BADID when it does not resolve.
H5I_type_t ObjectType(hid_t file, const std::string& path) {
  if (path == "/") return H5I_GROUP;
  if (H5LTpath_valid(file, path.c_str(), 1) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  Hid obj(H5Oopen(file, path.c_str(), H5P_DEFAULT));
  if (!obj.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  return H5Iget_type(obj.get());
}

std::vector<std::string> ChildNames(hid_t file, const std::string& group) {
  std::vector<std::string> names;
  Hid g(H5Gopen2(file, group.c_str(), H5P_DEFAULT));
  if (!g.valid()) return names;
  auto op = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, op, &names);
  H5Eclear2(H5E_DEFAULT);
  return names;
}

// In an NXdata group: its `signal` attribute, an old-style dataset with attribute signal=1, or a
// dataset named "data".
std::optional<std::string> NxDataSignal(hid_t file, const std::string& group) {
  if (auto signal = ReadStringAttr(file, group, "signal")) {
    const std::string path = JoinPath(group, *signal);
    if (ObjectType(file, path) == H5I_DATASET) return path;
  }
  // NeXus before 2014 marked the signal with an attribute signal=1 on the dataset itself.
  for (const auto& name : ChildNames(file, group)) {
    const std::string child = JoinPath(group, name);
    if (ObjectType(file, child) != H5I_DATASET) continue;
    if (H5Aexists_by_name(file, child.c_str(), "signal", H5P_DEFAULT) > 0) return child;
    H5Eclear2(H5E_DEFAULT);
  }
  const std::string data = JoinPath(group, "data");
  if (ObjectType(file, data) == H5I_DATASET) return data;
  return std::nullopt;
}

std::optional<std::string> DiscoverNexusDefault(hid_t file) {
  // NeXus: /@default names the NXentry, NXentry@default the NXdata, NXdata@signal the dataset.
  std::string path = "/";
  for (int depth = 0; depth < 8; ++depth) {
    auto next = ReadStringAttr(file, path, "default");
    if (!next) break;
    const std::string child = JoinPath(path, *next);
    const H5I_type_t type = ObjectType(file, child);
    if (type == H5I_DATASET) return child;
    if (type != H5I_GROUP) break;
    path = child;
  }
  if (path == "/") return std::nullopt;
  return NxDataSignal(file, path);
}

std::optional<std::string> DiscoverNexusClasses(hid_t file) {
  for (const auto& entry_name : ChildNames(file, "/")) {
    const std::string entry = JoinPath("/", entry_name);
    if (ObjectType(file, entry) != H5I_GROUP) continue;
    if (ReadStringAttr(file, entry, "NX_class").value_or("") != "NXentry") continue;
    for (const auto& child_name : ChildNames(file, entry)) {
      const std::string child = JoinPath(entry, child_name);
      if (ObjectType(file, child) != H5I_GROUP) continue;
      if (ReadStringAttr(file, child, "NX_class").value_or("") != "NXdata") continue;
      if (auto signal = NxDataSignal(file, child)) return signal;
    }
  }
  return std::nullopt;
}

struct DatasetEntry {
  std::string path;
  std::string type;
  std::vector<int64_t> shape;
};

std::vector<DatasetEntry> AllDatasets(hid_t file, size_t limit) {
  struct Visit {
    hid_t file;
    size_t limit;
    std::vector<DatasetEntry> out;
  } visit{file, limit, {}};
  auto op = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    auto* v = static_cast<Visit*>(data);
    const std::string path = std::string("/") + name;
    if (ObjectType(v->file, path) != H5I_DATASET) return 0;
    Hid ds(H5Dopen2(v->file, path.c_str(), H5P_DEFAULT));
    if (!ds.valid()) return 0;
    DatasetEntry e{path, "?", {}};
    Hid type(H5Dget_type(ds.get()));
    auto dtype = DTypeFromHdf5(type.get(), path);
    if (dtype.ok()) e.type = DTypeName(*dtype);
    Hid space(H5Dget_space(ds.get()));
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank > 0) {
      std::vector<hsize_t> dims(static_cast<size_t>(rank));
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      for (hsize_t d : dims) e.shape.push_back(static_cast<int64_t>(d));
    }
    v->out.push_back(std::move(e));
    return v->out.size() >= v->limit ? 1 : 0;
  };
  H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, op, &visit);
  H5Eclear2(H5E_DEFAULT);
  return std::move(visit.out);
}

std::string DatasetListText(hid_t file) {
  std::string text;
  for (const auto& e : AllDatasets(file, 50)) {
    if (!text.empty()) text += ", ";
    text += e.path + " " + e.type + ShapeText(e.shape);
  }
  return text.empty() ? "(none)" : text;
}

std::optional<std::string> DiscoverFrames(hid_t file) {
  if (auto p = DiscoverNexusDefault(file)) return p;
  for (const char* cxi : {"/entry_1/data_1/data", "/entry_1/instrument_1/detector_1/data"}) {
    if (ObjectType(file, cxi) == H5I_DATASET) return std::string(cxi);
  }
  if (auto p = DiscoverNexusClasses(file)) return p;
  // A file with exactly one image-like dataset needs no layout to be found.
  std::vector<std::string> images;
  for (const auto& e : AllDatasets(file, 1000)) {
    if (e.shape.size() >= 2 && e.shape.size() <= 4 && e.type != "?") images.push_back(e.path);
  }
  if (images.size() == 1) return images[0];
  return std::nullopt;
}

// Explains why a path does not resolve: the first component that is missing, or a link that
// exists but dangles (a soft link to nothing, an external link whose file is missing).
Status MissingPath(hid_t file, const std::string& filename, const std::string& path) {
  std::string prefix;
  size_t pos = 1;
  while (pos <= path.size()) {
    const size_t next = std::min(path.find('/', pos), path.size());
    prefix = path.substr(0, next);
    pos = next + 1;
    if (prefix.empty() || prefix == "/") continue;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) break;
    H5L_info_t link{};
    if (H5Lget_info(file, prefix.c_str(), &link, H5P_DEFAULT) < 0) break;
    if (ObjectType(file, prefix) != H5I_BADID) continue;
    if (link.type == H5L_TYPE_EXTERNAL) {
      std::vector<char> buf(link.u.val_size + 1, '\0');
      const char* ext_file = nullptr;
      const char* ext_path = nullptr;
      unsigned flags = 0;
      if (H5Lget_val(file, prefix.c_str(), buf.data(), buf.size(), H5P_DEFAULT) >= 0 &&
          H5Lunpack_elink_val(buf.data(), buf.size(), &flags, &ext_file, &ext_path) >= 0) {
        H5Eclear2(H5E_DEFAULT);
        return NotFound("HDF5 file ", filename, ": ", prefix, " is an external link to ", ext_file,
                        ":", ext_path, " which cannot be opened (missing file or path)");
      }
    }
    H5Eclear2(H5E_DEFAULT);
    return NotFound("HDF5 file ", filename, ": ", prefix, " is a link that does not resolve",
                    link.type == H5L_TYPE_SOFT ? " (dangling soft link)" : "");
  }
  H5Eclear2(H5E_DEFAULT);
  return NotFound("HDF5 file ", filename, ": dataset ", path,
                  " does not exist; datasets: ", DatasetListText(file));
}

Status CheckVirtualSources(hid_t file, hid_t dcpl, const std::string& filename,
                           const std::string& dataset) {
  size_t count = 0;
  if (H5Pget_virtual_count(dcpl, &count) < 0)
    return Hdf5Error(StatusCode::kIOError, filename + ": " + dataset + ": virtual mappings");
  const fs::path dir = fs::path(filename).parent_path();
  for (size_t i = 0; i < count; ++i) {
    const ssize_t fn = H5Pget_virtual_filename(dcpl, i, nullptr, 0);
    const ssize_t dn = H5Pget_virtual_dsetname(dcpl, i, nullptr, 0);
    if (fn < 0 || dn < 0)
      return Hdf5Error(StatusCode::kIOError, filename + ": " + dataset + ": virtual mapping");
    std::string src_file(static_cast<size_t>(fn) + 1, '\0');
    std::string src_dset(static_cast<size_t>(dn) + 1, '\0');
    H5Pget_virtual_filename(dcpl, i, src_file.data(), src_file.size());
    H5Pget_virtual_dsetname(dcpl, i, src_dset.data(), src_dset.size());
    src_file.resize(static_cast<size_t>(fn));
    src_dset.resize(static_cast<size_t>(dn));
    // printf-style patterns (%b) name many files for unlimited mappings; HDF5 stops at the first
    // missing one by design, so there is nothing to check here.
    if (src_file.find('%') != std::string::npos || src_dset.find('%') != std::string::npos)
      continue;
    const std::string where = StrCat("virtual dataset ", filename, ":", dataset, " mapping ", i,
                                     " (source ", src_file, ":", src_dset, ")");
    if (src_file == ".") {
      if (ObjectType(file, src_dset) != H5I_DATASET)
        return NotFound(where, ": the source dataset does not exist in the same file");
      continue;
    }
    // HDF5 looks relative to the virtual file's directory, then the working directory.
    std::string found;
    for (const fs::path& candidate :
         {fs::path(src_file).is_absolute() ? fs::path(src_file) : dir / src_file,
          fs::path(src_file)}) {
      std::error_code ec;
      if (fs::exists(candidate, ec)) {
        found = candidate.string();
        break;
      }
    }
    if (found.empty())
      return NotFound(where,
                      ": the source file does not exist (HDF5 would silently read fill "
                      "values in its place)");
    Hid src(H5Fopen(found.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!src.valid()) return Hdf5Error(StatusCode::kIOError, where + ": cannot open " + found);
    if (ObjectType(src.get(), src_dset) != H5I_DATASET)
      return NotFound(where, ": ", found, " has no dataset ", src_dset);
  }
  return Status::Ok();
}

Status CheckFilters(hid_t dcpl, const std::string& filename, const std::string& dataset,
                    std::vector<std::string>* names) {
  const int n = H5Pget_nfilters(dcpl);
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    size_t nelmts = 0;
    unsigned config = 0;
    char name[256] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nelmts, nullptr,
                                           sizeof(name), name, &config);
    if (id < 0) return Hdf5Error(StatusCode::kIOError, filename + ": " + dataset + ": filters");
    names->push_back(FilterName(id));
    // H5Zfilter_avail also tries to load a plugin from HDF5_PLUGIN_PATH (or the default
    // directory), so false here means the read would fail.
    const htri_t avail = H5Zfilter_avail(id);
    H5Eclear2(H5E_DEFAULT);
    if (avail > 0) continue;
    const std::string package = FilterPackage(id);
    return FailedPrecondition(
        "HDF5 file ", filename, ": dataset ", dataset, " uses filter ", id, " (", FilterName(id),
        name[0] ? std::string(", \"") + name + "\"" : std::string(),
        ") but no plugin for it is "
        "available",
        package.empty() ? std::string("; install an HDF5 plugin that provides it")
                        : "; install the Debian package " + package,
        " (plugins are searched in HDF5_PLUGIN_PATH, default "
        "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins)");
  }
  return Status::Ok();
}

// Reads rows [first, first + count) of a dataset whose first `lead_rank` dimensions flatten to
// rows, into `out` (count * row_elements of memtype). Raster scans ([Ny,Nx,...]) are read as one
// hyperslab per scan line the range touches.
Status ReadRows(hid_t ds, const std::vector<hsize_t>& dims, int lead_rank, int64_t first,
                int64_t count, hid_t memtype, size_t row_bytes, uint8_t* out,
                const std::string& where) {
  Hid filespace(H5Dget_space(ds));
  const size_t rank = dims.size();
  auto read_box = [&](const std::vector<hsize_t>& start, const std::vector<hsize_t>& extent,
                      uint8_t* dst) -> Status {
    if (H5Sselect_hyperslab(filespace.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(),
                            nullptr) < 0)
      return Hdf5Error(StatusCode::kInternal, where + ": selecting a hyperslab");
    Hid memspace(H5Screate_simple(static_cast<int>(rank), extent.data(), nullptr));
    if (H5Dread(ds, memtype, memspace.get(), filespace.get(), H5P_DEFAULT, dst) < 0)
      return Hdf5Error(StatusCode::kIOError, where + ": reading rows " + std::to_string(first) +
                                                 ".." + std::to_string(first + count - 1));
    return Status::Ok();
  };
  std::vector<hsize_t> start(rank, 0);
  std::vector<hsize_t> extent(dims);
  if (lead_rank == 0) return read_box(start, extent, out);
  if (lead_rank == 1) {
    start[0] = static_cast<hsize_t>(first);
    extent[0] = static_cast<hsize_t>(count);
    return read_box(start, extent, out);
  }
  if (lead_rank != 2) return Internal(where, ": lead rank ", lead_rank);
  const int64_t nx = static_cast<int64_t>(dims[1]);
  int64_t row = first;
  while (row < first + count) {
    const int64_t iy = row / nx;
    const int64_t ix = row % nx;
    const int64_t n = std::min(nx - ix, first + count - row);
    start[0] = static_cast<hsize_t>(iy);
    start[1] = static_cast<hsize_t>(ix);
    extent[0] = 1;
    extent[1] = static_cast<hsize_t>(n);
    TS_RETURN_IF_ERROR(read_box(start, extent, out + static_cast<size_t>(row - first) * row_bytes));
    row += n;
  }
  return Status::Ok();
}

Result<std::vector<hsize_t>> Dims(hid_t ds, const std::string& where) {
  Hid space(H5Dget_space(ds));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return Hdf5Error(StatusCode::kIOError, where + ": dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

}  // namespace

Result<std::unique_ptr<Hdf5FrameReader>> Hdf5FrameReader::Open(const std::string& file,
                                                               const std::string& dataset) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return NotFound("HDF5 file ", file, " does not exist");
  if (fs::is_directory(file, ec))
    return InvalidArgument("HDF5 file ", file, ": is a directory, not an HDF5 file");
  std::unique_ptr<Hdf5FrameReader> reader(new Hdf5FrameReader());
  Hdf5FrameInfo& info = reader->info_;
  info.file = file;
  Hdf5Lock lock;
  Handles& h = *reader->handles_;
  h.file = Hid(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!h.file.valid()) return Hdf5Error(StatusCode::kIOError, "cannot open HDF5 file " + file);
  const hid_t f = h.file.get();

  if (!dataset.empty()) {
    info.dataset = dataset[0] == '/' ? dataset : "/" + dataset;
    const H5I_type_t type = ObjectType(f, info.dataset);
    if (type == H5I_BADID) return MissingPath(f, file, info.dataset);
    if (type != H5I_DATASET)
      return InvalidArgument("HDF5 file ", file, ": ", info.dataset,
                             " is a group, not a dataset; datasets: ", DatasetListText(f));
  } else {
    auto found = DiscoverFrames(f);
    if (!found)
      return NotFound("HDF5 file ", file,
                      ": no frame dataset found (no NeXus default/NXdata "
                      "signal, no CXI /entry_1/data_1/data); pass --dataset, one of: ",
                      DatasetListText(f));
    info.dataset = *found;
  }
  const std::string where = "HDF5 file " + file + ": dataset " + info.dataset;

  Hid dapl(H5Pcreate(H5P_DATASET_ACCESS));
  // A cache of a few chunks covers batches that do not fall on chunk boundaries.
  H5Pset_chunk_cache(dapl.get(), 10007, 256u << 20, 1.0);
  h.dataset = Hid(H5Dopen2(f, info.dataset.c_str(), dapl.get()));
  if (!h.dataset.valid()) return Hdf5Error(StatusCode::kIOError, "cannot open " + where);
  const hid_t ds = h.dataset.get();

  Hid type(H5Dget_type(ds));
  TS_ASSIGN_OR_RETURN(info.dtype, DTypeFromHdf5(type.get(), where));
  TS_ASSIGN_OR_RETURN(auto dims, Dims(ds, where));
  for (hsize_t d : dims) info.shape.push_back(static_cast<int64_t>(d));
  if (dims.size() < 2 || dims.size() > 4)
    return InvalidArgument(where, ": shape ", ShapeText(info.shape),
                           " is not a frame [H,W], a stack [N,H,W] or a scan [Ny,Nx,H,W]");
  info.scan_shape.assign(info.shape.begin(), info.shape.end() - 2);
  info.height = info.shape[dims.size() - 2];
  info.width = info.shape[dims.size() - 1];
  info.num_frames = 1;
  for (int64_t d : info.scan_shape) info.num_frames *= d;
  if (info.height == 0 || info.width == 0)
    return InvalidArgument(where, ": empty frames ", ShapeText(info.shape));

  Hid dcpl(H5Dget_create_plist(ds));
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout == H5D_VIRTUAL) {
    info.is_virtual = true;
    TS_RETURN_IF_ERROR(CheckVirtualSources(f, dcpl.get(), file, info.dataset));
  }
  TS_RETURN_IF_ERROR(CheckFilters(dcpl.get(), file, info.dataset, &info.filters));
  if (layout == H5D_CHUNKED && !info.is_virtual) {
    // Direct chunk reads need a pipeline this reader can undo itself (shuffle and deflate, in
    // any order, possibly none) and every chunk stored whole and filtered (HDF5 can be told to
    // store partial edge chunks unfiltered without marking them in the filter mask).
    std::vector<hsize_t> chunk(dims.size());
    H5Pget_chunk(dcpl.get(), static_cast<int>(dims.size()), chunk.data());
    bool simple_filters = true;
    for (int i = 0; i < H5Pget_nfilters(dcpl.get()); ++i) {
      const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), nullptr, nullptr,
                                             nullptr, 0, nullptr, nullptr);
      simple_filters &= id == H5Z_FILTER_DEFLATE || id == H5Z_FILTER_SHUFFLE;
      h.filter_ids.push_back(id);
    }
    unsigned chunk_opts = 0;
    if (H5Pget_chunk_opts(dcpl.get(), &chunk_opts) < 0) chunk_opts = ~0u;
    h.element_bytes = H5Tget_size(type.get());
    h.chunk_bytes = h.element_bytes;
    for (hsize_t d : chunk) {
      h.chunk.push_back(static_cast<int64_t>(d));
      h.chunk_bytes *= static_cast<size_t>(d);
    }
    const H5T_order_t order = H5Tget_order(type.get());
    h.swap_bytes =
        h.element_bytes > 1 && (order == H5T_ORDER_BE) != (std::endian::native == std::endian::big);
    const size_t r = dims.size();
    h.whole_frame_chunks = h.chunk[r - 2] == info.height && h.chunk[r - 1] == info.width;
    // Batches of a scan follow scan lines; a chunk over several lines but not whole lines would
    // be decoded once per batch it meets, where H5Dread keeps it in HDF5's chunk cache.
    const bool chunks_once = info.scan_shape.size() < 2 || h.chunk[0] == 1 ||
                             h.chunk[1] >= static_cast<int64_t>(info.scan_shape[1]);
    h.direct = simple_filters && chunks_once && chunk_opts == 0 && h.chunk_bytes > 0 &&
               (h.element_bytes == 1 || order == H5T_ORDER_LE || order == H5T_ORDER_BE) &&
               std::getenv("TILESTAGE_HDF5_NO_DIRECT_CHUNKS") == nullptr;
    info.direct_chunks = h.direct;
  }
  if (layout == H5D_CHUNKED && !info.scan_shape.empty()) {
    std::vector<hsize_t> chunk(dims.size());
    H5Pget_chunk(dcpl.get(), static_cast<int>(dims.size()), chunk.data());
    if (info.scan_shape.size() == 1) {
      info.frames_per_chunk = static_cast<int64_t>(chunk[0]);
    } else {
      // Whole scan lines per chunk flatten to contiguous frames; otherwise align on columns.
      info.frames_per_chunk = static_cast<int64_t>(chunk[1]) == info.scan_shape[1]
                                  ? static_cast<int64_t>(chunk[0] * chunk[1])
                                  : static_cast<int64_t>(chunk[1]);
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return reader;
}

int64_t Hdf5FrameReader::BatchFrames(uint64_t target_bytes) const {
  const uint64_t frame_bytes =
      static_cast<uint64_t>(info_.height * info_.width) * DTypeSize(info_.dtype);
  const int64_t chunks = std::max<int64_t>(
      1, static_cast<int64_t>(target_bytes /
                              std::max<uint64_t>(1, frame_bytes * info_.frames_per_chunk)));
  return std::min(info_.num_frames, chunks * info_.frames_per_chunk);
}

std::vector<int64_t> Hdf5FrameReader::ScanIndex(int64_t frame) const {
  if (info_.scan_shape.size() == 2)
    return {frame / info_.scan_shape[1], frame % info_.scan_shape[1]};
  if (info_.scan_shape.size() == 1) return {frame};
  return {};
}

Result<Array> Hdf5FrameReader::ReadFrames(int64_t first, int64_t count) const {
  const std::string where = "HDF5 file " + info_.file + ": dataset " + info_.dataset;
  if (first < 0 || count < 1 || first + count > info_.num_frames)
    return InvalidArgument(where, ": frames ", first, "+", count, " outside 0..", info_.num_frames);
  Array out(info_.dtype, {count, info_.height, info_.width});
  const size_t frame_bytes = FrameBytes();
  if (handles_->direct) {
    uint8_t* dst = out.data.data();
    TS_ASSIGN_OR_RETURN(bool done, ReadDirect(first, count, [&](int64_t i, const uint8_t* frame) {
                          std::memcpy(dst + static_cast<size_t>(i) * frame_bytes, frame,
                                      frame_bytes);
                        }));
    if (done) return out;
  }
  TS_RETURN_IF_ERROR(ReadWithHdf5(first, count, out.data.data()));
  return out;
}

Status Hdf5FrameReader::ForEachFrame(int64_t first, int64_t count, const FrameFn& fn) const {
  const std::string where = "HDF5 file " + info_.file + ": dataset " + info_.dataset;
  if (first < 0 || count < 1 || first + count > info_.num_frames)
    return InvalidArgument(where, ": frames ", first, "+", count, " outside 0..", info_.num_frames);
  if (handles_->direct) {
    TS_ASSIGN_OR_RETURN(bool done, ReadDirect(first, count, fn));
    if (done) return Status::Ok();
  }
  Array raw(info_.dtype, {count, info_.height, info_.width});
  TS_RETURN_IF_ERROR(ReadWithHdf5(first, count, raw.data.data()));
  const size_t frame_bytes = FrameBytes();
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(int64_t{0}, count, [&](int64_t i) {
      fn(i, raw.data.data() + static_cast<size_t>(i) * frame_bytes);
    });
  });
  return Status::Ok();
}

size_t Hdf5FrameReader::FrameBytes() const {
  return static_cast<size_t>(info_.height * info_.width) * DTypeSize(info_.dtype);
}

Status Hdf5FrameReader::ReadWithHdf5(int64_t first, int64_t count, uint8_t* out) const {
  const std::string where = "HDF5 file " + info_.file + ": dataset " + info_.dataset;
  Hdf5Lock lock;
  std::vector<hsize_t> dims(info_.shape.begin(), info_.shape.end());
  return ReadRows(handles_->dataset.get(), dims, static_cast<int>(info_.scan_shape.size()), first,
                  count, NativeHdf5Type(info_.dtype), FrameBytes(), out, where);
}

namespace {

struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

libdeflate_decompressor* ThreadDecompressor() {
  thread_local std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> d(
      libdeflate_alloc_decompressor());
  return d.get();
}

// Per-thread decode buffers, reused across chunks (no fresh zeroed pages per chunk).
uint8_t* ScratchBuffer(size_t which, size_t bytes) {
  struct Scratch {
    std::unique_ptr<uint8_t[]> data;
    size_t bytes = 0;
  };
  thread_local Scratch scratch[2];
  Scratch& s = scratch[which];
  if (s.bytes < bytes) {
    s.data.reset(new uint8_t[bytes]);  // default-initialized: no memset
    s.bytes = bytes;
  }
  return s.data.get();
}

const char* LibdeflateResultText(libdeflate_result r) {
  switch (r) {
    case LIBDEFLATE_SUCCESS:
      return "success";
    case LIBDEFLATE_BAD_DATA:
      return "invalid deflate data or checksum";
    case LIBDEFLATE_SHORT_OUTPUT:
      return "fewer bytes than the chunk holds";
    case LIBDEFLATE_INSUFFICIENT_SPACE:
      return "more bytes than the chunk holds";
  }
  return "unknown libdeflate result";
}

// One stored chunk of a direct read: where it sits and its bytes as stored in the file.
struct RawChunk {
  std::vector<hsize_t> offset;  // element coordinates of its first element
  std::vector<uint8_t> bytes;
  uint32_t filter_mask = 0;  // bit k set: filter k of the pipeline was skipped when written
};

std::string ChunkText(const std::vector<hsize_t>& offset) {
  std::string s = "[";
  for (size_t i = 0; i < offset.size(); ++i) s += (i ? "," : "") + std::to_string(offset[i]);
  return s + "]";
}

// Undoes the filter pipeline of one chunk (inflate, unshuffle, byte order) into a per-thread
// scratch buffer of chunk_bytes; returns that buffer. DataLoss naming the chunk when its bytes do
// not decode to exactly one chunk.
Result<const uint8_t*> DecodeChunk(const std::vector<H5Z_filter_t>& filter_ids,
                                   size_t element_bytes, size_t chunk_bytes, bool swap_bytes,
                                   const RawChunk& chunk, const std::string& where) {
  const uint8_t* cur = chunk.bytes.data();
  size_t cur_bytes = chunk.bytes.size();
  size_t which = 0;
  const auto fail = [&](auto&&... why) {
    return DataLoss(where, ": chunk at ", ChunkText(chunk.offset), " (", chunk.bytes.size(),
                    " bytes stored, filter mask ", chunk.filter_mask, ") is corrupt: ", why...);
  };
  // Filters were applied in pipeline order when writing; undo them in reverse.
  for (size_t k = filter_ids.size(); k-- > 0;) {
    if (chunk.filter_mask & (1u << k)) continue;  // skipped when this chunk was written
    uint8_t* next = ScratchBuffer(which, chunk_bytes);
    which ^= 1;
    if (filter_ids[k] == H5Z_FILTER_DEFLATE) {
      size_t actual = 0;
      const libdeflate_result r = libdeflate_zlib_decompress(ThreadDecompressor(), cur, cur_bytes,
                                                             next, chunk_bytes, &actual);
      if (r != LIBDEFLATE_SUCCESS || actual != chunk_bytes)
        return fail("it does not inflate to ", chunk_bytes, " bytes (",
                    r == LIBDEFLATE_SUCCESS ? std::to_string(actual) + " bytes"
                                            : std::string(LibdeflateResultText(r)),
                    ")");
    } else {  // H5Z_FILTER_SHUFFLE
      if (cur_bytes != chunk_bytes)
        return fail(cur_bytes, " bytes to unshuffle, expected ", chunk_bytes);
      // HDF5's shuffle filter is the same byte shuffle as the store's codecs.
      ByteUnshuffle({cur, cur_bytes}, element_bytes, next);
    }
    cur = next;
    cur_bytes = chunk_bytes;
  }
  if (cur_bytes != chunk_bytes) return fail(cur_bytes, " bytes, expected ", chunk_bytes);
  if (swap_bytes) {
    // After a filter the bytes are in this thread's scratch buffer (which ^ 1) and are swapped
    // there; an unfiltered chunk is still the file's bytes, swapped in a scratch copy.
    uint8_t* mutable_cur = ScratchBuffer(which ^ 1, chunk_bytes);
    if (cur != mutable_cur) {
      mutable_cur = ScratchBuffer(which, chunk_bytes);
      std::memcpy(mutable_cur, cur, chunk_bytes);
      cur = mutable_cur;
    }
    ByteSwap({mutable_cur, chunk_bytes}, element_bytes);
  }
  return cur;
}

}  // namespace

Result<bool> Hdf5FrameReader::ReadDirect(int64_t first, int64_t count, const FrameFn& fn) const {
  const Handles& h = *handles_;
  const std::string where = "HDF5 file " + info_.file + ": dataset " + info_.dataset;
  const size_t lead_rank = info_.scan_shape.size();
  const int64_t last = first + count - 1;
  const std::vector<int64_t>& c = h.chunk;  // chunk dims
  const int64_t ch = c[lead_rank];
  const int64_t cw = c[lead_rank + 1];
  // Lead-dimension chunk origins whose frames meet [first, last].
  std::vector<std::vector<hsize_t>> lead_origins;
  if (lead_rank == 0) {
    lead_origins.push_back({});
  } else if (lead_rank == 1) {
    for (int64_t k = first / c[0]; k <= last / c[0]; ++k)
      lead_origins.push_back({static_cast<hsize_t>(k * c[0])});
  } else {
    const int64_t nx = info_.scan_shape[1];
    for (int64_t y0 = first / nx / c[0] * c[0]; y0 <= last / nx; y0 += c[0]) {
      for (int64_t x0 = 0; x0 < nx; x0 += c[1]) {
        bool meets = false;
        for (int64_t y = y0; y < std::min(y0 + c[0], info_.scan_shape[0]) && !meets; ++y) {
          const int64_t lo = y * nx + x0;
          const int64_t hi = y * nx + std::min(x0 + c[1], nx) - 1;
          meets = lo <= last && hi >= first;
        }
        if (meets) lead_origins.push_back({static_cast<hsize_t>(y0), static_cast<hsize_t>(x0)});
      }
    }
  }
  std::vector<RawChunk> chunks;
  for (const auto& lead : lead_origins) {
    for (int64_t y = 0; y < info_.height; y += ch) {
      for (int64_t x = 0; x < info_.width; x += cw) {
        RawChunk chunk;
        chunk.offset = lead;
        chunk.offset.push_back(static_cast<hsize_t>(y));
        chunk.offset.push_back(static_cast<hsize_t>(x));
        chunks.push_back(std::move(chunk));
      }
    }
  }
  {
    // Only the file reads hold the HDF5 lock; the decode below runs outside it, in parallel.
    Hdf5Lock lock;
    for (RawChunk& chunk : chunks) {
      hsize_t stored = 0;
      if (H5Dget_chunk_storage_size(h.dataset.get(), chunk.offset.data(), &stored) < 0 ||
          stored == 0) {
        // Never-written chunks read as fill values: let H5Dread produce them.
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
      chunk.bytes.resize(static_cast<size_t>(stored));
      if (H5Dread_chunk(h.dataset.get(), H5P_DEFAULT, chunk.offset.data(), &chunk.filter_mask,
                        chunk.bytes.data()) < 0)
        return Hdf5Error(StatusCode::kIOError,
                         StrCat(where, ": reading chunk at ", ChunkText(chunk.offset)));
    }
  }

  const size_t eb = h.element_bytes;
  const size_t frame_bytes = FrameBytes();
  const size_t chunk_frame_bytes = static_cast<size_t>(ch * cw) * eb;
  // Frames of a chunk inside the dataset and [first, last]: fn(frame, position in the chunk).
  auto for_frames_in_chunk = [&](const RawChunk& chunk, auto&& visit) {
    if (lead_rank == 0) {
      visit(int64_t{0}, int64_t{0});
    } else if (lead_rank == 1) {
      const int64_t o = static_cast<int64_t>(chunk.offset[0]);
      for (int64_t j = std::max<int64_t>(0, first - o); j < c[0] && o + j <= last; ++j)
        visit(o + j, j);
    } else {
      const int64_t nx = info_.scan_shape[1];
      const int64_t oy = static_cast<int64_t>(chunk.offset[0]);
      const int64_t ox = static_cast<int64_t>(chunk.offset[1]);
      for (int64_t jy = 0; jy < c[0] && oy + jy < info_.scan_shape[0]; ++jy) {
        for (int64_t jx = 0; jx < c[1] && ox + jx < nx; ++jx) {
          const int64_t frame = (oy + jy) * nx + ox + jx;
          if (frame >= first && frame <= last) visit(frame, jy * c[1] + jx);
        }
      }
    }
  };

  std::vector<Status> errors(chunks.size());
  if (h.whole_frame_chunks) {
    // Each frame is contiguous inside its decoded chunk: hand it over from there, no copy.
    tbb::this_task_arena::isolate([&] {
      tbb::parallel_for(size_t{0}, chunks.size(), [&](size_t i) {
        auto decoded = DecodeChunk(h.filter_ids, eb, h.chunk_bytes, h.swap_bytes, chunks[i], where);
        if (!decoded.ok()) {
          errors[i] = decoded.status();
          return;
        }
        for_frames_in_chunk(chunks[i], [&](int64_t frame, int64_t j) {
          fn(frame - first, *decoded + static_cast<size_t>(j) * frame_bytes);
        });
      });
    });
    for (auto& e : errors) TS_RETURN_IF_ERROR(e);
    return true;
  }
  // Chunks cut frames into tiles: decode every chunk into its place in whole frames, then hand
  // the frames over. Edge chunks reach past the frame; only their part inside it is copied.
  std::unique_ptr<uint8_t[]> frames(new uint8_t[static_cast<size_t>(count) * frame_bytes]);
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(size_t{0}, chunks.size(), [&](size_t i) {
      const RawChunk& chunk = chunks[i];
      auto decoded = DecodeChunk(h.filter_ids, eb, h.chunk_bytes, h.swap_bytes, chunk, where);
      if (!decoded.ok()) {
        errors[i] = decoded.status();
        return;
      }
      const int64_t oy = static_cast<int64_t>(chunk.offset[lead_rank]);
      const int64_t ox = static_cast<int64_t>(chunk.offset[lead_rank + 1]);
      const int64_t rows = std::min(ch, info_.height - oy);
      const size_t row_bytes = static_cast<size_t>(std::min(cw, info_.width - ox)) * eb;
      for_frames_in_chunk(chunk, [&](int64_t frame, int64_t j) {
        const uint8_t* src = *decoded + static_cast<size_t>(j) * chunk_frame_bytes;
        uint8_t* dst = frames.get() + static_cast<size_t>(frame - first) * frame_bytes;
        for (int64_t r = 0; r < rows; ++r) {
          std::memcpy(dst + static_cast<size_t>((oy + r) * info_.width + ox) * eb,
                      src + static_cast<size_t>(r * cw) * eb, row_bytes);
        }
      });
    });
  });
  for (auto& e : errors) TS_RETURN_IF_ERROR(e);
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(int64_t{0}, count, [&](int64_t i) {
      fn(i, frames.get() + static_cast<size_t>(i) * frame_bytes);
    });
  });
  return true;
}

Result<Hdf5AuxInfo> Hdf5FrameReader::OpenAux(const std::string& path, int item_rank) const {
  Hdf5AuxInfo aux;
  aux.path = path.empty() || path[0] == '/' ? path : "/" + path;
  const std::string where = "HDF5 file " + info_.file + ": dataset " + aux.path;
  Hdf5Lock lock;
  const hid_t f = handles_->file.get();
  const H5I_type_t type = ObjectType(f, aux.path);
  if (type == H5I_BADID) return MissingPath(f, info_.file, aux.path);
  if (type != H5I_DATASET)
    return InvalidArgument(where, " is a group, not a dataset; datasets: ", DatasetListText(f));
  Hid ds(H5Dopen2(f, aux.path.c_str(), H5P_DEFAULT));
  if (!ds.valid()) return Hdf5Error(StatusCode::kIOError, "cannot open " + where);
  Hid ftype(H5Dget_type(ds.get()));
  TS_ASSIGN_OR_RETURN(aux.dtype, DTypeFromHdf5(ftype.get(), where));
  TS_ASSIGN_OR_RETURN(auto dims, Dims(ds.get(), where));
  for (hsize_t d : dims) aux.shape.push_back(static_cast<int64_t>(d));
  Hid dcpl(H5Dget_create_plist(ds.get()));
  if (H5Pget_layout(dcpl.get()) == H5D_VIRTUAL)
    TS_RETURN_IF_ERROR(CheckVirtualSources(f, dcpl.get(), info_.file, aux.path));
  std::vector<std::string> filters;
  TS_RETURN_IF_ERROR(CheckFilters(dcpl.get(), info_.file, aux.path, &filters));
  const int lead_rank = static_cast<int>(dims.size()) - item_rank;
  if (lead_rank < 0 || lead_rank > 2)
    return InvalidArgument(where, ": shape ", ShapeText(aux.shape), " is not ",
                           item_rank == 1 ? "[N,D] or [Ny,Nx,D]" : "[N,h,w] or [Ny,Nx,h,w]");
  aux.item_shape.assign(aux.shape.begin() + lead_rank, aux.shape.end());
  aux.rows = 1;
  for (int i = 0; i < lead_rank; ++i) aux.rows *= aux.shape[static_cast<size_t>(i)];
  if (aux.rows != info_.num_frames)
    return InvalidArgument(where, ": ", aux.rows, " rows (shape ", ShapeText(aux.shape), ") but ",
                           info_.dataset, " has ", info_.num_frames, " frames (shape ",
                           ShapeText(info_.shape), ")");
  return aux;
}

Result<Array> Hdf5FrameReader::ReadAux(const Hdf5AuxInfo& aux, int64_t first, int64_t count,
                                       DType as) const {
  const std::string where = "HDF5 file " + info_.file + ": dataset " + aux.path;
  if (first < 0 || count < 1 || first + count > aux.rows)
    return InvalidArgument(where, ": rows ", first, "+", count, " outside 0..", aux.rows);
  std::vector<int64_t> shape{count};
  int64_t item_elements = 1;
  for (int64_t d : aux.item_shape) {
    shape.push_back(d);
    item_elements *= d;
  }
  Array out(as, shape);
  Hdf5Lock lock;
  Hid ds(H5Dopen2(handles_->file.get(), aux.path.c_str(), H5P_DEFAULT));
  if (!ds.valid()) return Hdf5Error(StatusCode::kIOError, "cannot open " + where);
  std::vector<hsize_t> dims(aux.shape.begin(), aux.shape.end());
  const int lead_rank = static_cast<int>(aux.shape.size() - aux.item_shape.size());
  TS_RETURN_IF_ERROR(ReadRows(ds.get(), dims, lead_rank, first, count, NativeHdf5Type(as),
                              static_cast<size_t>(item_elements) * DTypeSize(as), out.data.data(),
                              where));
  return out;
}

bool Hdf5FrameReader::HasDataset(const std::string& path) const {
  Hdf5Lock lock;
  return ObjectType(handles_->file.get(), path) == H5I_DATASET;
}

std::optional<std::string> Hdf5FrameReader::DiscoverPixelMask() const {
  Hdf5Lock lock;
  const auto datasets = AllDatasets(handles_->file.get(), 1000);
  const auto leaf = [](const std::string& path) { return path.substr(path.rfind('/') + 1); };
  const std::vector<int64_t> frame{info_.height, info_.width};
  for (const char* name : {"pixel_mask", "mask_shared", "mask"}) {
    for (const auto& e : datasets) {
      if (leaf(e.path) != name || (e.shape != frame && e.shape != info_.shape)) continue;
      // CXI keeps its masks in the detector groups of /entry_N; NXmx's pixel_mask is unique.
      if (std::string(name) != "pixel_mask" &&
          (e.path.rfind("/entry_", 0) != 0 || e.path.find("detector") == std::string::npos))
        continue;
      return e.path;
    }
  }
  return std::nullopt;
}

Result<Array> Hdf5FrameReader::ReadPixelMask(const std::string& path_in) const {
  const std::string path = path_in.empty() || path_in[0] == '/' ? path_in : "/" + path_in;
  const std::string where = "HDF5 file " + info_.file + ": pixel mask " + path;
  std::vector<double> values;
  {
    Hdf5Lock lock;
    const hid_t f = handles_->file.get();
    const H5I_type_t type = ObjectType(f, path);
    if (type == H5I_BADID) return MissingPath(f, info_.file, path);
    if (type != H5I_DATASET)
      return InvalidArgument(where, " is a group, not a dataset; datasets: ", DatasetListText(f));
    Hid ds(H5Dopen2(f, path.c_str(), H5P_DEFAULT));
    if (!ds.valid()) return Hdf5Error(StatusCode::kIOError, "cannot open " + where);
    Hid ftype(H5Dget_type(ds.get()));
    TS_RETURN_IF_ERROR(DTypeFromHdf5(ftype.get(), where).status());
    TS_ASSIGN_OR_RETURN(auto dims, Dims(ds.get(), where));
    std::vector<int64_t> shape(dims.begin(), dims.end());
    if (shape != std::vector<int64_t>{info_.height, info_.width})
      return InvalidArgument(where, ": shape ", ShapeText(shape), " is neither the frame shape [",
                             info_.height, ",", info_.width, "] of ", info_.dataset,
                             " (one mask shared by every frame) nor its shape ",
                             ShapeText(info_.shape), " (one mask per frame)");
    values.resize(static_cast<size_t>(info_.height * info_.width));
    // As double: every integer mask value keeps its zero/nonzero-ness (no clipping of negatives).
    if (H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
      return Hdf5Error(StatusCode::kIOError, "cannot read " + where);
  }
  Array valid(DType::kU8, {info_.height, info_.width});
  for (size_t i = 0; i < values.size(); ++i) valid.data[i] = values[i] == 0;
  return valid;
}

Result<Hdf5FrameReader::PixelMask> Hdf5FrameReader::OpenPixelMask(const std::string& path) const {
  PixelMask mask;
  if (!info_.scan_shape.empty()) {
    auto aux = OpenAux(path, 2);
    if (aux.ok() && aux->shape == info_.shape) {
      mask.per_frame = std::move(aux).value();
      return mask;
    }
  }
  TS_ASSIGN_OR_RETURN(mask.shared, ReadPixelMask(path));
  return mask;
}

Result<Array> Hdf5FrameReader::ReadFrameMasks(const Hdf5AuxInfo& mask, int64_t first,
                                              int64_t count) const {
  // As float: every integer mask value keeps its zero/nonzero-ness (HDF5 would clip negatives
  // and large values into a narrow integer type).
  TS_ASSIGN_OR_RETURN(Array values, ReadAux(mask, first, count, DType::kF32));
  Array valid(DType::kU8, {count, info_.height, info_.width});
  const auto v = values.As<float>();
  for (size_t i = 0; i < valid.data.size(); ++i) valid.data[i] = v[i] == 0.0f;
  return valid;
}

std::vector<std::string> ListHdf5Datasets(const std::string& file, size_t limit) {
  std::vector<std::string> out;
  Hdf5Lock lock;
  Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!f.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return out;
  }
  for (const auto& e : AllDatasets(f.get(), limit))
    out.push_back(e.path + " " + e.type + ShapeText(e.shape));
  return out;
}

}  // namespace tilestage::ingest
