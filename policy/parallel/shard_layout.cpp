#include "policy/parallel/shard_layout.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "policy/parallel/communicator.h"

namespace aha::parallel {

ShardLayout::ShardLayout(std::vector<int64_t> numels, int world_size)
    : numels_(std::move(numels)), world_size_(world_size) {
  require(world_size_ >= 1, "shard layout: world size must be >= 1, got " + std::to_string(world_size_));
  starts_.reserve(numels_.size() + 1);
  starts_.push_back(0);
  for (size_t i = 0; i < numels_.size(); ++i) {
    require(numels_[i] >= 0, "shard layout: parameter " + std::to_string(i) + " has a negative element count");
    starts_.push_back(starts_.back() + numels_[i]);
  }
}

std::pair<int64_t, int64_t> ShardLayout::range(int rank) const {
  require(rank >= 0 && rank < world_size_,
          "shard layout: rank " + std::to_string(rank) + " outside a world of " + std::to_string(world_size_));
  return share_of(total(), rank, world_size_);
}

int64_t ShardLayout::max_shard() const { return (total() + world_size_ - 1) / world_size_; }

std::vector<ShardPiece> ShardLayout::pieces(int64_t begin, int64_t end) const {
  std::vector<ShardPiece> out;
  begin = std::max<int64_t>(begin, 0);
  end = std::min(end, total());
  if (begin >= end) return out;
  // The last parameter whose start is <= begin.
  size_t p = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end() - 1, begin) - starts_.begin()) - 1;
  for (; p < numels_.size() && starts_[p] < end; ++p) {
    const int64_t b = std::max(begin, starts_[p]), e = std::min(end, starts_[p + 1]);
    if (e <= b) continue;
    out.push_back({p, b - starts_[p], e - b, b});
  }
  return out;
}

std::vector<ShardPiece> ShardLayout::pieces_of(int rank) const {
  const auto [b, e] = range(rank);
  return pieces(b, e);
}

}  // namespace aha::parallel
