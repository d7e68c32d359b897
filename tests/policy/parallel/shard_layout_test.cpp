// The ZeRO shard layout (policy/parallel/shard_layout.h) on hand-worked cases.
#include "policy/parallel/shard_layout.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace aha::parallel {
namespace {

// Parameters of 3, 5, 0 and 2 elements: flat [p0: 0-2][p1: 3-7][p3: 8-9], 10 elements.
const std::vector<int64_t> kNumels = {3, 5, 0, 2};

using Range = std::pair<int64_t, int64_t>;

struct Expected {
  size_t param;
  int64_t offset, length, flat_offset;
};

void expect_pieces(const std::vector<ShardPiece>& got, const std::vector<Expected>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].param, want[i].param) << "piece " << i;
    EXPECT_EQ(got[i].offset, want[i].offset) << "piece " << i;
    EXPECT_EQ(got[i].length, want[i].length) << "piece " << i;
    EXPECT_EQ(got[i].flat_offset, want[i].flat_offset) << "piece " << i;
  }
}

TEST(ShardLayout, FourRanksSplitTenElementsThreeThreeTwoTwo) {
  ShardLayout layout(kNumels, 4);
  EXPECT_EQ(layout.total(), 10);
  EXPECT_EQ(layout.max_shard(), 3);
  EXPECT_EQ(layout.range(0), Range(0, 3));
  EXPECT_EQ(layout.range(1), Range(3, 6));
  EXPECT_EQ(layout.range(2), Range(6, 8));
  EXPECT_EQ(layout.range(3), Range(8, 10));
  expect_pieces(layout.pieces_of(0), {{0, 0, 3, 0}});
  expect_pieces(layout.pieces_of(1), {{1, 0, 3, 3}});
  expect_pieces(layout.pieces_of(2), {{1, 3, 2, 6}});
  expect_pieces(layout.pieces_of(3), {{3, 0, 2, 8}});  // the empty parameter 2 has no piece
}

TEST(ShardLayout, ThreeRanksCutInsideParameters) {
  ShardLayout layout(kNumels, 3);  // 4, 3, 3
  expect_pieces(layout.pieces_of(0), {{0, 0, 3, 0}, {1, 0, 1, 3}});
  expect_pieces(layout.pieces_of(1), {{1, 1, 3, 4}});
  expect_pieces(layout.pieces_of(2), {{1, 4, 1, 7}, {3, 0, 2, 8}});
  // Any sub-range, clipped to the parameters.
  expect_pieces(layout.pieces(2, 9), {{0, 2, 1, 2}, {1, 0, 5, 3}, {3, 0, 1, 8}});
  EXPECT_TRUE(layout.pieces(10, 20).empty());
}

TEST(ShardLayout, MoreRanksThanElementsLeavesSomeEmpty) {
  ShardLayout layout({2}, 3);
  EXPECT_EQ(layout.range(2), Range(2, 2));
  EXPECT_TRUE(layout.pieces_of(2).empty());
  EXPECT_EQ(layout.max_shard(), 1);
}

TEST(ShardLayout, RejectsBadInput) {
  EXPECT_THROW(ShardLayout(kNumels, 0), Error);
  EXPECT_THROW(ShardLayout({3, -1}, 2), Error);
  EXPECT_THROW(ShardLayout(kNumels, 2).range(2), Error);
}

}  // namespace
}  // namespace aha::parallel
