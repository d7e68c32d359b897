#include "datasets/problem_counts.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "datasets/countdown.h"

namespace aha {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

uint64_t add_sat(uint64_t a, uint64_t b) { return a > kMax - b ? kMax : a + b; }
uint64_t mul_sat(uint64_t a, uint64_t b) { return a != 0 && b > kMax / a ? kMax : a * b; }

// The steps draw_arithmetic (synthetic_tasks.cpp) may take from `value`, as (operator, operand)
// pairs: the same rules, so that every sequence counted here can be drawn and vice versa.
std::vector<std::pair<char, int64_t>> arithmetic_moves(int64_t value, const ArithmeticConfig& c) {
  std::vector<std::pair<char, int64_t>> moves;
  if (value + 1 <= c.value_max)
    for (int64_t k = 1; k <= std::min(c.operand_max, c.value_max - value); ++k) moves.emplace_back('+', k);
  if (value >= 1)
    for (int64_t k = 1; k <= std::min(c.operand_max, value); ++k) moves.emplace_back('-', k);
  if (c.factor_max >= 2 && value >= 1 && value * 2 <= c.value_max)
    for (int64_t k = 2; k <= std::max<int64_t>(2, std::min(c.factor_max, c.value_max / value)); ++k)
      moves.emplace_back('*', k);
  for (int64_t d = 2; d <= c.divisor_max; ++d)
    if (value >= d && value % d == 0) moves.emplace_back('/', d);
  return moves;
}

int64_t apply(int64_t value, char op, int64_t k) {
  return op == '+' ? value + k : op == '-' ? value - k : op == '*' ? value * k : value / k;
}

// Problems of one split, by walking every key (only called when there are few).
uint64_t count_arithmetic_split(const ArithmeticConfig& c, Split split) {
  uint64_t count = 0;
  std::string key;
  std::function<void(int64_t, int)> walk = [&](int64_t value, int steps_taken) {
    if (steps_taken >= c.min_steps && is_heldout_key(key) == (split == Split::heldout)) ++count;
    if (steps_taken == c.max_steps) return;
    const size_t length = key.size();
    for (const auto& [op, k] : arithmetic_moves(value, c)) {
      key += op + std::to_string(k);
      walk(apply(value, op, k), steps_taken + 1);
      key.resize(length);
    }
  };
  for (int64_t start = c.start_min; start <= c.start_max; ++start) {
    key = std::to_string(start);
    walk(start, 0);
  }
  return count;
}

// Multisets of `k` numbers from a range of `r` values: C(r + k - 1, k), saturating.
uint64_t multisets(uint64_t r, int k) {
  uint64_t result = 1;
  for (int i = 1; i <= k; ++i) {
    // result * (r + i - 1) / i stays exact: the product of i consecutive integers is divisible by i!.
    const uint64_t factor = r + static_cast<uint64_t>(i) - 1;
    if (result > kMax / factor) return kMax;
    result = result * factor / static_cast<uint64_t>(i);
  }
  return result;
}

}  // namespace

uint64_t max_distinct_problems(const ArithmeticConfig& c, Split split) {
  if (c.min_steps < 1 || c.min_steps > c.max_steps || c.start_min > c.start_max || c.value_max < 1) return 0;
  // paths[v]: the number of step sequences of the current length that start at value v.
  std::vector<uint64_t> paths(static_cast<size_t>(c.value_max) + 1, 1), next(paths.size());
  std::vector<uint64_t> total(paths.size(), 0);  // sequences of min_steps..max_steps steps
  for (int steps = 1; steps <= c.max_steps; ++steps) {
    for (int64_t v = 0; v <= c.value_max; ++v) {
      uint64_t sum = 0;
      for (const auto& [op, k] : arithmetic_moves(v, c)) sum = add_sat(sum, paths[static_cast<size_t>(apply(v, op, k))]);
      next[static_cast<size_t>(v)] = sum;
    }
    paths.swap(next);
    if (steps >= c.min_steps)
      for (size_t v = 0; v < paths.size(); ++v) total[v] = add_sat(total[v], paths[v]);
  }
  uint64_t all = 0;
  for (int64_t start = std::max<int64_t>(c.start_min, 0); start <= std::min(c.start_max, c.value_max); ++start)
    all = add_sat(all, total[static_cast<size_t>(start)]);
  return all <= kExactProblemLimit ? count_arithmetic_split(c, split) : all;
}

uint64_t max_distinct_problems(const CountdownConfig& c, Split split) {
  if (c.number_min > c.number_max || c.target_min > c.target_max || c.min_numbers > c.max_numbers) return 0;
  const uint64_t range = static_cast<uint64_t>(c.number_max - c.number_min) + 1;
  uint64_t sets = 0;
  for (int k = c.min_numbers; k <= c.max_numbers; ++k) sets = add_sat(sets, multisets(range, k));
  if (sets > kExactMultisetLimit) {
    const uint64_t targets = static_cast<uint64_t>(c.target_max - c.target_min) + 1;
    return mul_sat(sets, targets);
  }
  // Few enough to solve each: keys as draw_countdown writes them ("1,3,7,=12").
  uint64_t count = 0;
  std::vector<int64_t> numbers;
  std::function<void(int, int64_t)> choose = [&](int k, int64_t from) {
    if (static_cast<int>(numbers.size()) == k) {
      std::string prefix;
      for (int64_t n : numbers) prefix += std::to_string(n) + ",";
      for (const auto& [value, derivation] : countdown_reachable_integers(numbers, c.use_all_numbers)) {
        if (value < c.target_min || value > c.target_max) continue;
        if (std::find(numbers.begin(), numbers.end(), value) != numbers.end()) continue;
        if (is_heldout_key(prefix + "=" + std::to_string(value)) == (split == Split::heldout)) ++count;
      }
      return;
    }
    for (int64_t n = from; n <= c.number_max; ++n) {
      numbers.push_back(n);
      choose(k, n);
      numbers.pop_back();
    }
  };
  for (int k = c.min_numbers; k <= c.max_numbers; ++k) choose(k, c.number_min);
  return count;
}

}  // namespace aha
