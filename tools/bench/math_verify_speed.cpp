// math_verify_speed [--data DIR]: math verifications per second on one core, extraction and
// comparison together (what math_accuracy does per completion), on MATH-500-style pairs.
//
// Figures (one line each, with the ratio to the project's target of 20,000/s):
// - strict: R1-style completions ending in <answer>\boxed{answer}</answer>, gold the record's
//   answer field;
// - lenient, same completions and golds (strict finds the answer, lenient costs nothing more);
// - lenient, completions with no box or tag ("... so the final answer is $answer$."), against
//   the record's whole worked solution as gold (its last \boxed{} found by lenient extraction);
// - lenient, completions ending in a bare last number or math span after prose, no phrase.
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

namespace {

constexpr double kTargetPerSecond = 20000;

using aha::bench::items_per_second;

struct Pair {
  std::string completion, gold;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace aha::reward;
  std::filesystem::path data = "../shared/data";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--data") data = argv[i + 1];
  std::ifstream in(data / "math500/test.jsonl");
  if (!in) {
    std::cerr << "math_verify_speed: cannot read " << (data / "math500/test.jsonl") << " (pass --data DIR)\n";
    return 1;
  }
  const std::string prose =
      "<think>Let us work it out step by step. We have $x^2 - 5x + 6 = 0$, so $x = 2$ or $x = 3$, and "
      "the sum of the roots is 5; checking the cases gives the value below.</think>\n";
  std::vector<Pair> boxed, phrased, bare;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto doc = aha::json::parse(line, "math500");
    std::string answer = doc["answer"].GetString(), solution = doc["solution"].GetString();
    boxed.push_back({prose + "<answer>\\boxed{" + answer + "}</answer>", answer});
    phrased.push_back({prose + "So the final answer is $" + answer + "$. I hope it is correct.", solution});
    bare.push_back({prose + "Putting it together we obtain $" + answer + "$", solution});
  }
  auto measure = [&](const std::vector<Pair>& pairs, ExtractionMode mode, size_t& equal) {
    return items_per_second(pairs.size(), [&] {
      size_t n = 0;
      for (auto& p : pairs) {
        auto answer = extract_final_answer(p.completion, mode);
        n += answer && math_answers_equivalent(*answer, extract_gold_answer(p.gold, mode));
      }
      equal = n;
      return n;
    });
  };
  struct Figure {
    const char* what;
    const std::vector<Pair>* pairs;
    ExtractionMode mode;
  };
  const Figure figures[] = {
      {"strict, boxed R1-style completions vs answer field", &boxed, ExtractionMode::strict},
      {"lenient, boxed R1-style completions vs answer field", &boxed, ExtractionMode::lenient},
      {"lenient, 'final answer is $..$' completions vs whole solution", &phrased, ExtractionMode::lenient},
      {"lenient, last math span after prose vs whole solution", &bare, ExtractionMode::lenient},
  };
  for (const auto& f : figures) {
    size_t equal = 0;
    double r = measure(*f.pairs, f.mode, equal);
    std::printf("math verifications/s, one core, %s (%zu of %zu judged equal): %.0f (ratio to the 20000/s target: %.2f)\n",
                f.what, equal, f.pairs->size(), r, r / kTargetPerSecond);
  }
  return 0;
}
