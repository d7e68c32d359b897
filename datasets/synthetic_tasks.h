// Seeded generators of small reasoning tasks, for tests, examples and for training a model
// from scratch: multi-step arithmetic word problems (with worked solutions) and Countdown
// (reach a target from given numbers), plus a prose corpus of both for pretraining a base model.
//
// Contract:
//   - Deterministic on every platform: the same (n, seed, config, split) gives the same
//     examples (SeededRandom; no std:: distributions).
//   - Split: each problem has a key naming its mathematical content (for arithmetic the start
//     value and operations, for Countdown the sorted numbers and the target; names and wording
//     are not part of it). A problem is held out when stable_hash(key) falls in the held-out
//     share (kHeldoutPerMille); train generation rejects those and held-out generation keeps
//     only those, so no held-out problem ever appears in training, whatever the seeds.
//   - Within one call, problems are unique by key. When the configuration cannot produce n
//     distinct problems, generation throws aha::Error rather than looping: at once, naming n
//     and the maximum, when n exceeds max_distinct_problems (problem_counts.h), else after a
//     bounded number of draws.
//   - Arithmetic golds are integers >= 0: subtraction never goes below zero and division is exact.
//   - Countdown instances are solvable (verified by exhaustive search), and the target is never
//     one of the numbers themselves. The stored solution prefers positive-integer steps.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/example.h"

namespace aha {

enum class Split { train, heldout };
Split parse_split(std::string_view name);  // "train" or "heldout"
const char* split_name(Split split);

constexpr uint64_t kHeldoutPerMille = 100;  // 10% of problem keys are held out
bool is_heldout_key(std::string_view problem_key);

// The most steps a recipe may ask of arithmetic (dataset_spec.h, base_corpus.h): deep enough
// that a one-shot answer fails and a written chain is needed.
constexpr int kMaxArithmeticSteps = 12;

struct ArithmeticConfig {
  int min_steps = 1, max_steps = 2;  // operations after the starting amount
  int64_t start_min = 2, start_max = 20;
  int64_t operand_max = 10;  // amounts added or taken away: 1..operand_max
  int64_t factor_max = 3;    // multiplication by 2..factor_max (< 2: none)
  int64_t divisor_max = 3;   // exact division by 2..divisor_max (< 2: none)
  int64_t value_max = 1000;  // the running amount never exceeds this

  // Difficulty 1 (one addition or subtraction, small numbers) to 5 (4-6 steps of all four
  // operations, larger numbers); aha::Error outside 1..5.
  static ArithmeticConfig for_difficulty(int difficulty);
};

struct CountdownConfig {
  int min_numbers = 3, max_numbers = 4;  // 2..6
  int64_t number_min = 1, number_max = 25;
  int64_t target_min = 1, target_max = 100;
  // Targets made by combining every number (as in TinyZero's Countdown data), so no instance
  // is a one-step sum; the countdown reward still accepts answers that use fewer
  // numbers (unless its option use_all_numbers is set).
  bool use_all_numbers = true;

  // Difficulty 1 (3 numbers up to 10) to 5 (4 numbers up to 99, targets up to 999).
  static CountdownConfig for_difficulty(int difficulty);
};

// Arithmetic examples: kind math, gold the final amount, metadata {"task": "arithmetic",
// "split", "key", "steps", "solution"} where solution is the worked answer text ending in
// "The answer is N.".
std::vector<Example> generate_arithmetic(size_t n, uint64_t seed, const ArithmeticConfig& config, Split split);

// Countdown examples: kind custom, gold the target, metadata {"task": "countdown", "split",
// "key", "numbers", "target", "expression" (one expression reaching the target), "solution"
// (its steps in prose, ending in "The answer is <expression>.")}.
std::vector<Example> generate_countdown(size_t n, uint64_t seed, const CountdownConfig& config, Split split);

// "Question: {prompt}\nAnswer: {worked solution}" for a generated arithmetic or Countdown
// example (the base-model pretraining style, not the R1-Zero template).
std::string worked_text(const Example& example);

// A pretraining corpus of `documents` worked problems (two arithmetic for each Countdown), at
// the given difficulty, separated by blank lines.
std::string generate_pretraining_corpus(size_t documents, uint64_t seed, int difficulty, Split split);

}  // namespace aha
