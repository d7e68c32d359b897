// The command-line parser (tools/cli.cpp, compiled into this suite directly: it needs no
// LibTorch): integers are range-checked whole words, never truncated (issue 23, finding 11),
// and words a command does not take are errors naming them.
#include "tools/cli.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace aha::cli {
namespace {

using aha::test::error_of;

Args parse(const std::vector<std::string>& words, size_t max_positional = 0) {
  return Args(words, {"n", "seed", "difficulty", "flag!"}, "data generate", max_positional);
}

TEST(CliArgs, IntegersInRangeAreReturned) {
  EXPECT_EQ(parse({"--difficulty", "5"}).get_int("difficulty", 2, 1, 5), 5);
  EXPECT_EQ(parse({"--difficulty=1"}).get_int("difficulty", 2, 1, 5), 1);
  EXPECT_EQ(parse({}).get_int("difficulty", 2, 1, 5), 2);
  EXPECT_EQ(parse({"--seed", "9223372036854775807"}).get_int("seed", 0, 0), INT64_MAX);
  EXPECT_EQ(parse({"--n", "-3"}).get_int("n", 0), -3);  // negative where the range allows it
}

TEST(CliArgs, OutOfRangeIsAnErrorNamingOptionValueAndRange) {
  // 4294967298 = 2^32 + 2: a cast to int made it difficulty 2.
  EXPECT_EQ(error_of([] { parse({"--difficulty", "4294967298"}).get_int("difficulty", 2, 1, 5); }),
            "aha data generate: --difficulty 4294967298 is out of range: it must be an integer in 1..5");
  EXPECT_EQ(error_of([] { parse({"--seed", "-1"}).get_int("seed", 0, 0); }),
            "aha data generate: --seed -1 is out of range: it must be an integer >= 0");
  EXPECT_EQ(error_of([] { parse({"--n", "99999999999999999999"}).get_int("n", 1); }),
            "aha data generate: --n 99999999999999999999 is out of range: it must be a 64-bit integer");
  EXPECT_EQ(error_of([] { parse({"--n", "0"}).get_int("n", 1, 1); }),
            "aha data generate: --n 0 is out of range: it must be an integer >= 1");
}

TEST(CliArgs, TrailingJunkAndNonIntegersAreErrors) {
  for (const std::string word : {"12abc", "1e3", " 5", "5 ", "+5", "", "0x10", "1.0", "--"}) {
    EXPECT_EQ(error_of([&] { parse({"--n=" + word}).get_int("n", 1, 1); }),
              "aha data generate: --n must be an integer >= 1, got '" + word + "'");
  }
}

TEST(CliArgs, ExtraPositionalWordsAreErrorsNamingThem) {
  EXPECT_EQ(error_of([] { parse({"--n", "3", "stray"}); }),
            "aha data generate: unexpected argument 'stray' (this command takes options only)");
  EXPECT_EQ(error_of([] { parse({"a", "--flag", "b"}); }),
            "aha data generate: unexpected arguments 'a', 'b' (this command takes options only)");
  EXPECT_EQ(error_of([] { parse({"file", "extra"}, 1); }),
            "aha data generate: unexpected argument 'extra' (it takes at most 1)");
  EXPECT_EQ(parse({"file"}, 1).positional(0, "the file"), "file");
  EXPECT_EQ(parse({"a", "b", "c"}, Args::kAnyPositional).positional().size(), 3u);
}

}  // namespace
}  // namespace aha::cli
