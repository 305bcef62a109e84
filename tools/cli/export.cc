// tilestage export: one field of one record as a .npy file, as stored or (--normalize) as the
// loader hands it to the model.
#include <filesystem>
#include <iostream>

#include "loaders/loader.h"
#include "tiling/npy.h"
#include "tiling/store.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct ExportArgs {
  std::string dir, field = "x", out, mask_out;
  uint64_t record = 0;
  bool normalize = false;
};

// Missing parent directories of an output file are created, as ingest creates --out.
Status WriteNpy(const std::string& path, const Array& array) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) {
    TS_ASSIGN_OR_RETURN(bool is_dir, LocalStorage()->IsDirectory(parent));
    if (!is_dir) {
      TS_ASSIGN_OR_RETURN(bool exists, LocalStorage()->Exists(parent));
      if (exists) return InvalidArgument("--out ", path, ": ", parent, " is not a directory");
      TS_RETURN_IF_ERROR(LocalStorage()->CreateDirs(parent));
    }
  }
  return LocalStorage()->WriteAtomic(path, EncodeNpy(array));
}

// The record through the loader (normalize on, no shuffle, no augmentation): float32 values and
// the validity mask the model gets.
Result<std::pair<Array, Array>> LoadNormalized(const ExportArgs& args) {
  if (args.field != "x" && args.field != "y")
    return InvalidArgument("--normalize: the loader normalizes fields x and y, not '", args.field,
                           "'");
  LoaderOptions o;
  o.batch_size = 1;
  o.shuffle = ShuffleMode::kNone;
  o.threads = 1;
  o.prefetch = 1;
  o.validity_mask = true;
  o.range_begin = args.record;
  o.range_end = args.record + 1;
  TS_ASSIGN_OR_RETURN(auto loader, Loader::Open(LocalStorage(), args.dir, o));
  Batch batch;
  TS_ASSIGN_OR_RETURN(bool got, loader->Next(&batch));
  if (!got || batch.size != 1)
    return Internal("store ", args.dir, ": the loader gave no sample for record ", args.record);
  const bool x = args.field == "x";
  if (!x && batch.y_shape.empty())
    return NotFound("store ", args.dir, ": record ", args.record, " has no field 'y'");
  const std::vector<int64_t>& shape = x ? batch.x_shape : batch.y_shape;
  Array values(DType::kF32, shape), valid(DType::kU8, shape);
  const BatchArray<float>& v = x ? batch.x : batch.y;
  const std::vector<uint8_t>& m = x ? batch.x_valid : batch.y_valid;
  std::copy(v.begin(), v.end(), values.As<float>().begin());
  std::copy(m.begin(), m.end(), valid.As<uint8_t>().begin());
  return std::pair<Array, Array>{std::move(values), std::move(valid)};
}

Status RunExport(const ExportArgs& args) {
  if (!args.mask_out.empty() && !args.normalize)
    return InvalidArgument("--mask-out needs --normalize (the mask is the loader's validity)");
  if (args.normalize) {
    TS_ASSIGN_OR_RETURN(auto arrays, LoadNormalized(args));
    TS_RETURN_IF_ERROR(WriteNpy(args.out, arrays.first));
    std::cout << "wrote normalized " << arrays.first.Describe() << " to " << args.out << "\n";
    if (!args.mask_out.empty()) {
      TS_RETURN_IF_ERROR(WriteNpy(args.mask_out, arrays.second));
      std::cout << "wrote validity " << arrays.second.Describe() << " to " << args.mask_out
                << "\n";
    }
    return Status::Ok();
  }
  TS_ASSIGN_OR_RETURN(auto store, Store::Open(LocalStorage(), args.dir));
  TS_ASSIGN_OR_RETURN(Sample sample, store->Read(args.record));
  const Array* array = sample.Find(args.field);
  if (!array) {
    std::string names;
    for (const auto& f : sample.fields) names += (names.empty() ? "" : ", ") + f.name;
    return NotFound("store ", args.dir, ": record ", args.record, " has no field '", args.field,
                    "' (fields: ", names, ")");
  }
  TS_RETURN_IF_ERROR(WriteNpy(args.out, *array));
  std::cout << "wrote " << array->Describe() << " to " << args.out << "\n";
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = root.add_subcommand("export", "Write one field of one record as .npy");
  cmd->add_option("store", args->dir, "Store directory")->required();
  cmd->add_option("--record", args->record, "Global record index")->required();
  cmd->add_option("--field", args->field, "Field name")->capture_default_str();
  cmd->add_option("--out", args->out,
                  "Output .npy file (missing parent directories are created)")
      ->required();
  cmd->add_flag("--normalize", args->normalize,
                "Write what the loader gives the model: float32, normalized with the manifest "
                "statistics, NaN and nodata as 0 (fields x and y)");
  cmd->add_option("--mask-out", args->mask_out,
                  "With --normalize: also write the validity mask (uint8, 1 = valid) here");
  cmd->callback([=] { *exit_code = Report(RunExport(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
