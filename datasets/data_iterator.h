// Resumable shuffled iteration over a data set of `size` examples: epochs, a seeded permutation
// per epoch, batches of N, and a cursor that can be saved (JSON) and restored.
//
// Contract:
//   - The order is a function of (seed, size) only: epoch e visits every index once in the
//     permutation drawn from mix_seed(seed, e) (SeededRandom, so identical on every platform);
//     with shuffle off it is 0..size-1 every epoch.
//   - A batch that reaches the end of an epoch continues into the next one, so every batch
//     has exactly N indices and no example is skipped or repeated within an epoch.
//   - cursor() is the position of the next index to hand out. A fresh iterator for the same
//     (size, seed, shuffle) restored to a saved cursor yields exactly the batches the
//     original would have yielded next. Restoring a cursor saved for a different size, seed
//     or shuffle setting is an error (the order would silently differ).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/example.h"

namespace aha {

struct DataCursor {
  uint64_t epoch = 0;
  uint64_t position = 0;  // index into the epoch's permutation
  uint64_t seed = 0;
  uint64_t size = 0;
  bool shuffle = true;

  // {"epoch": 1, "position": 12, "seed": 7, "size": 100, "shuffle": true}
  std::string to_json() const;
  // `what` names the document in errors; all five fields are required, unknown ones rejected.
  static DataCursor from_json(std::string_view text, const std::string& what);
};

class DataIterator {
 public:
  DataIterator(size_t size, uint64_t seed, bool shuffle = true);

  // The indices of the next batch of n (n >= 1) examples.
  std::vector<size_t> next_indices(size_t n);
  // The next batch of n examples of `examples` (whose size must be the iterator's).
  std::vector<Example> next_batch(const std::vector<Example>& examples, size_t n);

  DataCursor cursor() const;
  void restore(const DataCursor& cursor);

  uint64_t epoch() const { return epoch_; }
  size_t size() const { return size_; }

 private:
  void build_order();

  size_t size_;
  uint64_t seed_;
  bool shuffle_;
  uint64_t epoch_ = 0;
  size_t position_ = 0;
  std::vector<size_t> order_;  // the permutation of epoch_
};

}  // namespace aha
