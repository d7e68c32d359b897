// bench_reward [--data DIR]: reward throughput on one core.
//
// Figures (one line each, with the ratio to the named comparison):
// - math verifications per second on the MATH-500 answer pairs (the \boxed{} answer of each
//   solution against the record's answer field), against the project's target of 20,000/s;
// - the same against each next record's answer (unequal pairs, which cannot take the
//   identical-text shortcut), against the same target;
// - math_accuracy scores per second on R1-style completions built from those answers
//   (extraction + verification), against the same target;
// - format and language_consistency scores per second on the same completions, against the
//   math_accuracy figure.
// DIR defaults to ../shared/data (the MATH-500 test set is math500/test.jsonl there).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "core/json.h"
#include "tools/bench/items_per_second.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"
#include "reward/reward_registry.h"

namespace {

constexpr double kTargetPerSecond = 20000;

using aha::bench::items_per_second;

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path data = "../shared/data";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--data") data = argv[i + 1];
  std::ifstream in(data / "math500/test.jsonl");
  if (!in) {
    std::cerr << "bench_reward: cannot read " << (data / "math500/test.jsonl") << " (pass --data DIR)\n";
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> pairs;  // (boxed from the solution, answer field)
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto doc = aha::json::parse(line, "math500");
    pairs.emplace_back(aha::reward::extract_gold_answer(doc["solution"].GetString()),
                       doc["answer"].GetString());
  }

  size_t agreed = 0;
  double verify = items_per_second(pairs.size(), [&] {
    size_t equal = 0;
    for (auto& [boxed, answer] : pairs) equal += aha::reward::math_answers_equivalent(boxed, answer);
    agreed = equal;
    return equal;
  });
  std::printf(
      "math verifications/s, one core, MATH-500 answer pairs (%zu judged equal of %zu): %.0f "
      "(ratio to the 20000/s target: %.2f)\n",
      agreed, pairs.size(), verify, verify / kTargetPerSecond);

  // The same answers against the next record's: mostly unequal, so nearly every check goes
  // past the identical-text shortcut into parsing and evaluation.
  double mismatched = items_per_second(pairs.size(), [&] {
    size_t equal = 0;
    for (size_t i = 0; i < pairs.size(); ++i)
      equal += aha::reward::math_answers_equivalent(pairs[i].first, pairs[(i + 1) % pairs.size()].second);
    return equal;
  });
  std::printf(
      "math verifications/s, one core, each MATH-500 answer against the next record's: %.0f "
      "(ratio to the 20000/s target: %.2f)\n",
      mismatched, mismatched / kTargetPerSecond);

  std::vector<aha::reward::RewardExample> examples(pairs.size());
  std::vector<aha::reward::Completion> completions(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    examples[i].gold = pairs[i].second;
    completions[i].text =
        "<think>Let us work it out step by step; the result follows.</think>\n<answer>\\boxed{" +
        pairs[i].first + "}</answer>";
  }
  auto measure = [&](const std::string& kind) {
    aha::reward::RewardSpec spec;
    spec.name = spec.kind = kind;
    auto reward = aha::reward::create_reward(spec);
    return items_per_second(pairs.size(), [&] {
      size_t positive = 0;
      for (size_t i = 0; i < pairs.size(); ++i)
        positive += reward->score(examples[i], completions[i]).value > 0;
      return positive;
    });
  };
  double accuracy = measure("math_accuracy");
  std::printf(
      "math_accuracy scores/s, one core, R1-style completions of MATH-500 answers: %.0f "
      "(ratio to the 20000/s target: %.2f)\n",
      accuracy, accuracy / kTargetPerSecond);
  for (const char* kind : {"format", "language_consistency"}) {
    double r = measure(kind);
    std::printf("%s scores/s, one core, same completions: %.0f (ratio to math_accuracy: %.2f)\n", kind, r,
                r / accuracy);
  }
  return 0;
}
