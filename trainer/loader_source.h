// LoaderBatchSource: the BatchSource over the staging loader (loaders/loader.h), so the trainer
// reads tile stores without opening a file itself. Batch buffers are swapped, not copied, between
// the loader's Batch and the trainer's TrainBatch, and handed back to the loader for reuse.
//
// The source describes the store from its manifest: x's per-sample shape, y's when the store has
// one, and the class count when the manifest records it (attrs.synthetic.classes or
// attrs.classes). Thread-safety: one consumer thread, as the loader.
#pragma once

#include <memory>
#include <string>

#include "loaders/loader.h"
#include "trainer/batch_source.h"

namespace tilestage::trainer {

class LoaderBatchSource : public BatchSource {
 public:
  // Opens the loader; errors name the store (NotFound without a manifest, InvalidArgument for a
  // store without a fixed-shape x field).
  static Result<std::unique_ptr<LoaderBatchSource>> Open(std::shared_ptr<Storage> storage,
                                                         const std::string& store_dir,
                                                         const LoaderOptions& options);
  const SourceInfo& info() const override { return info_; }
  Result<bool> Next(TrainBatch* batch) override;
  SourcePosition position() const override;
  const Loader& loader() const { return *loader_; }

 private:
  LoaderBatchSource() = default;
  std::unique_ptr<Loader> loader_;
  SourceInfo info_;
  Batch batch_;
};

}  // namespace tilestage::trainer
