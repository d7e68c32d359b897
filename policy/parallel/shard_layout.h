// How sharded learner state (ZeRO-1/2) is split over the ranks: the parameters, flattened one
// after another in the model's order, form one vector of `total()` elements, and rank r owns
// the contiguous range range(r) of it, balanced by element count (sizes differ by at most one,
// lower ranks first, as share_of). A range may start or end inside a parameter, so a rank's
// shard is a list of pieces (parameter, element offset within it, length).
//
// The layout depends only on the parameters' element counts and the world size, so every rank
// computes the same one without communication, and a checkpoint that records (parameter name,
// offset, length) for each piece can be read back under any other layout.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace aha::parallel {

struct ShardPiece {
  size_t param = 0;          // index into the parameter list
  int64_t offset = 0;        // first element within the parameter (flattened)
  int64_t length = 0;        // elements
  int64_t flat_offset = 0;   // where the piece starts in the flattened vector
};

class ShardLayout {
 public:
  // Throws aha::Error for a world size < 1 or a negative element count.
  ShardLayout(std::vector<int64_t> numels, int world_size);

  int world_size() const { return world_size_; }
  int64_t total() const { return starts_.back(); }
  size_t param_count() const { return numels_.size(); }
  int64_t numel(size_t param) const { return numels_[param]; }
  int64_t param_start(size_t param) const { return starts_[param]; }  // flat offset of its first element

  // [begin, end) of the flattened vector that `rank` owns.
  std::pair<int64_t, int64_t> range(int rank) const;
  // The largest range's size (collectives that need equal sizes pad to it).
  int64_t max_shard() const;
  // The pieces of parameters that cover the flat range [begin, end), in order (empty
  // parameters are left out).
  std::vector<ShardPiece> pieces(int64_t begin, int64_t end) const;
  std::vector<ShardPiece> pieces_of(int rank) const;

 private:
  std::vector<int64_t> numels_;
  std::vector<int64_t> starts_;  // prefix sums, size params + 1
  int world_size_;
};

}  // namespace aha::parallel
