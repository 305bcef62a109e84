// Tile geometry for ingest: where windows are cut out of an item of H x W pixels, given the tile
// size, the stride and the edge policy. Pure functions without I/O: thread-safe.
//
// Edge policies, for windows that would cross the item's last row or column:
//   drop  - such windows are not cut; the pixels beyond the last full window are not stored.
//   pad   - windows start at 0, stride, 2*stride... while they start inside the item; the part
//           outside the item is filled with the channel's nodata value (0 when it has none) and
//           counts as invalid (excluded from statistics, counts against --min-valid).
//   shift - (the default) like drop, plus one last window per axis shifted inward so it ends
//           exactly at the item's edge: every pixel is in some tile, no pixel is invented, the
//           last row/column of tiles overlaps its neighbour.
// A tile larger than the item is an error for drop and shift (InvalidArgument naming the item and
// both sizes); pad cuts one padded window.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/source.h"
#include "tiling/status.h"

namespace tilestage::ingest {

enum class EdgePolicy { kDrop, kPad, kShift };

Result<EdgePolicy> ParseEdgePolicy(std::string_view text);  // "drop" | "pad" | "shift"
const char* EdgePolicyName(EdgePolicy policy);

struct TileSpec {
  // Whole items are single windows (NetCDF global grids, diffraction frames) when true.
  bool whole_item = false;
  int64_t height = 256;
  int64_t width = 256;
  int64_t stride_rows = 256;  // == height: no overlap, no gap
  int64_t stride_cols = 256;
  EdgePolicy edge = EdgePolicy::kShift;
};

// Start offsets along one axis of `size` pixels.
std::vector<int64_t> AxisStarts(int64_t size, int64_t tile, int64_t stride, EdgePolicy edge);

// The windows of an item of height x width, grouped by row of windows (all windows of a group
// share `row`); in row-major order. A window may extend past the item only under kPad.
// `item_name` goes into the error message for a tile larger than the item.
Result<std::vector<std::vector<Region>>> PlanWindows(const TileSpec& spec, int64_t height,
                                                     int64_t width, const std::string& item_name);

// The part of `window` inside an item of height x width.
Region ClipToItem(const Region& window, int64_t height, int64_t width);

}  // namespace tilestage::ingest
