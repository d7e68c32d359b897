// Impossible synthetic requests fail up front (issue 23, finding 7): the number of distinct
// problems a configuration can produce, hand-counted on small configurations, and generators,
// recipe specs and loaders that refuse what cannot be done before doing any work.
#include "datasets/problem_counts.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "core/text_lines.h"
#include "datasets/dataset_spec.h"
#include "datasets/jsonl_loader.h"
#include "tests/test_util.h"

namespace aha {
namespace {

using aha::test::error_of;

// Two start values, one step of +1, +2, -1 or -2, no room for more: 2 x 4 = 8 problems.
ArithmeticConfig tiny_arithmetic() {
  ArithmeticConfig c;
  c.min_steps = c.max_steps = 1;
  c.start_min = 2;
  c.start_max = 3;
  c.operand_max = 2;
  c.factor_max = c.divisor_max = 0;
  c.value_max = 5;
  return c;
}

// Two numbers from {1, 2}, both used, targets 1..100 that are not one of the numbers:
// {1,1} -> 2 (1+1; 1*1 = 1/1 = 1 is a number, 1-1 = 0 is out of range); {1,2} -> 3 (2-1 and
// 2*1 give numbers); {2,2} -> 4 and 1 (2/2). Four problems in all.
CountdownConfig tiny_countdown() {
  CountdownConfig c;
  c.min_numbers = c.max_numbers = 2;
  c.number_min = 1;
  c.number_max = 2;
  c.target_min = 1;
  c.target_max = 100;
  return c;
}

TEST(ProblemCounts, HandCountedSmallConfigurations) {
  EXPECT_EQ(max_distinct_problems(tiny_arithmetic(), Split::train) +
                max_distinct_problems(tiny_arithmetic(), Split::heldout),
            8u);
  EXPECT_EQ(max_distinct_problems(tiny_countdown(), Split::train) +
                max_distinct_problems(tiny_countdown(), Split::heldout),
            4u);
  // Difficulty 1 arithmetic: starts 2..50, one step of + (1..20) or - (1..min(20, start)):
  // 49 * 20 + (2 + ... + 19) + 31 * 20 = 980 + 189 + 620 = 1789.
  const auto d1 = ArithmeticConfig::for_difficulty(1);
  EXPECT_EQ(max_distinct_problems(d1, Split::train) + max_distinct_problems(d1, Split::heldout), 1789u);
}

TEST(ProblemCounts, LargeConfigurationsGetAnUpperBoundAtOnce) {
  // Countdown difficulty 5: C(102, 4) = 102 * 101 * 100 * 99 / 24 = 4,249,575 multisets of 4 numbers from 1..99, times 900
  // targets in 100..999.
  EXPECT_EQ(max_distinct_problems(CountdownConfig::for_difficulty(5), Split::train), 4249575ull * 900);
  EXPECT_GT(max_distinct_problems(ArithmeticConfig::for_difficulty(5), Split::train), 1'000'000'000ull);
}

TEST(ProblemCounts, ExactlyTheMaximumCanBeGeneratedAndOneMoreFailsUpFront) {
  for (Split split : {Split::train, Split::heldout}) {
    const uint64_t a = max_distinct_problems(tiny_arithmetic(), split);
    if (a > 0) {
      EXPECT_EQ(generate_arithmetic(a, 1, tiny_arithmetic(), split).size(), a);
    }
    const std::string error = error_of([&] { generate_arithmetic(a + 1, 1, tiny_arithmetic(), split); });
    EXPECT_EQ(error, "arithmetic: n = " + std::to_string(a + 1) + " is more than the " + std::to_string(a) +
                         " distinct " + split_name(split) +
                         " problems this configuration can produce (at most); lower n, or raise the difficulty");
    const uint64_t c = max_distinct_problems(tiny_countdown(), split);
    if (c > 0) {
      EXPECT_EQ(generate_countdown(c, 1, tiny_countdown(), split).size(), c);
    }
    EXPECT_NE(error_of([&] { generate_countdown(c + 1, 1, tiny_countdown(), split); })
                  .find("countdown: n = " + std::to_string(c + 1) + " is more than the " + std::to_string(c)),
              std::string::npos);
  }
}

TEST(ProblemCounts, TheIssuesRequestFailsAtOnce) {
  // `aha data generate --task countdown --n 100000 --difficulty 1` used to draw for minutes.
  const uint64_t most = max_distinct_problems(CountdownConfig::for_difficulty(1), Split::train);
  EXPECT_LT(most, 100000u);
  const std::string error =
      error_of([] { generate_countdown(100000, 0, CountdownConfig::for_difficulty(1), Split::train); });
  EXPECT_NE(error.find("n = 100000 is more than the " + std::to_string(most)), std::string::npos) << error;
}

TEST(ProblemCounts, RecipeSpecsNameTheFieldAtFault) {
  const std::string n = error_of(
      [] { parse_dataset_spec(R"({"synthetic": "countdown", "n": 100000, "seed": 1, "difficulty": 1})", "recipe x"); });
  EXPECT_NE(n.find("recipe x: field 'n' is 100000, more than the"), std::string::npos) << n;
  // 4294967298 = 2^32 + 2 used to narrow to difficulty 2.
  EXPECT_EQ(error_of([] {
              parse_dataset_spec(R"({"synthetic": "countdown", "n": 1, "seed": 1, "difficulty": 4294967298})",
                                 "recipe x");
            }),
            "recipe x: field 'difficulty' must be 1..5, got 4294967298");
}

TEST(JsonlLimits, ADirectoryOrFifoIsAnErrorNotAnEmptyDataSet) {
  const auto dir = std::filesystem::temp_directory_path() / ("aha_jsonl_limits_" + std::to_string(::getpid()));
  remove_tree(dir);
  std::filesystem::create_directories(dir);
  const std::string as_dir = error_of([&] { load_jsonl(dir, {}); });
  EXPECT_EQ(as_dir, dir.string() + " is a directory");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { load_jsonl(dir / "fifo", {}); }).find("FIFO"), std::string::npos);
  remove_tree(dir);
}

TEST(JsonlLimits, AnOverlongLineNamesTheFileAndLine) {
  const std::string text = "{\"prompt\": \"a\", \"answer\": \"1\"}\n{\"prompt\": \"" +
                           std::string(kMaxJsonlLineBytes, 'x') + "\", \"answer\": \"1\"}\n";
  const std::string error = error_of([&] { parse_jsonl(text, "big.jsonl", {}); });
  EXPECT_NE(error.find("big.jsonl line 2 is"), std::string::npos) << error.substr(0, 200);
  EXPECT_NE(error.find("over the 8 MiB limit for one line"), std::string::npos) << error.substr(0, 200);
}

}  // namespace
}  // namespace aha
