// A small seeded pseudo-random generator for datasets: SplitMix64 (Steele, Lea, Flood 2014).
//
// Contract: the same seed gives the same sequence on every platform and standard library
// (std::uniform_int_distribution and std::shuffle do not promise that, so generators and
// shuffles here use only these functions). uniform() is unbiased (rejection sampling).
#pragma once
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace aha {

class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [lo, hi] (both inclusive); requires lo <= hi.
  int64_t uniform(int64_t lo, int64_t hi) {
    uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;  // 0: full range
    if (span == 0) return static_cast<int64_t>(next());
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;  // accept draws below a multiple of span
    uint64_t draw;
    do draw = next();
    while (draw >= limit);
    return static_cast<int64_t>(static_cast<uint64_t>(lo) + draw % span);
  }

  // True with probability numerator / denominator.
  bool chance(int64_t numerator, int64_t denominator) { return uniform(1, denominator) <= numerator; }

  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[static_cast<size_t>(uniform(0, static_cast<int64_t>(items.size()) - 1))];
  }

  // Fisher-Yates shuffle.
  template <typename T>
  void shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(uniform(0, static_cast<int64_t>(i) - 1));
      std::swap(items[i - 1], items[j]);
    }
  }

 private:
  uint64_t state_;
};

// Mixes several values into one seed (SplitMix64's finaliser over a running combination), so
// that (seed, epoch) or (seed, split) pairs give unrelated streams.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// FNV-1a over bytes: a stable hash (std::hash may differ between standard libraries).
inline uint64_t stable_hash(std::string_view text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

}  // namespace aha
