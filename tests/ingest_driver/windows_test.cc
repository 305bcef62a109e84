#include <gtest/gtest.h>

#include "ingest/ingest_windows.h"
#include "ingest/mpi_split.h"

namespace tilestage::ingest {
namespace {

TEST(AxisStarts, DropKeepsOnlyFullWindows) {
  EXPECT_EQ(AxisStarts(10, 4, 4, EdgePolicy::kDrop), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(AxisStarts(8, 4, 4, EdgePolicy::kDrop), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(AxisStarts(10, 4, 2, EdgePolicy::kDrop), (std::vector<int64_t>{0, 2, 4, 6}));
}

TEST(AxisStarts, ShiftAddsLastWindowEndingAtEdge) {
  EXPECT_EQ(AxisStarts(10, 4, 4, EdgePolicy::kShift), (std::vector<int64_t>{0, 4, 6}));
  EXPECT_EQ(AxisStarts(8, 4, 4, EdgePolicy::kShift), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(AxisStarts(4, 4, 4, EdgePolicy::kShift), (std::vector<int64_t>{0}));
}

TEST(AxisStarts, PadCoversEveryPixelOnce) {
  EXPECT_EQ(AxisStarts(10, 4, 4, EdgePolicy::kPad), (std::vector<int64_t>{0, 4, 8}));
  EXPECT_EQ(AxisStarts(3, 4, 4, EdgePolicy::kPad), (std::vector<int64_t>{0}));
  EXPECT_EQ(AxisStarts(8, 4, 4, EdgePolicy::kPad), (std::vector<int64_t>{0, 4}));
}

TEST(PlanWindows, TileLargerThanItemIsInvalidArgumentNamingBothSizes) {
  TileSpec spec{false, 64, 64, 64, 64, EdgePolicy::kShift};
  auto plan = PlanWindows(spec, 30, 100, "scene.tif");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("scene.tif"), std::string::npos);
  EXPECT_NE(plan.status().message().find("64x64"), std::string::npos);
  EXPECT_NE(plan.status().message().find("30x100"), std::string::npos);
  spec.edge = EdgePolicy::kPad;
  auto padded = PlanWindows(spec, 30, 100, "scene.tif");
  ASSERT_TRUE(padded.ok());
  ASSERT_EQ(padded->size(), 1u);
  EXPECT_EQ((*padded)[0].size(), 2u);
}

TEST(PlanWindows, WholeItemIsOneWindow) {
  TileSpec spec;
  spec.whole_item = true;
  auto plan = PlanWindows(spec, 7, 9, "x");
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0][0], (Region{0, 0, 7, 9}));
}

TEST(ItemBlock, ContiguousBalancedAndCoversAll) {
  for (int64_t n : {0, 1, 5, 7, 100}) {
    for (int size : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        ItemRange range = ItemBlock(n, r, size);
        EXPECT_EQ(range.begin, next);
        EXPECT_LE(range.end - range.begin, n / size + 1);
        EXPECT_GE(range.end - range.begin, n / size);
        next = range.end;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(EdgePolicy, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseEdgePolicy("pad"), EdgePolicy::kPad);
  auto bad = ParseEdgePolicy("wrap");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("wrap"), std::string::npos);
}

}  // namespace
}  // namespace tilestage::ingest
