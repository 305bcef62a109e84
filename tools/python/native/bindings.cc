// tilestage._native: the C++ tile store (tiling/store.h) and loader (loaders/loader.h) for
// Python. The public API is the tilestage package (tools/python/tilestage/), which wraps these
// two classes; see its docstrings.
//
// Zero copy: a delivered batch's arrays are numpy views of the loader's own batch buffers. Each
// batch is leased: its buffers go back to the loader only when no Python object references any
// of its arrays, so a held batch is never overwritten. Loader::Next swaps the buffers it fills
// with the ones it is given, so the binding gives it back a returned batch (the pool keeps at most
// one: the loader's memory bound counts prefetch + 1 batches, the one the caller holds included).
//
// Errors are Python exceptions: NotFound -> FileNotFoundError, DataLoss -> tilestage.DataLossError
// (the message names shard and record), InvalidArgument -> ValueError, IOError -> OSError,
// ResourceExhausted -> MemoryError, anything else -> RuntimeError.
//
// Thread-safety: the GIL. Waiting for a batch releases it and wakes every 100 ms to check for
// signals (Ctrl-C raises KeyboardInterrupt; the loader stays usable and joins its threads when
// closed or collected). A loader used in a forked child (a DataLoader worker) has no threads
// there: the Python wrapper refuses it, and the destructor leaves it alone rather than join
// threads that do not exist.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "loaders/loader.h"
#include "loaders/stage_plan.h"
#include "tiling/store.h"

namespace py = pybind11;

namespace tilestage {
namespace {

struct DataLossTag {};
PyObject* g_data_loss_error = nullptr;

[[noreturn]] void Raise(const Status& status) {
  PyObject* type = PyExc_RuntimeError;
  switch (status.code()) {
    case StatusCode::kNotFound:
      type = PyExc_FileNotFoundError;
      break;
    case StatusCode::kDataLoss:
      type = g_data_loss_error;
      break;
    case StatusCode::kInvalidArgument:
      type = PyExc_ValueError;
      break;
    case StatusCode::kIOError:
      type = PyExc_OSError;
      break;
    case StatusCode::kResourceExhausted:
      type = PyExc_MemoryError;
      break;
    default:
      break;
  }
  PyErr_SetString(type, status.message().c_str());
  throw py::error_already_set();
}

template <typename T>
T Check(Result<T> result) {
  if (!result.ok()) Raise(result.status());
  return std::move(result).value();
}

py::object JsonToPython(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

// An Array as a numpy array that owns it (moved, not copied).
py::array ToNumpy(Array array) {
  auto* owned = new Array(std::move(array));
  py::capsule base(owned, [](void* p) { delete static_cast<Array*>(p); });
  return py::array(py::dtype(DTypeNumpy(owned->dtype)), owned->shape, {}, owned->data.data(), base);
}

class PyStore {
 public:
  explicit PyStore(const std::string& path)
      : path_(path), store_(Check(Store::Open(LocalStorage(), path))) {}

  uint64_t size() const { return store_->size(); }

  py::dict Get(int64_t index) const {
    const int64_t n = static_cast<int64_t>(store_->size());
    if (index < 0) index += n;
    if (index < 0 || index >= n)
      throw py::index_error("record " + std::to_string(index) + " out of range for store " + path_ +
                            " of " + std::to_string(n) + " records");
    Result<Sample> sample = [&] {
      py::gil_scoped_release release;
      return store_->Read(static_cast<uint64_t>(index));
    }();
    Sample s = Check(std::move(sample));
    py::dict out;
    for (Field& f : s.fields) out[py::str(f.name)] = ToNumpy(std::move(f.array));
    out["meta"] = JsonToPython(s.meta);
    return out;
  }

  py::object Manifest() const { return JsonToPython(store_->manifest().ToJson()); }

  // Every problem found, one line each (empty when the store is intact), as the numpy reader's
  // verify() returns them.
  std::vector<std::string> Verify() const {
    VerifyReport report;
    Status status;
    {
      py::gil_scoped_release release;
      status = VerifyStore(*LocalStorage(), path_, &report);
    }
    if (!status.ok() && report.problems.empty()) report.problems.push_back(status.message());
    return report.problems;
  }

 private:
  std::string path_;
  std::unique_ptr<Store> store_;
};

// Returned batches, ready to be given to Loader::Next again. Touched only with the GIL held.
struct BatchPool {
  std::vector<std::unique_ptr<Batch>> free;
};

// One delivered batch, alive while any of its numpy arrays is.
struct Lease {
  std::shared_ptr<BatchPool> pool;
  std::unique_ptr<Batch> batch;
  ~Lease() {
    if (pool->free.empty()) pool->free.push_back(std::move(batch));
  }
};

template <typename Array>
py::array View(const Array& data, std::vector<int64_t> shape, const py::capsule& base,
               py::dtype dtype) {
  return py::array(dtype, std::move(shape), {}, data.data(), base);
}

std::vector<int64_t> BatchShape(int64_t size, const std::vector<int64_t>& sample_shape) {
  std::vector<int64_t> shape{size};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  return shape;
}

class PyLoader {
 public:
  PyLoader(const std::string& path, const LoaderOptions& options)
      : pid_(::getpid()), pool_(std::make_shared<BatchPool>()) {
    Result<std::unique_ptr<Loader>> loader = [&] {
      py::gil_scoped_release release;
      return Loader::Open(LocalStorage(), path, options);
    }();
    loader_ = Check(std::move(loader));
    fingerprint_ = StoreFingerprint(loader_->manifest());
  }
  ~PyLoader() {
    // In a forked child the loader's threads do not exist: joining them would hang.
    if (::getpid() != pid_) (void)loader_.release();
  }

  void Close() {
    if (::getpid() != pid_) return;
    py::gil_scoped_release release;
    loader_.reset();
  }

  // The next batch of the epoch as a dict of numpy views, or None at its end.
  py::object Next() {
    Loader& loader = Get();
    std::unique_ptr<Batch> batch;
    if (!pool_->free.empty()) {
      batch = std::move(pool_->free.back());
      pool_->free.pop_back();
    } else {
      batch = std::make_unique<Batch>();
    }
    Result<std::optional<bool>> more = [&] {
      py::gil_scoped_release release;
      return loader.NextUnless(
          batch.get(),
          [] {
            py::gil_scoped_acquire acquire;
            return PyErr_CheckSignals() != 0;
          },
          std::chrono::milliseconds(100));
    }();
    if (more.ok() && !more->has_value()) throw py::error_already_set();  // KeyboardInterrupt
    if (!Check(std::move(more)).value()) {
      pool_->free.push_back(std::move(batch));
      return py::none();
    }
    Batch& b = *batch;
    py::capsule base(new Lease{pool_, std::move(batch)},
                     [](void* p) { delete static_cast<Lease*>(p); });
    py::dict out;
    const bool stored = loader.options().keep_stored_dtype;
    out["x"] = stored ? View(b.x_stored, BatchShape(b.size, b.x_shape), base,
                             py::dtype(DTypeNumpy(b.x_dtype)))
                      : View(b.x, BatchShape(b.size, b.x_shape), base, py::dtype::of<float>());
    if (!b.x_valid.empty())
      out["x_valid"] =
          View(b.x_valid, BatchShape(b.size, b.x_shape), base, py::dtype::of<uint8_t>());
    if (!b.y_shape.empty()) {
      out["y"] = stored ? View(b.y_stored, BatchShape(b.size, b.y_shape), base,
                               py::dtype(DTypeNumpy(b.y_dtype)))
                        : View(b.y, BatchShape(b.size, b.y_shape), base, py::dtype::of<float>());
      out["y_valid"] =
          View(b.y_valid, BatchShape(b.size, b.y_shape), base, py::dtype::of<uint8_t>());
    }
    // Record indices are far below 2^63: int64 as torch wants them, over the same bytes.
    out["index"] = View(b.indices, {b.size}, base, py::dtype::of<int64_t>());
    out["epoch"] = b.epoch;
    out["skipped"] = b.skipped;
    return out;
  }

  py::dict Position() {
    const LoaderPosition p = Get().position();
    py::dict d;
    d["epoch"] = p.epoch;
    d["samples_consumed"] = p.samples_consumed;
    return d;
  }

  py::dict Stats() {
    const LoaderStats s = Get().stats();
    py::dict stages;
    for (const StageStats& st : s.stages) {
      py::dict d;
      d["busy_s"] = st.busy_s;
      d["items"] = st.items;
      stages[py::str(st.name)] = d;
    }
    py::dict d;
    d["stages"] = stages;
    d["batches"] = s.batches;
    d["samples"] = s.samples;
    d["bytes_read"] = s.bytes_read;
    d["corrupt_skipped"] = s.corrupt_skipped;
    d["corrupt_examples"] = s.corrupt_examples;
    d["wait_s_total"] = s.wait_s_total;
    d["wait_s_max"] = s.wait_s_max;
    d["queue_occupancy_mean"] = s.queue_occupancy_mean;
    d["queue_capacity"] = s.queue_capacity;
    d["tokens_in_flight"] = s.tokens_in_flight;
    d["memory_bound_bytes"] = s.memory_bound_bytes;
    d["threads"] = s.threads;
    return d;
  }

  uint64_t batches_per_epoch() { return Get().batches_per_epoch(); }
  uint64_t samples_per_epoch() { return Get().samples_per_epoch(); }
  uint64_t total_records() { return Get().total_records(); }
  const std::string& fingerprint() const { return fingerprint_; }
  py::object Manifest() { return JsonToPython(Get().manifest().ToJson()); }

 private:
  Loader& Get() {
    if (!loader_) throw py::value_error("the loader is closed");
    return *loader_;
  }

  pid_t pid_;
  std::shared_ptr<BatchPool> pool_;
  std::unique_ptr<Loader> loader_;
  std::string fingerprint_;
};

LoaderOptions MakeOptions(int64_t batch_size, const std::string& shuffle, uint64_t seed, int rank,
                          int world_size, int threads, int prefetch, uint64_t mem_budget,
                          bool normalize, bool augment, int64_t crop_h, int64_t crop_w,
                          bool drop_last, uint64_t range_begin, uint64_t range_end,
                          const std::string& on_corrupt, uint64_t block_shards,
                          uint64_t block_parts, bool validity_mask, uint64_t start_epoch,
                          uint64_t start_samples) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = Check(ParseShuffleMode(shuffle));
  o.seed = seed;
  o.rank = rank;
  o.world_size = world_size;
  o.threads = threads;
  o.prefetch = prefetch;
  o.mem_budget_bytes = mem_budget;
  o.normalize = normalize;
  o.keep_stored_dtype = !normalize;
  o.augment = augment;
  o.crop_h = crop_h;
  o.crop_w = crop_w;
  o.drop_last = drop_last;
  o.range_begin = range_begin;
  o.range_end = range_end;
  if (on_corrupt != "fail" && on_corrupt != "skip")
    throw py::value_error("on_corrupt must be \"fail\" or \"skip\", got \"" + on_corrupt + "\"");
  o.skip_corrupt = on_corrupt == "skip";
  o.block_shards = block_shards;
  o.block_parts = block_parts;
  o.validity_mask = validity_mask;
  o.start = {start_epoch, start_samples};
  return o;
}

}  // namespace
}  // namespace tilestage

PYBIND11_MODULE(_native, m) {
  using namespace tilestage;
  m.doc() = "tilestage's C++ store and loader; use the tilestage package, not this module";
  static py::exception<DataLossTag> data_loss(m, "DataLossError", PyExc_OSError);
  g_data_loss_error = data_loss.ptr();

  py::class_<PyStore>(m, "Store")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def("__len__", &PyStore::size)
      .def("__getitem__", &PyStore::Get, py::arg("index"))
      .def_property_readonly("manifest", &PyStore::Manifest)
      .def("verify", &PyStore::Verify);

  py::class_<PyLoader>(m, "Loader")
      .def(py::init([](const std::string& path, int64_t batch_size, const std::string& shuffle,
                       uint64_t seed, int rank, int world_size, int threads, int prefetch,
                       uint64_t mem_budget, bool normalize, bool augment, int64_t crop_h,
                       int64_t crop_w, bool drop_last, uint64_t range_begin, uint64_t range_end,
                       const std::string& on_corrupt, uint64_t block_shards, uint64_t block_parts,
                       bool validity_mask, uint64_t start_epoch, uint64_t start_samples) {
             return std::make_unique<PyLoader>(
                 path, MakeOptions(batch_size, shuffle, seed, rank, world_size, threads, prefetch,
                                   mem_budget, normalize, augment, crop_h, crop_w, drop_last,
                                   range_begin, range_end, on_corrupt, block_shards, block_parts,
                                   validity_mask, start_epoch, start_samples));
           }),
           py::arg("path"), py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"),
           py::arg("rank"), py::arg("world_size"), py::arg("threads"), py::arg("prefetch"),
           py::arg("mem_budget"), py::arg("normalize"), py::arg("augment"), py::arg("crop_h"),
           py::arg("crop_w"), py::arg("drop_last"), py::arg("range_begin"), py::arg("range_end"),
           py::arg("on_corrupt"), py::arg("block_shards"), py::arg("block_parts"),
           py::arg("validity_mask"), py::arg("start_epoch"), py::arg("start_samples"))
      .def("next", &PyLoader::Next)
      .def("close", &PyLoader::Close)
      .def("position", &PyLoader::Position)
      .def("stats", &PyLoader::Stats)
      .def_property_readonly("batches_per_epoch", &PyLoader::batches_per_epoch)
      .def_property_readonly("samples_per_epoch", &PyLoader::samples_per_epoch)
      .def_property_readonly("total_records", &PyLoader::total_records)
      .def_property_readonly("fingerprint", &PyLoader::fingerprint)
      .def_property_readonly("manifest", &PyLoader::Manifest);
}
