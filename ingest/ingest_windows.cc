#include "ingest/ingest_windows.h"

#include <algorithm>

namespace tilestage::ingest {

Result<EdgePolicy> ParseEdgePolicy(std::string_view text) {
  if (text == "drop") return EdgePolicy::kDrop;
  if (text == "pad") return EdgePolicy::kPad;
  if (text == "shift") return EdgePolicy::kShift;
  return InvalidArgument("--edge '", text, "': expected drop, pad or shift");
}

const char* EdgePolicyName(EdgePolicy policy) {
  switch (policy) {
    case EdgePolicy::kDrop:
      return "drop";
    case EdgePolicy::kPad:
      return "pad";
    case EdgePolicy::kShift:
      break;
  }
  return "shift";
}

std::vector<int64_t> AxisStarts(int64_t size, int64_t tile, int64_t stride, EdgePolicy edge) {
  std::vector<int64_t> starts;
  if (size <= 0 || tile <= 0 || stride <= 0) return starts;
  if (edge == EdgePolicy::kPad) {
    for (int64_t s = 0; s < size; s += stride) {
      starts.push_back(s);
      // Once a window reaches the edge, later ones would only add padding.
      if (s + tile >= size) break;
    }
    return starts;
  }
  for (int64_t s = 0; s + tile <= size; s += stride) starts.push_back(s);
  if (edge == EdgePolicy::kShift && tile <= size) {
    const int64_t last = size - tile;
    if (starts.empty() || starts.back() < last) starts.push_back(last);
  }
  return starts;
}

Result<std::vector<std::vector<Region>>> PlanWindows(const TileSpec& spec, int64_t height,
                                                     int64_t width, const std::string& item_name) {
  std::vector<std::vector<Region>> rows;
  if (height <= 0 || width <= 0)
    return InvalidArgument(item_name, ": empty item (", height, " x ", width, " pixels)");
  if (spec.whole_item) {
    rows.push_back({Region{0, 0, height, width}});
    return rows;
  }
  if (spec.height <= 0 || spec.width <= 0 || spec.stride_rows <= 0 || spec.stride_cols <= 0)
    return InvalidArgument("tile ", spec.height, "x", spec.width, " with stride ", spec.stride_rows,
                           "x", spec.stride_cols, ": sizes must be positive");
  if (spec.edge != EdgePolicy::kPad && (spec.height > height || spec.width > width))
    return InvalidArgument(item_name, ": tile ", spec.height, "x", spec.width,
                           " is larger than the raster (", height, "x", width,
                           " pixels); use a smaller --tile or --edge pad");
  const auto row_starts = AxisStarts(height, spec.height, spec.stride_rows, spec.edge);
  const auto col_starts = AxisStarts(width, spec.width, spec.stride_cols, spec.edge);
  for (int64_t r : row_starts) {
    std::vector<Region> row;
    row.reserve(col_starts.size());
    for (int64_t c : col_starts) row.push_back(Region{r, c, spec.height, spec.width});
    rows.push_back(std::move(row));
  }
  return rows;
}

Region ClipToItem(const Region& window, int64_t height, int64_t width) {
  Region r = window;
  r.height = std::max<int64_t>(0, std::min(window.row + window.height, height) - window.row);
  r.width = std::max<int64_t>(0, std::min(window.col + window.width, width) - window.col);
  return r;
}

}  // namespace tilestage::ingest
