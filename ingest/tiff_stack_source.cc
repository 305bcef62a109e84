#include "ingest/tiff_stack_source.h"

#include <algorithm>
#include <cstring>

#include "ingest/tiff_stack_reader.h"

namespace tilestage::ingest {
namespace {

class TiffStackSource final : public Source {
 public:
  std::string kind() const override { return "tiff-stack"; }
  const SourceSchema& schema() const override { return schema_; }
  int64_t num_items() const override { return static_cast<int64_t>(items_.size()); }
  const ItemInfo& item(int64_t index) const override { return items_[static_cast<size_t>(index)]; }
  Result<std::unique_ptr<ItemReader>> OpenReader() const override;
  nlohmann::json ManifestAttrs() const override { return attrs_; }

  Status Init(const TiffStackSourceOptions& options) {
    options_ = options;
    if (options.files.empty()) return InvalidArgument("no TIFF input files given");
    nlohmann::json file_attrs = nlohmann::json::array();
    for (const std::string& path : options.files) {
      TS_ASSIGN_OR_RETURN(auto reader, TiffStackReader::Open(path));
      const TiffStackInfo& info = reader->info();
      if (infos_.empty()) {
        TS_ASSIGN_OR_RETURN(box_,
                            options.transform.Plan(info.height, info.width, "TIFF file " + path));
      } else if (info.height != infos_[0].height || info.width != infos_[0].width ||
                 info.dtype != infos_[0].dtype) {
        return InvalidArgument("TIFF file ", path, ": pages are ", info.width, "x", info.height,
                               " ", DTypeName(info.dtype), " but ", infos_[0].file, " has ",
                               infos_[0].width, "x", infos_[0].height, " ",
                               DTypeName(infos_[0].dtype), ": all pages must match");
      }
      first_item_.push_back(static_cast<int64_t>(items_.size()));
      for (int64_t p = 0; p < info.num_frames; ++p) {
        ItemInfo item;
        item.name = path + "#" + std::to_string(p);
        item.height = box_.out_height;
        item.width = box_.out_width;
        item.files = {path};
        item.meta = {{"file", path}, {"page", p}};
        items_.push_back(std::move(item));
      }
      file_attrs.push_back({{"file", path},
                            {"pages", info.num_frames},
                            {"dtype", DTypeName(info.dtype)},
                            {"tiled", info.tiled},
                            {"compression", info.compression}});
      infos_.push_back(info);
    }
    schema_.x.dtype = options.transform.OutputDType(infos_[0].dtype);
    schema_.x.channel_names = {options.transform.scale == FrameScale::kLog1p  ? "log1p(counts)"
                               : options.transform.scale == FrameScale::kSqrt ? "sqrt(counts)"
                                                                              : "counts"};
    attrs_ = {{"tiff_stack",
               {{"files", file_attrs},
                {"frame_shape", {box_.out_height, box_.out_width}},
                {"transform", options.transform.Describe()}}}};
    return Status::Ok();
  }

  std::pair<size_t, int64_t> Locate(int64_t item) const {
    auto it = std::upper_bound(first_item_.begin(), first_item_.end(), item);
    const size_t f = static_cast<size_t>(it - first_item_.begin()) - 1;
    return {f, item - first_item_[f]};
  }
  const std::string& file(size_t f) const { return options_.files[f]; }
  const TiffStackInfo& info(size_t f) const { return infos_[f]; }
  const FrameTransform& transform() const { return options_.transform; }
  const FrameTransform::Box& box() const { return box_; }

 private:
  TiffStackSourceOptions options_;
  std::vector<TiffStackInfo> infos_;
  std::vector<int64_t> first_item_;
  std::vector<ItemInfo> items_;
  SourceSchema schema_;
  FrameTransform::Box box_{};
  nlohmann::json attrs_;
};

class TiffStackItemReader final : public ItemReader {
 public:
  explicit TiffStackItemReader(const TiffStackSource* source) : source_(source) {}

  Status Read(int64_t item, const Region& region, RegionData* out) override {
    if (item != cached_item_) {
      auto [f, page] = source_->Locate(item);
      if (!reader_ || reader_file_ != f) {
        TS_ASSIGN_OR_RETURN(reader_, TiffStackReader::Open(source_->file(f)));
        reader_file_ = f;
      }
      TS_ASSIGN_OR_RETURN(Array raw, reader_->ReadFrame(page));
      const auto& box = source_->box();
      frame_ = Array(source_->transform().OutputDType(raw.dtype), {box.out_height, box.out_width});
      source_->transform().Apply(raw.dtype, raw.data.data(), raw.shape[1], box, frame_.data.data());
      cached_item_ = item;
    }
    const size_t elem = DTypeSize(frame_.dtype);
    if (out->x.dtype != frame_.dtype ||
        out->x.shape != std::vector<int64_t>{1, region.height, region.width})
      out->x = Array(frame_.dtype, {1, region.height, region.width});
    const size_t row_bytes = static_cast<size_t>(region.width) * elem;
    for (int64_t r = 0; r < region.height; ++r)
      std::memcpy(out->x.data.data() + static_cast<size_t>(r) * row_bytes,
                  frame_.data.data() +
                      static_cast<size_t>((region.row + r) * frame_.shape[1] + region.col) * elem,
                  row_bytes);
    return Status::Ok();
  }

 private:
  const TiffStackSource* source_;
  std::unique_ptr<TiffStackReader> reader_;
  size_t reader_file_ = 0;
  int64_t cached_item_ = -1;
  Array frame_;
};

Result<std::unique_ptr<ItemReader>> TiffStackSource::OpenReader() const {
  return std::unique_ptr<ItemReader>(new TiffStackItemReader(this));
}

}  // namespace

Result<std::unique_ptr<Source>> OpenTiffStackSource(const TiffStackSourceOptions& options) {
  auto source = std::make_unique<TiffStackSource>();
  TS_RETURN_IF_ERROR(source->Init(options));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace tilestage::ingest
