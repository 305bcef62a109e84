#include "trainer/model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <unistd.h>

#include "tiling/synth.h"

namespace tilestage::trainer {
namespace {

constexpr uint64_t kMaskStream = 0x3a5c;

}  // namespace

const char* ObjectiveName(Objective objective) {
  switch (objective) {
    case Objective::kMae:
      return "vit-mae";
    case Objective::kRegress:
      return "vit-regress";
    case Objective::kClassify:
      return "vit-classify";
  }
  return "?";
}

Result<Objective> ParseObjective(const std::string& name) {
  if (name == "vit-mae") return Objective::kMae;
  if (name == "vit-regress") return Objective::kRegress;
  if (name == "vit-classify") return Objective::kClassify;
  return InvalidArgument("--model ", name, ": expected vit-mae, vit-regress or vit-classify");
}

nlohmann::json ModelConfig::ToJson() const {
  return {{"model", ObjectiveName(objective)},
          {"dim", dim},
          {"depth", depth},
          {"heads", heads},
          {"patch", patch},
          {"mlp_ratio", mlp_ratio},
          {"learned_pos", learned_pos},
          {"in_channels", in_channels},
          {"height", height},
          {"width", width},
          {"y_shape", y_shape},
          {"classes", classes},
          {"mask_ratio", mask_ratio},
          {"decoder_dim", decoder_dim},
          {"decoder_depth", decoder_depth},
          {"decoder_heads", decoder_heads}};
}

Result<ModelConfig> ModelConfig::FromJson(const nlohmann::json& j) {
  ModelConfig c;
  try {
    TS_ASSIGN_OR_RETURN(c.objective, ParseObjective(j.at("model").get<std::string>()));
    c.dim = j.at("dim");
    c.depth = j.at("depth");
    c.heads = j.at("heads");
    c.patch = j.at("patch");
    c.mlp_ratio = j.at("mlp_ratio");
    c.learned_pos = j.at("learned_pos");
    c.in_channels = j.at("in_channels");
    c.height = j.at("height");
    c.width = j.at("width");
    c.y_shape = j.at("y_shape").get<std::vector<int64_t>>();
    c.classes = j.at("classes");
    c.mask_ratio = j.at("mask_ratio");
    c.decoder_dim = j.at("decoder_dim");
    c.decoder_depth = j.at("decoder_depth");
    c.decoder_heads = j.at("decoder_heads");
  } catch (const std::exception& e) {
    return InvalidArgument("model config: ", e.what());
  }
  return c;
}

Status ModelConfig::Validate() const {
  if (dim <= 0 || depth <= 0 || heads <= 0 || patch <= 0 || mlp_ratio <= 0) {
    return InvalidArgument("model: --dim ", dim, " --depth ", depth, " --heads ", heads,
                           " --patch ", patch, " --mlp-ratio ", mlp_ratio, " must be positive");
  }
  // Far beyond any model this CPU trainer can train; small enough that every size product (a
  // parameter count, an activation) fits in int64.
  constexpr int64_t kMaxSize = int64_t{1} << 16;
  for (const auto& [option, value] :
       {std::pair{"--dim", dim}, {"--depth", depth}, {"--heads", heads}, {"--patch", patch},
        {"--decoder-dim", decoder_dim}, {"--decoder-depth", decoder_depth},
        {"--decoder-heads", decoder_heads}}) {
    if (value > kMaxSize)
      return InvalidArgument("model: ", option, " ", value, " is more than ", kMaxSize);
  }
  constexpr int64_t kMaxTokens = int64_t{1} << 16, kMaxClasses = int64_t{1} << 20;
  if (mlp_ratio > 64) return InvalidArgument("model: --mlp-ratio ", mlp_ratio, " is more than 64");
  if (dim % heads != 0)
    return InvalidArgument("model: --dim ", dim, " not divisible by --heads ", heads);
  if (!learned_pos && dim % 4 != 0) {
    return InvalidArgument("model: sin-cos position embedding needs --dim divisible by 4, got ",
                           dim);
  }
  if (in_channels <= 0 || height <= 0 || width <= 0) {
    return InvalidArgument("model: input x [", in_channels, ",", height, ",", width,
                           "] must be a non-empty [C,H,W] tile");
  }
  if (height % patch != 0 || width % patch != 0) {
    // Name every way out: a patch that fits, a crop that fits this patch, or other tiles.
    std::string patches;
    for (int64_t p = std::min<int64_t>({height, width, 32}); p >= 2; --p)
      if (height % p == 0 && width % p == 0 && p != patch)
        patches += (patches.empty() ? "" : ", ") + std::to_string(p);
    const int64_t crop_h = height / patch * patch, crop_w = width / patch * patch;
    std::string fixes = patches.empty() ? "" : StrCat("--patch ", patches, " (divides both); ");
    if (crop_h > 0 && crop_w > 0) fixes += StrCat("--crop ", crop_h, ",", crop_w, "; ");
    return InvalidArgument("model: --patch ", patch, " does not divide the ", height, "x", width,
                           " tiles (", height, " % ", patch, " = ", height % patch, ", ", width,
                           " % ", patch, " = ", width % patch, "): use ", fixes,
                           "or re-ingest with --tile H,W in multiples of ", patch);
  }
  if (const int64_t tokens = (height / patch) * (width / patch); tokens > kMaxTokens) {
    return InvalidArgument("model: ", height, "x", width, " tiles at --patch ", patch, " are ",
                           tokens, " tokens, more than ", kMaxTokens,
                           " (attention grows with their square): use a larger --patch or --crop");
  }
  switch (objective) {
    case Objective::kClassify:
      if (classes < 2) return InvalidArgument("vit-classify: needs --classes >= 2, got ", classes);
      if (classes > kMaxClasses) {
        return InvalidArgument("vit-classify: ", classes, " classes (--classes, or the store's ",
                               "class count) is more than ", kMaxClasses);
      }
      if (y_shape.empty()) {
        return InvalidArgument("vit-classify: needs a label field y, which the data lacks");
      }
      if (ShapeElements(y_shape) != 1) {
        return InvalidArgument("vit-classify: y must be one label per sample, got shape ",
                               FormatShape(y_shape));
      }
      break;
    case Objective::kRegress:
      if (y_shape.empty() || ShapeElements(y_shape) <= 0) {
        return InvalidArgument("vit-regress: needs a target field y, which the data lacks");
      }
      break;
    case Objective::kMae: {
      if (!(mask_ratio > 0.0 && mask_ratio < 1.0)) {
        return InvalidArgument("vit-mae: --mask-ratio ", mask_ratio, " must be in (0, 1)");
      }
      const int64_t tokens = (height / patch) * (width / patch);
      if (int64_t(tokens * (1.0 - mask_ratio)) < 1) {
        return InvalidArgument("vit-mae: --mask-ratio ", mask_ratio, " leaves no visible patch of ",
                               tokens);
      }
      if (decoder_dim <= 0 || decoder_heads <= 0 || decoder_dim % decoder_heads != 0 ||
          decoder_dim % 4 != 0 || decoder_depth < 0) {
        return InvalidArgument("vit-mae: decoder dim ", decoder_dim, " heads ", decoder_heads,
                               " depth ", decoder_depth, " inconsistent");
      }
      break;
    }
  }
  return Status::Ok();
}

Status ApplyPreset(const std::string& preset, ModelConfig* config) {
  if (preset == "tiny") {
    config->dim = 192, config->depth = 12, config->heads = 3;
  } else if (preset == "small") {
    config->dim = 384, config->depth = 12, config->heads = 6;
  } else {
    return InvalidArgument("--preset ", preset, ": expected tiny or small");
  }
  return Status::Ok();
}

Result<std::unique_ptr<VitModel>> VitModel::Create(const ModelConfig& config) {
  TS_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<VitModel> model(new VitModel(config));
  try {
    model->Build();
    // Weights, gradients and both Adam moments: four floats per parameter.
    const uint64_t need = 4 * sizeof(float) * uint64_t(model->params_.total());
    const uint64_t have = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
    if (need > have) {
      return ResourceExhausted("model: ", model->params_.total(), " parameters need ", need >> 20,
                               " MiB for weights, gradients and Adam moments; this machine has ",
                               have >> 20, " MiB");
    }
    model->params_.Finalize();
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("model: not enough memory for ", model->params_.total(),
                             " parameters and their tables");
  }
  return model;
}

void VitModel::Build() {
  const ModelConfig& c = config_;
  grid_h_ = c.height / c.patch;
  grid_w_ = c.width / c.patch;
  tokens_ = grid_h_ * grid_w_;
  patch_len_ = c.in_channels * c.patch * c.patch;
  const int64_t hidden = std::llround(c.dim * c.mlp_ratio);
  patch_embed_.Init(params_, "patch_embed.proj", patch_len_, c.dim, true,
                    {c.dim, c.in_channels, c.patch, c.patch});
  if (c.learned_pos) {
    pos_embed_ = params_.Add("pos_embed", {1, tokens_, c.dim}, false, ParamInit::kNormal02);
  } else {
    fixed_pos_ = SinCosPositionEmbedding(c.dim, grid_h_, grid_w_);
  }
  blocks_.resize(c.depth);
  for (int64_t l = 0; l < c.depth; ++l) {
    blocks_[l].Init(params_, "blocks." + std::to_string(l), c.dim, c.heads, hidden);
  }
  norm_offset_ = params_.total();
  norm_.Init(params_, "norm", c.dim);
  keep_ = tokens_;
  switch (c.objective) {
    case Objective::kClassify:
      head_out_ = c.classes;
      head_.Init(params_, "head", c.dim, head_out_);
      break;
    case Objective::kRegress:
      dense_regress_ = c.y_shape.size() == 3 && c.y_shape[1] == c.height && c.y_shape[2] == c.width;
      head_out_ = dense_regress_ ? c.y_shape[0] * c.patch * c.patch : ShapeElements(c.y_shape);
      head_.Init(params_, "head", c.dim, head_out_);
      break;
    case Objective::kMae: {
      keep_ = int64_t(tokens_ * (1.0 - c.mask_ratio));
      const int64_t dec_hidden = std::llround(c.decoder_dim * c.mlp_ratio);
      dec_embed_offset_ = params_.total();
      dec_embed_.Init(params_, "decoder_embed", c.dim, c.decoder_dim);
      mask_token_ = params_.Add("mask_token", {1, 1, c.decoder_dim}, false, ParamInit::kNormal02);
      dec_blocks_.resize(c.decoder_depth);
      for (int64_t l = 0; l < c.decoder_depth; ++l) {
        dec_blocks_[l].Init(params_, "decoder_blocks." + std::to_string(l), c.decoder_dim,
                            c.decoder_heads, dec_hidden);
      }
      dec_norm_offset_ = params_.total();
      dec_norm_.Init(params_, "decoder_norm", c.decoder_dim);
      dec_pred_.Init(params_, "decoder_pred", c.decoder_dim, patch_len_);
      fixed_dec_pos_ = SinCosPositionEmbedding(c.decoder_dim, grid_h_, grid_w_);
      break;
    }
  }
}

double VitModel::ForwardFlopsPerSample() const {
  const ModelConfig& c = config_;
  const double d = double(c.dim), hidden = std::llround(c.dim * c.mlp_ratio);
  auto block_macs = [](double tokens, double dim, double hid) {
    return tokens * (4.0 * dim * dim + 2.0 * dim * hid) + 2.0 * tokens * tokens * dim;
  };
  double macs = double(keep_) * patch_len_ * d + c.depth * block_macs(keep_, d, hidden);
  if (c.objective == Objective::kMae) {
    const double dd = double(c.decoder_dim), dh = std::llround(c.decoder_dim * c.mlp_ratio);
    macs +=
        keep_ * d * dd + c.decoder_depth * block_macs(tokens_, dd, dh) + tokens_ * dd * patch_len_;
  } else if (dense_regress_) {
    macs += tokens_ * d * head_out_;
  } else {
    macs += d * head_out_;
  }
  return 2.0 * macs;
}

void VitModel::SelectTokens(const BatchView& batch, uint64_t seed) {
  const int64_t b_count = batch.size;
  keep_ids_.resize(b_count * keep_);
  masked_.assign(b_count * tokens_, 0);
  if (config_.objective != Objective::kMae) {
    for (int64_t b = 0; b < b_count; ++b) {
      std::iota(keep_ids_.begin() + b * keep_, keep_ids_.begin() + (b + 1) * keep_, 0);
    }
    return;
  }
  // MAE's random masking: argsort of per-token noise keyed by (seed, epoch, sample, token), so a
  // sample gets the same mask whichever rank or batch position it lands in.
  std::vector<std::pair<double, int32_t>> noise(tokens_);
  for (int64_t b = 0; b < b_count; ++b) {
    const uint64_t sample = !batch.sample_ids.empty() ? batch.sample_ids[b] : uint64_t(b);
    for (int64_t t = 0; t < tokens_; ++t) {
      noise[t] = {CounterUniform(seed, (kMaskStream << 40) ^ batch.epoch, sample * tokens_ + t),
                  int32_t(t)};
    }
    std::sort(noise.begin(), noise.end());
    int32_t* ids = keep_ids_.data() + b * keep_;
    for (int64_t j = 0; j < keep_; ++j) ids[j] = noise[j].second;
    std::sort(ids, ids + keep_);
    for (int64_t j = keep_; j < tokens_; ++j) masked_[b * tokens_ + noise[j].second] = 1;
  }
}

// The layers index the buffers by the config's sizes: a short buffer would be read past its end.
Status VitModel::CheckBatch(const BatchView& batch) const {
  const ModelConfig& c = config_;
  const int64_t bsz = batch.size;
  if (bsz <= 0) return InvalidArgument("model: empty batch");
  const uint64_t x_want = uint64_t(bsz) * uint64_t(c.in_channels * c.height * c.width);
  if (batch.x.size() != x_want) {
    return InvalidArgument(ObjectiveName(c.objective), ": batch of ", bsz, " samples of [",
                           c.in_channels, ",", c.height, ",", c.width, "] needs ", x_want,
                           " x values, got ", batch.x.size());
  }
  if (c.objective != Objective::kMae) {
    const uint64_t y_want = uint64_t(bsz) * uint64_t(ShapeElements(c.y_shape));
    if (batch.y.size() != y_want) {
      return InvalidArgument(ObjectiveName(c.objective), ": batch of ", bsz, " samples needs ",
                             y_want, " target y values, got ", batch.y.size());
    }
  }
  if (!batch.x_valid.empty() && batch.x_valid.size() != batch.x.size()) {
    return InvalidArgument(ObjectiveName(c.objective), ": batch has ", batch.x.size(),
                           " x values but ", batch.x_valid.size(), " validity flags");
  }
  if (!batch.y_valid.empty() && batch.y_valid.size() != batch.y.size()) {
    return InvalidArgument(ObjectiveName(c.objective), ": batch has ", batch.y.size(),
                           " target y values but ", batch.y_valid.size(), " validity flags");
  }
  if (!batch.sample_ids.empty() && batch.sample_ids.size() != uint64_t(bsz)) {
    return InvalidArgument(ObjectiveName(c.objective), ": batch of ", bsz, " samples has ",
                           batch.sample_ids.size(), " sample ids");
  }
  return Status::Ok();
}

// Patches, the kept tokens (all but MAE's masked ones) embedded with their positions, the
// transformer blocks and the final norm.
void VitModel::Encode(const BatchView& batch, uint64_t seed) {
  const ModelConfig& c = config_;
  const int64_t bsz = batch.size, d = c.dim, t_all = tokens_, p_len = patch_len_;
  batch_ = batch;
  batch_size_ = bsz;
  patches_.resize(bsz * t_all * p_len);
  Im2Patches(batch.x.data(), bsz, c.in_channels, c.height, c.width, c.patch, patches_.data());
  SelectTokens(batch, seed);
  const int64_t rows = bsz * keep_;
  sel_patches_.resize(rows * p_len);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / keep_, t = keep_ids_[r];
    std::copy_n(patches_.data() + (b * t_all + t) * p_len, p_len, sel_patches_.data() + r * p_len);
  }
  xs_.resize(c.depth + 1);
  for (auto& x : xs_) x.resize(rows * d);
  patch_embed_.Forward(params_, sel_patches_.data(), rows, xs_[0].data());
  const float* pos = c.learned_pos ? params_.param(pos_embed_) : fixed_pos_.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = pos + int64_t(keep_ids_[r]) * d;
    float* xr = xs_[0].data() + r * d;
    for (int64_t j = 0; j < d; ++j) xr[j] += pr[j];
  }
  for (int64_t l = 0; l < c.depth; ++l) {
    blocks_[l].Forward(params_, xs_[l].data(), bsz, keep_, xs_[l + 1].data());
  }
  enc_out_.resize(rows * d);
  norm_.Forward(params_, xs_[c.depth].data(), rows, enc_out_.data());
}

// The mean of each sample's encoded tokens, into pooled_.
void VitModel::MeanPool() {
  const int64_t bsz = batch_size_, d = config_.dim, rows = bsz * keep_;
  pooled_.assign(bsz * d, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float* pb = pooled_.data() + (r / keep_) * d;
    const float* er = enc_out_.data() + r * d;
    for (int64_t j = 0; j < d; ++j) pb[j] += er[j];
  }
  for (float& v : pooled_) v /= float(keep_);
}

// Cross-entropy of the pooled head's logits; leaves the softmax in logits_ for Backward.
Status VitModel::ClassifyLoss(const BatchView& batch, LossResult* result) {
  const int64_t bsz = batch.size;
  MeanPool();
  logits_.resize(bsz * head_out_);
  head_.Forward(params_, pooled_.data(), bsz, logits_.data());
  double loss = 0.0;
  target_weight_.clear();
  if (!batch.y_valid.empty()) {
    target_weight_.resize(bsz);
    for (int64_t b = 0; b < bsz; ++b) target_weight_[b] = batch.y_valid[b] ? 1.0f : 0.0f;
  }
  valid_targets_ = 0.0;
  for (int64_t b = 0; b < bsz; ++b) {
    if (!target_weight_.empty() && target_weight_[b] == 0.0f) continue;  // unlabelled
    valid_targets_ += 1.0;
    const float label_value = batch.y[b];
    const int64_t label = int64_t(label_value);
    if (!(label_value >= 0.0f) || float(label) != label_value || label >= head_out_) {
      const uint64_t id = !batch.sample_ids.empty() ? batch.sample_ids[b] : uint64_t(b);
      return InvalidArgument("vit-classify: sample ", id, " has label ", label_value,
                             ", expected an integer in [0, ", head_out_, ")");
    }
    float* lr = logits_.data() + b * head_out_;
    const int64_t arg = std::max_element(lr, lr + head_out_) - lr;
    if (arg == label) ++result->correct;
    const float mx = lr[arg];
    double sum = 0.0;
    for (int64_t k = 0; k < head_out_; ++k) sum += std::exp(double(lr[k] - mx));
    loss += std::log(sum) - double(lr[label] - mx);
    // Keep the softmax for backward.
    for (int64_t k = 0; k < head_out_; ++k) lr[k] = float(std::exp(double(lr[k] - mx)) / sum);
  }
  if (batch.targets_per_rank > 0) valid_targets_ = batch.targets_per_rank;
  result->loss = valid_targets_ > 0 ? loss / valid_targets_ : 0.0;
  return Status::Ok();
}

// Weighted mean squared error of the head: per patch row (dense) or per sample (pooled).
double VitModel::RegressLoss(const BatchView& batch) {
  const ModelConfig& c = config_;
  const int64_t bsz = batch.size, rows = bsz * keep_;
  if (dense_regress_) {
    pred_.resize(rows * head_out_);
    head_.Forward(params_, enc_out_.data(), rows, pred_.data());
    target_.resize(rows * head_out_);
    Im2Patches(batch.y.data(), bsz, c.y_shape[0], c.height, c.width, c.patch, target_.data());
  } else {
    MeanPool();
    pred_.resize(bsz * head_out_);
    head_.Forward(params_, pooled_.data(), bsz, pred_.data());
    target_.assign(batch.y.begin(), batch.y.begin() + bsz * head_out_);
  }
  const int64_t count = int64_t(pred_.size());
  target_weight_.clear();
  if (!batch.y_valid.empty()) {
    // The weights take the targets' layout: per element, or patch rows like target_.
    std::vector<float> valid(batch.y_valid.begin(), batch.y_valid.end());
    target_weight_.resize(count);
    if (dense_regress_) {
      Im2Patches(valid.data(), bsz, c.y_shape[0], c.height, c.width, c.patch,
                 target_weight_.data());
    } else {
      target_weight_ = std::move(valid);
    }
  }
  double sq = 0.0;
  valid_targets_ = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double w = target_weight_.empty() ? 1.0 : double(target_weight_[i]);
    const double e = double(pred_[i]) - double(target_[i]);
    sq += w * e * e;
    valid_targets_ += w;
  }
  if (batch.targets_per_rank > 0) valid_targets_ = batch.targets_per_rank;
  return valid_targets_ > 0 ? sq / valid_targets_ : 0.0;
}

// MAE: the decoder over all tokens (mask tokens where masked) and the mean squared error of its
// reconstruction of the masked patches.
double VitModel::MaeLoss() {
  const ModelConfig& c = config_;
  const int64_t bsz = batch_size_, t_all = tokens_, p_len = patch_len_, rows = bsz * keep_;
  const int64_t dd = c.decoder_dim, full_rows = bsz * t_all;
  dec_in_.resize(rows * dd);
  dec_embed_.Forward(params_, enc_out_.data(), rows, dec_in_.data());
  dec_xs_.resize(c.decoder_depth + 1);
  for (auto& x : dec_xs_) x.resize(full_rows * dd);
  float* full = dec_xs_[0].data();
  const float* mask_token = params_.param(mask_token_);
  for (int64_t r = 0; r < full_rows; ++r) std::copy_n(mask_token, dd, full + r * dd);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / keep_, t = keep_ids_[r];
    std::copy_n(dec_in_.data() + r * dd, dd, full + (b * t_all + t) * dd);
  }
  for (int64_t r = 0; r < full_rows; ++r) {
    const float* pr = fixed_dec_pos_.data() + (r % t_all) * dd;
    for (int64_t j = 0; j < dd; ++j) full[r * dd + j] += pr[j];
  }
  for (int64_t l = 0; l < c.decoder_depth; ++l) {
    dec_blocks_[l].Forward(params_, dec_xs_[l].data(), bsz, t_all, dec_xs_[l + 1].data());
  }
  dec_out_.resize(full_rows * dd);
  dec_norm_.Forward(params_, dec_xs_[c.decoder_depth].data(), full_rows, dec_out_.data());
  pred_.resize(full_rows * p_len);
  dec_pred_.Forward(params_, dec_out_.data(), full_rows, pred_.data());
  // Invalid pixels (0 after normalization) are no data to reconstruct: they carry weight 0 in
  // the targets' normalization and in the loss.
  const BatchView& batch = batch_;
  if (batch.x_valid.empty()) {
    target_weight_.clear();
  } else {
    x_valid_f_.assign(batch.x_valid.begin(), batch.x_valid.end());
    target_weight_.resize(full_rows * p_len);
    Im2Patches(x_valid_f_.data(), bsz, c.in_channels, c.height, c.width, c.patch,
               target_weight_.data());
  }
  // Per-patch normalized targets (MAE's norm_pix_loss) over the patch's valid pixels,
  // population variance.
  target_.resize(full_rows * p_len);
  double sq = 0.0, valid = 0.0;
  for (int64_t r = 0; r < full_rows; ++r) {
    const float* src = patches_.data() + r * p_len;
    const float* w = target_weight_.empty() ? nullptr : target_weight_.data() + r * p_len;
    float* dst = target_.data() + r * p_len;
    double n = 0.0, mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < p_len; ++j) {
      const double wj = w ? w[j] : 1.0;
      n += wj;
      mean += wj * src[j];
    }
    if (n == 0.0) {
      std::fill_n(dst, p_len, 0.0f);
      continue;
    }
    mean /= n;
    for (int64_t j = 0; j < p_len; ++j) var += (w ? w[j] : 1.0) * (src[j] - mean) * (src[j] - mean);
    var /= n;
    const double inv = 1.0 / std::sqrt(var + 1e-6);
    for (int64_t j = 0; j < p_len; ++j) dst[j] = w && !w[j] ? 0.0f : float((src[j] - mean) * inv);
    if (!masked_[r]) continue;
    valid += n;
    for (int64_t j = 0; j < p_len; ++j) {
      const double e = double(pred_[r * p_len + j]) - double(dst[j]);
      sq += (w ? w[j] : 1.0) * e * e;
    }
  }
  valid_targets_ = batch.targets_per_rank > 0 ? batch.targets_per_rank : valid;
  return valid_targets_ > 0 ? sq / valid_targets_ : 0.0;
}

Result<double> VitModel::MaeTargets(const BatchView& batch, uint64_t seed) {
  TS_RETURN_IF_ERROR(CheckBatch(batch));
  const ModelConfig& c = config_;
  SelectTokens(batch, seed);
  const int64_t masked = std::count(masked_.begin(), masked_.end(), uint8_t{1});
  if (batch.x_valid.empty()) return double(masked * patch_len_);
  const int64_t p = c.patch, gw = c.width / p, plane = c.height * c.width;
  double valid = 0.0;
  for (int64_t r = 0; r < batch.size * tokens_; ++r) {
    if (!masked_[r]) continue;
    const int64_t b = r / tokens_, gy = (r % tokens_) / gw, gx = (r % tokens_) % gw;
    for (int64_t ch = 0; ch < c.in_channels; ++ch)
      for (int64_t ky = 0; ky < p; ++ky) {
        const uint8_t* v = batch.x_valid.data() + (b * c.in_channels + ch) * plane +
                           (gy * p + ky) * c.width + gx * p;
        valid += double(std::count(v, v + p, uint8_t{1}));
      }
  }
  return valid;
}

Result<LossResult> VitModel::Forward(const BatchView& batch, uint64_t seed) {
  TS_RETURN_IF_ERROR(CheckBatch(batch));
  Encode(batch, seed);
  LossResult result;
  switch (config_.objective) {
    case Objective::kClassify:
      TS_RETURN_IF_ERROR(ClassifyLoss(batch, &result));
      break;
    case Objective::kRegress:
      result.loss = RegressLoss(batch);
      break;
    case Objective::kMae:
      result.loss = MaeLoss();
      break;
  }
  return result;
}

void VitModel::Backward(const std::function<void(int64_t)>& on_grads_ready) {
  const ModelConfig& c = config_;
  const int64_t bsz = batch_size_, d = c.dim, t_all = tokens_, p_len = patch_len_;
  const int64_t rows = bsz * keep_;
  auto ready = [&](int64_t offset) {
    if (on_grads_ready) on_grads_ready(offset);
  };
  d_enc_out_.assign(rows * d, 0.0f);
  auto unpool = [&] {
    for (int64_t r = 0; r < rows; ++r) {
      const float* pb = d_pooled_.data() + (r / keep_) * d;
      float* dr = d_enc_out_.data() + r * d;
      for (int64_t j = 0; j < d; ++j) dr[j] = pb[j] / float(keep_);
    }
  };
  switch (c.objective) {
    case Objective::kClassify: {
      d_pred_.assign(logits_.begin(), logits_.end());  // softmax
      for (int64_t b = 0; b < bsz; ++b) {
        float* db = d_pred_.data() + b * head_out_;
        if (!target_weight_.empty() && target_weight_[b] == 0.0f) {
          std::fill(db, db + head_out_, 0.0f);  // unlabelled: no gradient
          continue;
        }
        db[int64_t(batch_.y[b])] -= 1.0f;
        for (int64_t k = 0; k < head_out_; ++k) db[k] /= float(valid_targets_);
      }
      d_pooled_.assign(bsz * d, 0.0f);
      head_.Backward(params_, pooled_.data(), d_pred_.data(), bsz, d_pooled_.data());
      unpool();
      break;
    }
    case Objective::kRegress: {
      const float scale = valid_targets_ > 0 ? 2.0f / float(valid_targets_) : 0.0f;
      d_pred_.resize(pred_.size());
      for (size_t i = 0; i < pred_.size(); ++i) {
        const float w = target_weight_.empty() ? 1.0f : target_weight_[i];
        d_pred_[i] = scale * w * (pred_[i] - target_[i]);
      }
      if (dense_regress_) {
        head_.Backward(params_, enc_out_.data(), d_pred_.data(), rows, d_enc_out_.data());
      } else {
        d_pooled_.assign(bsz * d, 0.0f);
        head_.Backward(params_, pooled_.data(), d_pred_.data(), bsz, d_pooled_.data());
        unpool();
      }
      break;
    }
    case Objective::kMae: {
      const int64_t dd = c.decoder_dim, full_rows = bsz * t_all;
      d_pred_.assign(full_rows * p_len, 0.0f);
      const float scale = valid_targets_ > 0 ? float(2.0 / valid_targets_) : 0.0f;
      for (int64_t r = 0; r < full_rows; ++r) {
        if (!masked_[r]) continue;
        const float* w = target_weight_.empty() ? nullptr : target_weight_.data() + r * p_len;
        for (int64_t j = 0; j < p_len; ++j) {
          d_pred_[r * p_len + j] =
              scale * (w ? w[j] : 1.0f) * (pred_[r * p_len + j] - target_[r * p_len + j]);
        }
      }
      d_dec_out_.assign(full_rows * dd, 0.0f);
      dec_pred_.Backward(params_, dec_out_.data(), d_pred_.data(), full_rows, d_dec_out_.data());
      d_dec_xs_.resize(c.decoder_depth + 1);
      for (auto& x : d_dec_xs_) x.assign(full_rows * dd, 0.0f);
      dec_norm_.Backward(params_, dec_xs_[c.decoder_depth].data(), d_dec_out_.data(), full_rows,
                         d_dec_xs_[c.decoder_depth].data());
      ready(dec_norm_offset_);
      for (int64_t l = c.decoder_depth - 1; l >= 0; --l) {
        dec_blocks_[l].Backward(params_, dec_xs_[l].data(), d_dec_xs_[l + 1].data(), bsz, t_all,
                                d_dec_xs_[l].data());
        ready(dec_blocks_[l].first_param_offset());
      }
      const float* d_full = d_dec_xs_[0].data();
      float* d_mask = params_.grad(mask_token_);
      d_dec_in_.resize(rows * dd);
      for (int64_t r = 0; r < full_rows; ++r) {
        if (!masked_[r]) continue;
        for (int64_t j = 0; j < dd; ++j) d_mask[j] += d_full[r * dd + j];
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / keep_, t = keep_ids_[r];
        std::copy_n(d_full + (b * t_all + t) * dd, dd, d_dec_in_.data() + r * dd);
      }
      dec_embed_.Backward(params_, enc_out_.data(), d_dec_in_.data(), rows, d_enc_out_.data());
      ready(dec_embed_offset_);
      break;
    }
  }
  dxs_.resize(c.depth + 1);
  for (auto& x : dxs_) x.assign(rows * d, 0.0f);
  norm_.Backward(params_, xs_[c.depth].data(), d_enc_out_.data(), rows, dxs_[c.depth].data());
  ready(norm_offset_);
  for (int64_t l = c.depth - 1; l >= 0; --l) {
    blocks_[l].Backward(params_, xs_[l].data(), dxs_[l + 1].data(), bsz, keep_, dxs_[l].data());
    ready(blocks_[l].first_param_offset());
  }
  if (c.learned_pos) {
    float* dpos = params_.grad(pos_embed_);
    for (int64_t r = 0; r < rows; ++r) {
      float* pr = dpos + int64_t(keep_ids_[r]) * d;
      const float* gr = dxs_[0].data() + r * d;
      for (int64_t j = 0; j < d; ++j) pr[j] += gr[j];
    }
  }
  patch_embed_.Backward(params_, sel_patches_.data(), dxs_[0].data(), rows, nullptr);
  ready(0);
}

}  // namespace tilestage::trainer
