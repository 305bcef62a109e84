#include "trainer/loader_source.h"

namespace tilestage::trainer {

Result<std::unique_ptr<LoaderBatchSource>> LoaderBatchSource::Open(std::shared_ptr<Storage> storage,
                                                                   const std::string& store_dir,
                                                                   const LoaderOptions& options) {
  std::unique_ptr<LoaderBatchSource> source(new LoaderBatchSource());
  TS_ASSIGN_OR_RETURN(source->loader_, Loader::Open(std::move(storage), store_dir, options));
  const Manifest& m = source->loader_->manifest();
  const FieldSchema* x = m.FindField("x");
  if (x == nullptr || x->shape.empty()) {
    return InvalidArgument("store ", store_dir, ": no fixed-shape field x to train on");
  }
  SourceInfo& info = source->info_;
  info.name = store_dir;
  info.x_shape = x->shape;
  if (options.crop_h > 0 && info.x_shape.size() == 3) {
    info.x_shape[1] = options.crop_h;
    info.x_shape[2] = options.crop_w;
  }
  if (const FieldSchema* y = m.FindField("y"); y != nullptr) {
    info.y_shape = y->shape.empty() ? std::vector<int64_t>{1} : y->shape;
  }
  // attrs are free-form: a class count of another type is no class count, but a negative one is
  // a broken manifest (the model bounds how many classes it can have).
  for (const auto& [path, place] :
       {std::pair{"/classes", "classes"}, {"/synthetic/classes", "synthetic.classes"}}) {
    const nlohmann::json::json_pointer pointer(path);
    if (!m.attrs.contains(pointer) || !m.attrs[pointer].is_number_integer()) continue;
    const int64_t classes = m.attrs[pointer].get<int64_t>();
    if (classes < 0) {
      return DataLoss("manifest ", JoinPath(store_dir, kManifestName), ": attrs.", place, " is ",
                      m.attrs[pointer].dump(), ", expected a non-negative class count");
    }
    info.classes = classes;
    break;
  }
  info.batches_per_epoch = source->loader_->batches_per_epoch();
  info.batch_size = options.batch_size;
  info.global_batch = options.batch_size * options.world_size;
  return source;
}

Result<bool> LoaderBatchSource::Next(TrainBatch* batch) {
  // Give the trainer's previous buffers back to the loader, take the new batch's.
  std::swap(batch_.x, batch->x);
  std::swap(batch_.y, batch->y);
  std::swap(batch_.y_valid, batch->y_valid);
  std::swap(batch_.x_valid, batch->x_valid);
  std::swap(batch_.indices, batch->indices);
  TS_ASSIGN_OR_RETURN(bool got, loader_->Next(&batch_));
  if (!got) return false;
  batch->epoch = batch_.epoch;
  batch->index_in_epoch = batch_.index_in_epoch;
  batch->size = batch_.size;
  batch->x_shape = batch_.x_shape;
  batch->y_shape = batch_.y_shape;
  std::swap(batch_.x, batch->x);
  std::swap(batch_.y, batch->y);
  std::swap(batch_.y_valid, batch->y_valid);
  std::swap(batch_.x_valid, batch->x_valid);
  std::swap(batch_.indices, batch->indices);
  return true;
}

SourcePosition LoaderBatchSource::position() const {
  const LoaderPosition p = loader_->position();
  return {p.epoch, p.samples_consumed};
}

}  // namespace tilestage::trainer
