#include "trainer/batch_source.h"

#include <algorithm>
#include <numeric>

#include "tiling/synth.h"

namespace tilestage::trainer {
namespace {

int64_t Product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

class InMemoryBatchSource : public BatchSource {
 public:
  InMemoryBatchSource(std::shared_ptr<const InMemoryData> data, int64_t batch_size, int rank,
                      int world_size, uint64_t seed, bool shuffle, SourcePosition start)
      : data_(std::move(data)),
        rank_(rank),
        world_(world_size),
        seed_(seed),
        shuffle_(shuffle),
        position_(start) {
    info_.name = "in-memory";
    info_.x_shape = data_->x_shape;
    info_.y_shape = data_->y.empty() ? std::vector<int64_t>{} : data_->y_shape;
    info_.classes = data_->classes;
    info_.batch_size = batch_size;
    info_.batches_per_epoch = uint64_t(data_->count() / (batch_size * world_size));
    BuildOrder();
  }
  const SourceInfo& info() const override { return info_; }
  SourcePosition position() const override { return position_; }

  Result<bool> Next(TrainBatch* batch) override {
    const int64_t b = info_.batch_size;
    const uint64_t index = position_.samples_consumed / b;
    if (index >= info_.batches_per_epoch) {
      ++position_.epoch;
      position_.samples_consumed = 0;
      BuildOrder();
      return false;
    }
    const int64_t x_len = Product(data_->x_shape), y_len = Product(data_->y_shape);
    batch->epoch = position_.epoch;
    batch->index_in_epoch = index;
    batch->size = b;
    batch->x_shape = info_.x_shape;
    batch->y_shape = info_.y_shape;
    batch->x.resize(b * x_len);
    batch->y.resize(info_.y_shape.empty() ? 0 : b * y_len);
    batch->indices.resize(b);
    const int64_t first = int64_t(index) * b * world_ + rank_ * b;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t s = order_[first + i];
      batch->indices[i] = uint64_t(s);
      std::copy_n(data_->x.data() + s * x_len, x_len, batch->x.data() + i * x_len);
      if (!batch->y.empty()) {
        std::copy_n(data_->y.data() + s * y_len, y_len, batch->y.data() + i * y_len);
      }
    }
    position_.samples_consumed += b;
    return true;
  }

 private:
  void BuildOrder() {
    order_.resize(data_->count());
    std::iota(order_.begin(), order_.end(), 0);
    if (!shuffle_) return;
    std::vector<std::pair<uint64_t, int64_t>> keyed(order_.size());
    for (size_t i = 0; i < order_.size(); ++i) {
      keyed[i] = {CounterHash(seed_, 0x5eed0000 + position_.epoch, i), int64_t(i)};
    }
    std::sort(keyed.begin(), keyed.end());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = keyed[i].second;
  }

  std::shared_ptr<const InMemoryData> data_;
  int rank_, world_;
  uint64_t seed_;
  bool shuffle_;
  SourcePosition position_;
  SourceInfo info_;
  std::vector<int64_t> order_;
};

}  // namespace

int64_t InMemoryData::count() const {
  const int64_t len = Product(x_shape);
  return len > 0 ? int64_t(x.size()) / len : 0;
}

std::unique_ptr<BatchSource> NewInMemoryBatchSource(std::shared_ptr<const InMemoryData> data,
                                                    int64_t batch_size, int rank, int world_size,
                                                    uint64_t seed, bool shuffle,
                                                    SourcePosition start) {
  return std::make_unique<InMemoryBatchSource>(std::move(data), batch_size, rank, world_size, seed,
                                               shuffle, start);
}

}  // namespace tilestage::trainer
