// The command-line parser (tools/cli.cpp, compiled into this suite directly: it needs no
// LibTorch): integers are range-checked whole words, never truncated (issue 23, finding 11),
// words a command does not take are usage errors naming them, and the help generated from a
// command's spec lists exactly the options the parser accepts (issue 22).
#include "tools/cli.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"
#include "tests/tools/help_options.h"

namespace aha::cli {
namespace {

using aha::test::error_of;

Args parse(const std::vector<std::string>& words, size_t max_positional = 0) {
  Spec spec{.options = {{"n", "N", "", ""}, {"seed", "S", "", ""}, {"difficulty", "D", "", ""}, {"flag!", "", "", ""}},
            .max_positional = max_positional};
  return Args(words, spec, "data generate");
}

// A spec with every kind of option, as a command declares it.
const Spec kSpec{.usage = "FILE [options]",
                 .description = "Does a thing.",
                 .options = {{"model", "DIR", "required", "the model"},
                             {"seed", "N", "0", "the seed"},
                             {"decode*", "ID", "", "ids to decode"},
                             {"json!", "", "", "print JSON"},
                             {"n", "N", "1", "samples", "-n"}},
                 .max_positional = 1,
                 .examples = {"aha thing --model m file"}};

}  // namespace

// For one command's spec: every option its help lists is accepted by the parser (with a value
// where it takes one), the help lists every option of the spec, and a name not in the spec is
// rejected as a usage error.
void expect_help_matches_parser(const std::string& command, const Spec& spec) {
  const auto listed = test::options_in_help(help_text(command, spec));
  ASSERT_FALSE(listed.empty()) << command;
  EXPECT_EQ(listed.back(), "help") << command;
  EXPECT_EQ(listed.size(), spec.options.size() + 1) << command;
  for (size_t i = 0; i + 1 < listed.size(); ++i) {
    const std::string& name = listed[i];
    const std::string spec_name = spec.options[i].name;
    EXPECT_EQ(spec_name.substr(0, name.size()), name) << command;
    const bool is_switch = spec_name.back() == '!';
    std::vector<std::string> words{"--" + name};
    if (!is_switch) words.push_back("1");
    EXPECT_NO_THROW(Args(words, spec, command)) << command << " --" << name;
  }
  EXPECT_THROW(Args({"--no-such-option-anywhere"}, spec, command), UsageError) << command;
}

namespace {

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

// The help lists every option of the spec, with its value, default and meaning, and each
// option it lists is accepted by the parser; anything else is a usage error.
TEST(CliHelp, ListsExactlyTheOptionsTheParserAccepts) {
  const std::string help = help_text("thing", kSpec);
  EXPECT_EQ(help.rfind("usage: aha thing FILE [options]\n", 0), 0u) << help;
  EXPECT_EQ(test::options_in_help(help), (std::vector<std::string>{"model", "seed", "decode", "json", "n", "help"}));
  EXPECT_NE(help.find("--model DIR"), std::string::npos) << help;
  EXPECT_NE(help.find("the model (required)"), std::string::npos) << help;
  EXPECT_NE(help.find("the seed (default: 0)"), std::string::npos) << help;
  EXPECT_NE(help.find("--decode ID..."), std::string::npos) << help;
  EXPECT_NE(help.find("-n, --n N"), std::string::npos) << help;
  EXPECT_NE(help.find("  aha thing --model m file\n"), std::string::npos) << help;
  EXPECT_NE(help.find("2 usage error"), std::string::npos) << help;
  expect_help_matches_parser("thing", kSpec);
}

TEST(CliHelp, HelpIsAskedForEvenWithRequiredOptionsMissingOrValuesCut) {
  EXPECT_TRUE(Args({"--help"}, kSpec, "thing").help());
  EXPECT_TRUE(Args({"-h"}, kSpec, "thing").help());
  EXPECT_TRUE(Args({"--model", "--help"}, kSpec, "thing").help());
  EXPECT_TRUE(Args({"a", "b", "c", "--help"}, kSpec, "thing").help());  // extra words: help wins
  EXPECT_TRUE(Args({"--decode", "1", "-h"}, kSpec, "thing").help());
  EXPECT_FALSE(Args({"--model", "m"}, kSpec, "thing").help());
  // An unknown option is still named: a typo is never hidden behind the help.
  EXPECT_THROW(Args({"--modle", "m", "--help"}, kSpec, "thing"), UsageError);
}

TEST(CliHelp, ShortAliasIsTheOption) {
  EXPECT_EQ(Args({"-n", "4"}, kSpec, "thing").get_int("n", 1), 4);
}

TEST(CliArgs, ParserErrorsAreUsageErrors) {
  EXPECT_THROW(parse({"--nope"}), UsageError);
  EXPECT_THROW(parse({"--n"}), UsageError);
  EXPECT_THROW(parse({"stray"}), UsageError);
  EXPECT_THROW(parse({"--n", "x"}).get_int("n", 1), UsageError);
  EXPECT_THROW(parse({}).required("seed"), UsageError);
  EXPECT_THROW(parse({}).positional(0, "FILE"), UsageError);
  EXPECT_THROW(parse_id_list("1,x", "ids"), UsageError);
}

TEST(CliArgs, NameListsTakeOnlyKnownNames) {
  const std::vector<std::string> known = {"fast", "slow", "fixed"};
  EXPECT_EQ(parse_name_list("slow,fast,slow", "modes", known), (std::set<std::string>{"fast", "slow"}));
  try {
    parse_name_list("fast,slwo", "modes", known);
    FAIL() << "an unknown name was taken";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--modes: unknown name 'slwo' (known: fast, slow, fixed)");
  }
  for (const char* empty : {"fast,", ",fast", "fast,,slow", ""})  // an empty name is unknown too
    EXPECT_THROW(parse_name_list(empty, "modes", known), UsageError) << "'" << empty << "'";
}

}  // namespace
}  // namespace aha::cli
