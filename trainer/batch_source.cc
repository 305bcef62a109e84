#include "trainer/batch_source.h"

#include <algorithm>

#include "tiling/sample.h"

namespace tilestage::trainer {
namespace {

class InMemoryBatchSource : public BatchSource {
 public:
  // A bad order (no samples, a batch larger than the data) leaves batches_per_epoch at 0 and
  // is reported by the first Next().
  InMemoryBatchSource(std::shared_ptr<const InMemoryData> data, Result<SampleOrder> order,
                      int64_t batch_size, int rank, int world_size, SourcePosition start)
      : data_(std::move(data)), order_(std::move(order)), rank_(rank), world_(world_size) {
    info_.name = "in-memory";
    info_.x_shape = data_->x_shape;
    info_.y_shape = data_->y.empty() ? std::vector<int64_t>{} : data_->y_shape;
    info_.classes = data_->classes;
    info_.batch_size = batch_size;
    info_.global_batch = batch_size * world_size;
    info_.batches_per_epoch = order_.ok() ? order_->batches_per_epoch() : 0;
    position_ = start;
  }
  const SourceInfo& info() const override { return info_; }
  SourcePosition position() const override { return position_; }

  Result<bool> Next(TrainBatch* batch) override {
    if (!order_.ok()) return order_.status().WithContext("in-memory source");
    const int64_t b = info_.batch_size;
    const uint64_t index = position_.samples_consumed / uint64_t(info_.global_batch);
    if (index >= info_.batches_per_epoch) {
      ++position_.epoch;
      position_.samples_consumed = 0;
      return false;
    }
    if (index == 0 || epoch_order_.empty()) {
      TS_ASSIGN_OR_RETURN(epoch_order_,
                          order_->RankOrder(position_.epoch, uint64_t(rank_), uint64_t(world_), 0));
    }
    const int64_t x_len = ShapeElements(data_->x_shape), y_len = ShapeElements(data_->y_shape);
    batch->epoch = position_.epoch;
    batch->index_in_epoch = index;
    batch->size = b;
    batch->x_shape = info_.x_shape;
    batch->y_shape = info_.y_shape;
    batch->x.resize(b * x_len);
    batch->y.resize(info_.y_shape.empty() ? 0 : b * y_len);
    batch->indices.resize(b);
    for (int64_t i = 0; i < b; ++i) {
      const uint64_t s = epoch_order_[index * uint64_t(b) + uint64_t(i)];
      batch->indices[i] = s;
      std::copy_n(data_->x.data() + s * x_len, x_len, batch->x.data() + i * x_len);
      if (!batch->y.empty()) {
        std::copy_n(data_->y.data() + s * y_len, y_len, batch->y.data() + i * y_len);
      }
    }
    position_.samples_consumed += uint64_t(info_.global_batch);
    return true;
  }

 private:
  std::shared_ptr<const InMemoryData> data_;
  Result<SampleOrder> order_;
  int rank_, world_;
  SourcePosition position_;
  SourceInfo info_;
  std::vector<uint64_t> epoch_order_;  // this rank's samples of position_.epoch
};

}  // namespace

int64_t InMemoryData::count() const {
  const int64_t len = ShapeElements(x_shape);
  return len > 0 ? int64_t(x.size()) / len : 0;
}

std::unique_ptr<BatchSource> NewInMemoryBatchSource(std::shared_ptr<const InMemoryData> data,
                                                    int64_t batch_size, int rank, int world_size,
                                                    uint64_t seed, bool shuffle,
                                                    SourcePosition start) {
  OrderSpec spec;
  spec.shard_records = {uint64_t(data->count())};
  spec.shuffle = shuffle ? ShuffleMode::kGlobal : ShuffleMode::kNone;
  spec.seed = seed;
  spec.global_batch = uint64_t(std::max<int64_t>(batch_size * world_size, 0));
  spec.drop_last = true;
  return std::make_unique<InMemoryBatchSource>(std::move(data), SampleOrder::Create(spec),
                                               batch_size, rank, world_size, start);
}

}  // namespace tilestage::trainer
