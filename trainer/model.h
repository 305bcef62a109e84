// ViT models for the three objectives the trainer offers:
//  - kMae: masked autoencoder pretraining (random masking at mask_ratio keyed by (seed, epoch,
//    sample), encoder on the visible patches, a light decoder with a learned mask token, loss on
//    the masked patches against per-patch normalized pixels);
//  - kRegress: a dense head that predicts y ([Cy, H, W] with x's H and W: one Cy*p*p row per
//    patch) or, for any other y shape, a linear head on the mean-pooled tokens;
//  - kClassify: mean-pooled tokens, linear head, softmax cross-entropy on the label in y.
// The encoder is a patch embedding over C channels (a Linear over Conv2d-ordered patches),
// sin-cos or learned position embeddings, pre-LN blocks and a final LayerNorm.
//
// Thread-safety: one thread drives a model at a time (it runs TBB tasks inside).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tiling/status.h"
#include "trainer/layers.h"
#include "trainer/params.h"

namespace tilestage::trainer {

enum class Objective { kMae, kRegress, kClassify };
const char* ObjectiveName(Objective objective);  // "vit-mae", "vit-regress", "vit-classify"
Result<Objective> ParseObjective(const std::string& name);

struct ModelConfig {
  Objective objective = Objective::kMae;
  int64_t dim = 192;
  int64_t depth = 12;
  int64_t heads = 3;
  int64_t patch = 8;
  double mlp_ratio = 4.0;
  bool learned_pos = false;  // else fixed 2-D sin-cos
  // Input and target geometry: taken from the data.
  int64_t in_channels = 3;
  int64_t height = 64;
  int64_t width = 64;
  std::vector<int64_t> y_shape;  // per sample; regress: target shape; classify: [1] or []
  int64_t classes = 0;           // classify only
  // MAE only.
  double mask_ratio = 0.75;
  int64_t decoder_dim = 128;
  int64_t decoder_depth = 1;
  int64_t decoder_heads = 4;

  nlohmann::json ToJson() const;
  static Result<ModelConfig> FromJson(const nlohmann::json& j);
  // Checks internal consistency (divisibility, positive sizes) with messages naming the option.
  Status Validate() const;
};

// Applies a preset ("tiny": 192/12/3, "small": 384/12/6) to dim, depth and heads.
Status ApplyPreset(const std::string& preset, ModelConfig* config);

// A view of one batch as the model consumes it; Forward refuses spans of other sizes.
struct BatchView {
  int64_t size = 0;                       // B
  std::span<const float> x;               // [B, C, H, W]
  std::span<const float> y;               // [B, prod(y_shape)]; may be empty for vit-mae
  std::span<const uint64_t> sample_ids;   // B global record indices (mask RNG key), or empty
  uint64_t epoch = 0;
  // [B, prod(y_shape)]: 0 where the target is missing (nodata, NaN), which the regress and
  // classify losses skip; empty when every target is valid.
  std::span<const uint8_t> y_valid = {};
  // > 0: the regress/classify loss divides by this many targets instead of the batch's own
  // valid count. Data parallel passes the job's valid targets / ranks, so that the ranks'
  // averaged gradients are those of the mean over the whole global batch, however the masked
  // targets fall across ranks.
  // MAE: the job's valid pixels of masked patches / ranks (MaeTargets summed over ranks).
  double targets_per_rank = 0.0;
  // [B, C, H, W]: 0 where x held no data (nodata, NaN, padding; 0 after normalization), which the
  // MAE reconstruction loss skips (and its per-patch target normalization ignores); empty when
  // every pixel is valid.
  std::span<const uint8_t> x_valid = {};
};

struct LossResult {
  // Mean over the batch's valid targets (MAE: over the valid pixels of masked patches); 0 when
  // no target is valid.
  double loss = 0.0;
  int64_t correct = 0;  // classify: samples whose arg-max equals the label
};

class VitModel {
 public:
  // Builds the layers and allocates the parameter buffers (not initialized: see InitParams).
  static Result<std::unique_ptr<VitModel>> Create(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  void InitParams(uint64_t seed) { params_.Initialize(seed); }

  // Forward pass and loss. The batch must stay alive until Backward. `seed` keys the MAE masks.
  Result<LossResult> Forward(const BatchView& batch, uint64_t seed);
  // Adds d(loss)/d(params) into params().grads(). After each layer, on_grads_ready(offset) says
  // the gradients at [offset, total) are final (offsets only decrease), so an allreduce of that
  // range may start while the rest of backward runs.
  void Backward(const std::function<void(int64_t)>& on_grads_ready = {});

  // MAE: the number of valid x pixels in the masked patches of `batch` (the masks `seed` keys,
  // as Forward draws them), what the loss averages over; a data-parallel job sums it over ranks
  // for BatchView::targets_per_rank. InvalidArgument as Forward for a malformed batch.
  Result<double> MaeTargets(const BatchView& batch, uint64_t seed);

  // The last MAE Forward's reconstruction [B*T, P] (patches in Im2Patches order, in units of the
  // per-patch normalized targets) and its token mask [B, T] (1: masked, reconstructed): what a
  // user visualizes, and what the tests check the loss against. Valid until the next Forward.
  std::span<const float> reconstruction() const { return pred_; }
  std::span<const uint8_t> token_mask() const { return masked_; }

  // Multiply-adds of one forward pass for one sample x 2 (GFLOP/s accounting); backward ~2x.
  double ForwardFlopsPerSample() const;

 private:
  explicit VitModel(const ModelConfig& config) : config_(config) {}
  void Build();  // registers every parameter and fixed table; Create allocates the parameters
  void SelectTokens(const BatchView& batch, uint64_t seed);
  // The steps of Forward: the batch checked against the config, the encoder over the kept
  // tokens (into enc_out_), then the objective's head and loss.
  Status CheckBatch(const BatchView& batch) const;
  void Encode(const BatchView& batch, uint64_t seed);
  void MeanPool();
  Status ClassifyLoss(const BatchView& batch, LossResult* result);
  double RegressLoss(const BatchView& batch);
  double MaeLoss();

  ModelConfig config_;
  ParamStore params_;
  int64_t grid_h_ = 0, grid_w_ = 0, tokens_ = 0, patch_len_ = 0, keep_ = 0;
  bool dense_regress_ = false;
  int64_t head_out_ = 0;
  int64_t norm_offset_ = 0, dec_embed_offset_ = 0, dec_norm_offset_ = 0;

  Linear patch_embed_;
  ParamRef pos_embed_;  // learned only
  std::vector<float> fixed_pos_, fixed_dec_pos_;
  std::vector<Block> blocks_;
  LayerNorm norm_;
  Linear head_;  // classify / regress
  // MAE decoder.
  Linear dec_embed_;
  ParamRef mask_token_;
  std::vector<Block> dec_blocks_;
  LayerNorm dec_norm_;
  Linear dec_pred_;

  // Activations of the last Forward.
  BatchView batch_;
  int64_t batch_size_ = 0;
  std::vector<int32_t> keep_ids_;       // [B, keep] token index of each encoder row
  std::vector<uint8_t> masked_;         // [B, T] 1 where a token is masked (MAE)
  std::vector<float> patches_;          // [B*T, P]
  std::vector<float> sel_patches_;      // [B*keep, P]
  std::vector<std::vector<float>> xs_;  // encoder residual stream, depth+1 entries
  std::vector<float> enc_out_;          // after the final norm
  std::vector<float> pooled_, logits_, pred_, target_;
  // Regress/classify: 1/0 weight of each target element (regress) or sample (classify); MAE: of
  // each pixel of each patch [B*T, P]; empty when all are valid. And the number of valid ones
  // the loss averages over.
  std::vector<float> target_weight_;
  std::vector<float> x_valid_f_;  // MAE: x_valid as float, patchified into target_weight_
  double valid_targets_ = 0.0;  // the loss's divisor: this batch's valid targets, or targets_per_rank
  std::vector<std::vector<float>> dxs_;
  std::vector<float> d_enc_out_, d_pooled_, d_pred_;
  std::vector<float> dec_in_, dec_full_;
  std::vector<std::vector<float>> dec_xs_;
  std::vector<float> dec_out_;
  std::vector<std::vector<float>> d_dec_xs_;
  std::vector<float> d_dec_out_, d_dec_in_;
};

}  // namespace tilestage::trainer
