// Issue 22, as a user meets it: `aha CMD --help` and `aha help CMD` for every registered command
// list exactly the options its parser accepts (checked through the built binary, driven by the
// command list `aha help` prints), usage errors exit 2, and `aha --version` names the LibTorch
// the binary was built with.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

#include "core/files.h"
#include "tests/test_util.h"
#include "tests/tools/help_options.h"

namespace {

using aha::test::CommandOutcome;

constexpr int kTimeout = 120;

CommandOutcome aha_cli(const std::string& arguments) { return aha::test::run_aha(arguments, true, kTimeout); }

// The command names `aha help` lists ("  aha NAME" lines).
std::vector<std::string> listed_commands() {
  const CommandOutcome o = aha_cli("help");
  EXPECT_EQ(o.exit_status, 0) << o.out;
  std::vector<std::string> names;
  std::istringstream in(o.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("  aha ", 0) == 0) names.push_back(line.substr(6));
  return names;
}

TEST(CliHelp, EveryCommandIsListed) {
  const auto names = listed_commands();
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* expected : {"train", "pretrain", "pretrain check", "tokenizer train", "eval", "generate", "model init",
                               "model info", "model logprobs", "model convert", "tokenize", "reward score",
                               "sandbox run", "data generate", "data inspect", "dashboard", "distill", "export samples"})
    EXPECT_TRUE(have.count(expected)) << "aha help does not list '" << expected << "'";
}

// For every command: the help exits 0 and starts with its usage; every option it lists is
// accepted by the command's parser (the same words with --help still exit 0, where an unknown
// option exits 2); `aha help CMD` prints the same text.
TEST(CliHelp, EveryCommandsHelpListsExactlyWhatItsParserAccepts) {
  for (const auto& name : listed_commands()) {
    SCOPED_TRACE(name);
    const CommandOutcome help = aha_cli(name + " --help");
    ASSERT_EQ(help.exit_status, 0) << help.out;
    EXPECT_EQ(help.out.rfind("usage: aha " + name, 0), 0u) << help.out;
    EXPECT_NE(help.out.find("\nexamples:\n  aha " + name), std::string::npos) << help.out;
    EXPECT_NE(help.out.find("2 usage error"), std::string::npos) << help.out;
    EXPECT_EQ(aha_cli("help " + name).out, help.out);
    EXPECT_EQ(aha_cli(name + " -h").out, help.out);
    const auto options = aha::test::options_in_help(help.out);
    ASSERT_FALSE(options.empty());
    EXPECT_EQ(options.back(), "help");
    std::string all;  // "--name=1" suits every kind: a value, a switch, a list
    for (size_t i = 0; i + 1 < options.size(); ++i) {
      all += " --" + options[i] + "=1";
      const CommandOutcome one = aha_cli(name + " --" + options[i] + "=1 --help");
      EXPECT_EQ(one.exit_status, 0) << "--" << options[i] << ": " << one.out;
    }
    EXPECT_EQ(aha_cli(name + all + " --help").exit_status, 0);
    const CommandOutcome typo = aha_cli(name + " --no-such-option --help");
    EXPECT_EQ(typo.exit_status, 2) << typo.out;
    EXPECT_NE(typo.out.find("unknown option --no-such-option"), std::string::npos) << typo.out;
    const CommandOutcome run = aha_cli(name + " --no-such-option");
    EXPECT_EQ(run.exit_status, 2) << run.out;
    for (size_t i = 0; i + 1 < options.size(); ++i)  // the parser's error lists the same options
      EXPECT_NE(run.out.find("--" + options[i]), std::string::npos) << options[i] << ": " << run.out;
  }
}

TEST(CliHelp, HelpNeedsNoRequiredArgument) {
  const CommandOutcome train = aha_cli("train --help");  // no RECIPE
  EXPECT_EQ(train.exit_status, 0) << train.out;
  for (const char* word : {"usage: aha train RECIPE.json", "--set KEY.PATH=VALUE", "--resume", "--stop-after N",
                           "default: 0", "aha train recipes/r1-zero-tiny.json"})
    EXPECT_NE(train.out.find(word), std::string::npos) << word << " in: " << train.out;
  const CommandOutcome init = aha_cli("help model init");
  EXPECT_EQ(init.exit_status, 0) << init.out;
  EXPECT_EQ(aha::test::options_in_help(init.out),
            (std::vector<std::string>{"config", "out", "seed", "tokenizer", "dtype", "overwrite", "help"}));
  EXPECT_NE(init.out.find("(required)"), std::string::npos) << init.out;
  EXPECT_EQ(aha_cli("model init --out").exit_status, 2);  // a value missing: usage
  EXPECT_EQ(aha_cli("model init --out --help").exit_status, 0);
}

TEST(CliHelp, ExitStatuses) {
  const CommandOutcome top = aha_cli("--help");
  EXPECT_EQ(top.exit_status, 0);
  EXPECT_NE(top.out.find("exit status: 0 done, 1 error"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("3 internal error"), std::string::npos) << top.out;
  EXPECT_EQ(aha_cli("").exit_status, 2);
  EXPECT_EQ(aha_cli("no-such-command").exit_status, 2);
  EXPECT_EQ(aha_cli("help no-such-command").exit_status, 2);
  EXPECT_EQ(aha_cli("data generate --task arithmetic --n 3 --seed x --out /nonexistent/x").exit_status, 2);
  EXPECT_EQ(aha_cli("model info /nonexistent-model-dir").exit_status, 1);  // not usage: a missing model
}

TEST(CliVersion, NamesAhaLibTorchAndCuda) {
  for (const char* words : {"--version", "version"}) {
    const CommandOutcome o = aha_cli(words);
    ASSERT_EQ(o.exit_status, 0) << o.out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(o.out, m, std::regex("^aha ([0-9]+\\.[0-9]+\\.[0-9]+)\n"))) << o.out;
    EXPECT_EQ(m[1], AHA_PROJECT_VERSION);
    ASSERT_TRUE(std::regex_search(o.out, m, std::regex("\nLibTorch ([0-9]+\\.[0-9]+\\.[0-9]+)\n"))) << o.out;
    EXPECT_EQ(m[1], AHA_TORCH_PACKAGE_VERSION);
    EXPECT_TRUE(std::regex_search(o.out, std::regex("\nbuilt with CUDA: (yes|no)\n"))) << o.out;
    EXPECT_TRUE(std::regex_search(o.out, std::regex("\nCUDA available: (yes|no)\n"))) << o.out;
  }
}

}  // namespace
