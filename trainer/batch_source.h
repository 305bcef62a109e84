// BatchSource: the only way data reaches the trainer (it never opens files). The training loop
// pulls collated float batches; the real implementation adapts the staging loader
// (trainer/loader_source.h), the in-memory one serves tests and benchmarks.
//
// Epoch semantics follow the loader: Next() returns false at the end of an epoch, and the next
// call starts the following epoch. position() is what a checkpoint records, in global terms (the
// same at any world size); a source created at that position, on any number of ranks dividing the
// global batch, continues with exactly the global batches an uninterrupted run would have seen.
// Thread-safety: one consumer thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loaders/batch.h"
#include "loaders/sample_order.h"
#include "tiling/status.h"

namespace tilestage::trainer {

// One batch, channel-first float32 (the fields of tilestage::Batch the trainer needs).
struct TrainBatch {
  uint64_t epoch = 0;
  uint64_t index_in_epoch = 0;
  int64_t size = 0;
  std::vector<int64_t> x_shape;  // per sample, [C, H, W]
  BatchArray<float> x;
  // Per x element: 0 where the pixel held no data (nodata, NaN, padding); empty when all are
  // valid or the source does not deliver it (LoaderBatchSource: with validity_mask).
  std::vector<uint8_t> x_valid;
  std::vector<int64_t> y_shape;  // per sample; empty when the data has no y
  BatchArray<float> y;
  // Per y element: 0 where the target is missing (nodata, NaN); empty when all are valid.
  std::vector<uint8_t> y_valid;
  std::vector<uint64_t> indices;  // global record index of each sample
};

struct SourcePosition {
  uint64_t epoch = 0;
  uint64_t samples_consumed = 0;  // by all ranks within the epoch: batches * global batch
};

struct SourceInfo {
  std::string name;              // for messages: the store path, "in-memory", ...
  std::vector<int64_t> x_shape;  // per sample
  std::vector<int64_t> y_shape;  // per sample; empty when there is no y
  int64_t classes = 0;           // label classes when the data declares them, else 0
  uint64_t batches_per_epoch = 0;
  int64_t batch_size = 0;    // per rank
  int64_t global_batch = 0;  // batch_size * world size
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual const SourceInfo& info() const = 0;
  virtual Result<bool> Next(TrainBatch* batch) = 0;
  virtual SourcePosition position() const = 0;
};

// Samples held in memory, ordered by the loader's SampleOrder (global shuffle or store order) in
// global batches of batch_size * world_size, of which rank r takes the r-th part, so 1 rank with
// batch B*W sees the same global batches as W ranks with batch B. A trailing partial global batch
// is dropped.
struct InMemoryData {
  std::vector<int64_t> x_shape, y_shape;
  std::vector<float> x;  // N * prod(x_shape)
  std::vector<float> y;  // N * prod(y_shape), or empty
  int64_t classes = 0;
  int64_t count() const;
};

std::unique_ptr<BatchSource> NewInMemoryBatchSource(std::shared_ptr<const InMemoryData> data,
                                                    int64_t batch_size, int rank, int world_size,
                                                    uint64_t seed, bool shuffle,
                                                    SourcePosition start = {});

}  // namespace tilestage::trainer
