// FrameTransform: the per-frame transforms diffraction users apply before training (PtychoNN and
// friends): crop (centred or a box), bin K x K, clip below a value, then log1p or sqrt.
//
// Order: crop -> bin (sum of each K x K block: photon counts add) -> clip-min -> log1p|sqrt.
// A crop alone keeps the input dtype; any other transform produces f32 (f64 for f64 input).
// A FrameTransform is an immutable value once parsed: Apply is a pure function, safe to call
// from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tiling/sample.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct FrameCrop {
  bool centred = true;  // centred: y0/x0 are computed from the frame size
  int64_t y0 = 0;
  int64_t x0 = 0;
  int64_t height = 0;
  int64_t width = 0;
};

enum class FrameScale { kNone, kLog1p, kSqrt };

struct FrameTransform {
  std::optional<FrameCrop> crop;
  int64_t bin = 1;
  std::optional<double> clip_min;
  FrameScale scale = FrameScale::kNone;
  // clip + log1p/sqrt of every u16 value (u8 values are a prefix), computed by Parse with the
  // same float operations as the per-pixel path, so integer detector frames take a table lookup
  // instead of a libm call per pixel; identical results. Null when there is no clip or scale.
  std::shared_ptr<const std::vector<float>> u16_table;

  // crop_text: "" (none), "H,W" (centred) or "Y0,X0,H,W" (box). log1p and sqrt exclude each
  // other. InvalidArgument naming the bad option value otherwise.
  static Result<FrameTransform> Parse(const std::string& crop_text, int64_t bin, bool log1p,
                                      bool sqrt, std::optional<double> clip_min);

  bool IsIdentity() const;
  // "crop=256,256 bin=2 clip_min=0 log1p", for manifests.
  std::string Describe() const;
  DType OutputDType(DType input) const;
  struct Box {
    int64_t y0, x0, height, width;  // the input region used
    int64_t out_height, out_width;
  };
  // The region of an input frame that is used and the output size. InvalidArgument naming
  // `where` when the crop does not fit or the cropped size is not a multiple of bin.
  Result<Box> Plan(int64_t height, int64_t width, const std::string& where) const;

  // Transforms one C-order frame [height, width] of `input` dtype at `src` into `dst`
  // (out_height * out_width elements of OutputDType(input)). `box` comes from Plan.
  void Apply(DType input, const void* src, int64_t width, const Box& box, void* dst) const;
  // The validity of the transformed frame from an input validity mask [height, width] (u8,
  // 0 = invalid): cropped like the frame; a binned pixel is valid only when its whole K x K block
  // is (a sum over a gap pixel is no photon count). Clip and scale keep validity.
  void ApplyToMask(const uint8_t* src, int64_t width, const Box& box, uint8_t* dst) const;
  // Convenience for one frame Array [H,W] (or [1,H,W]); returns [out_h, out_w].
  Result<Array> ApplyToFrame(const Array& frame, const std::string& where) const;
};

}  // namespace tilestage::ingest
