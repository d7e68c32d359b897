// Issue 23, findings 4, 7 and 11, as a user meets them on the command line: the built `aha`
// given hostile or careless input must end with a clear error naming the option or file at
// fault, and leave every input file byte for byte as it was. Every command runs under
// `timeout 120`, so a hang fails the test (status 124) rather than the CI job. None needs a
// model: the checks under test run before any model is loaded, which a missing --model
// proves (its error would come first otherwise).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using aha::test::CommandOutcome;
using aha::test::shell_quoted;

constexpr int kTimeout = 120;

CommandOutcome aha_cli(const std::string& arguments) { return aha::test::run_aha(arguments, true, kTimeout); }

std::string q(const fs::path& p) { return shell_quoted(p.string()); }

class HostileInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_hostile_" + std::to_string(::getpid()));
    aha::remove_tree(dir_);
    fs::create_directories(dir_);
    prompts_ = dir_ / "prompts.jsonl";
    const auto made = aha_cli("data generate --task arithmetic --n 3 --seed 1 --out " + q(prompts_));
    ASSERT_EQ(made.exit_status, 0) << made.out;
    prompts_bytes_ = aha::read_file(prompts_);
    ASSERT_FALSE(prompts_bytes_.empty());
  }
  void TearDown() override { aha::remove_tree(dir_); }

  // The status (1 an error, 2 a usage error: tools/cli.h), and that the message names each of `words`.
  static void expect_error(const CommandOutcome& o, const std::vector<std::string>& words, int status = 1) {
    EXPECT_EQ(o.exit_status, status) << o.out;  // 124 would be a hang ended by timeout
    for (const auto& w : words) EXPECT_NE(o.out.find(w), std::string::npos) << "no '" << w << "' in: " << o.out;
    EXPECT_EQ(o.out.find("internal error"), std::string::npos) << o.out;
  }
  void expect_prompts_unchanged() const { EXPECT_EQ(aha::read_file(prompts_), prompts_bytes_); }

  fs::path dir_, prompts_;
  std::string prompts_bytes_;
};

// Finding 4: --output naming the --input file, however spelled, is refused before any work.
TEST_F(HostileInput, OutputThatIsTheInputIsRefused) {
  fs::create_symlink(prompts_, dir_ / "link.jsonl");
  fs::create_directories(dir_ / "sub");
  for (const fs::path& output : {prompts_, dir_ / "." / "prompts.jsonl", dir_ / "sub" / ".." / "prompts.jsonl",
                                 dir_ / "link.jsonl"}) {
    expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --input " + q(prompts_) + " --output " +
                         q(output)),
                 {"--output " + output.string(), "is the same file as --input " + prompts_.string()});
    expect_error(aha_cli("reward score --rewards math_accuracy:1 --input " + q(prompts_) + " --output " + q(output)),
                 {"--output " + output.string(), "is the same file as --input"});
    expect_prompts_unchanged();
  }
  // Spelled relative to the working directory too (the command inherits this process's).
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  const auto relative =
      aha_cli("reward score --rewards math_accuracy:1 --input prompts.jsonl --output ./prompts.jsonl");
  fs::current_path(cwd);
  expect_error(relative, {"--output ./prompts.jsonl is the same file as --input prompts.jsonl"});
  expect_prompts_unchanged();
}

// Finding 7: an impossible synthetic request, an overlong line, a FIFO and /dev/zero all end
// at once with an error instead of running for minutes or blocking forever.
TEST_F(HostileInput, ImpossibleRequestsAndEndlessInputsFailAtOnce) {
  const fs::path out = dir_ / "out.jsonl";
  expect_error(aha_cli("data generate --task countdown --n 100000 --difficulty 1 --seed 1 --out " + q(out)),
               {"--n 100000 is more than the 1572 distinct train problems countdown --difficulty 1"});
  // A corpus is two arithmetic problems for each Countdown one: 3000 documents need 2000.
  expect_error(aha_cli("data generate --task corpus --n 3000 --difficulty 1 --seed 1 --out " + q(out)),
               {"--n 3000 asks for 2000 arithmetic problems, which is more than the 1616 distinct train problems"});
  EXPECT_FALSE(fs::exists(out));

  const fs::path big = dir_ / "big.jsonl";
  const std::string big_bytes = "{\"prompt\": \"hi\"}\n{\"prompt\": \"" + std::string(9 << 20, 'a') + "\"}\n";
  std::ofstream(big, std::ios::binary) << big_bytes;
  expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --input " + q(big) + " --output " + q(out)),
               {big.string() + " line 2", "over the 8 MiB limit"});
  EXPECT_EQ(aha::read_file(big), big_bytes);
  EXPECT_FALSE(fs::exists(out));

  const fs::path fifo = dir_ / "fifo.jsonl";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --input " + q(fifo) + " --output " + q(out)),
               {"--input " + fifo.string(), "FIFO"});
  expect_error(aha_cli("data inspect --format plain " + q(fifo)), {fifo.string(), "FIFO"});
  expect_error(aha_cli("reward score --rewards math_accuracy:1 --input " + q(fifo)), {"--input " + fifo.string(), "FIFO"});
  expect_error(aha_cli("reward score --rewards math_accuracy:1 --input /dev/zero"),
               {"--input /dev/zero", "character device"});
  expect_error(aha_cli("data inspect --format plain /dev/zero"), {"/dev/zero", "character device"});
  EXPECT_FALSE(fs::exists(out));
  expect_prompts_unchanged();
}

// Finding 11: integers are range-checked whole words, never truncated.
TEST_F(HostileInput, OutOfRangeAndMalformedIntegersAreErrors) {
  const fs::path out = dir_ / "out.jsonl";
  const std::string base = "data generate --task arithmetic --seed 1 --out " + q(out);
  expect_error(aha_cli(base + " --n 3 --difficulty 4294967298"),
               {"--difficulty 4294967298 is out of range", "1..5"}, 2);
  expect_error(aha_cli(base + " --n 12abc"), {"--n must be an integer >= 1, got '12abc'"}, 2);
  expect_error(aha_cli("data generate --task arithmetic --n 3 --seed -1 --out " + q(out)),
               {"--seed -1 is out of range", ">= 0"}, 2);
  expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --prompt hi -n 99999999999999999999"),
               {"--n 99999999999999999999 is out of range"}, 2);
  EXPECT_FALSE(fs::exists(out));
}

// Finding 11: words a command does not take are errors naming them, not silently ignored.
TEST_F(HostileInput, ExtraPositionalArgumentsAreErrors) {
  const fs::path out = dir_ / "out.jsonl";
  expect_error(aha_cli("data generate --task arithmetic --n 3 --seed 1 --out " + q(out) + " stray"),
               {"unexpected argument 'stray'"}, 2);
  EXPECT_FALSE(fs::exists(out));
  expect_error(aha_cli("data inspect --format plain " + q(prompts_) + " extra"), {"unexpected argument 'extra'"}, 2);
  expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --prompt hi extra1 extra2"),
               {"unexpected arguments 'extra1', 'extra2'"}, 2);
  expect_error(aha_cli("reward score --rewards math_accuracy:1 --input " + q(prompts_) + " " + q(prompts_)),
               {"unexpected argument '" + prompts_.string() + "'"}, 2);
  expect_prompts_unchanged();
}

// Finding 11: a directory where a file is expected is an error naming it, not an empty file.
TEST_F(HostileInput, DirectoryGivenAsAFileIsAnError) {
  expect_error(aha_cli("data inspect --format plain " + q(dir_)), {dir_.string() + " is a directory"});
  expect_error(aha_cli("reward score --rewards math_accuracy:1 --input " + q(dir_)),
               {"--input " + dir_.string() + " is a directory"});
  expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --input " + q(dir_) + " --output " +
                       q(dir_ / "out.jsonl")),
               {"--input " + dir_.string() + " is a directory"});
}

// Finding 11: an output path that cannot be written is refused before the work, not after it.
// The countdown request below takes minutes to generate: reaching the timeout means the check
// came too late.
TEST_F(HostileInput, UnwritableOutputIsRefusedBeforeAnyWork) {
  expect_error(aha_cli("data generate --task countdown --n 50000 --difficulty 2 --seed 1 --out " + q(dir_)),
               {"--out " + dir_.string() + " is a directory"});
  expect_error(aha_cli("data generate --task arithmetic --n 3 --seed 1 --out " + q(dir_ / "missing" / "x.jsonl")),
               {"--out " + (dir_ / "missing" / "x.jsonl").string(), "does not exist"});
  expect_error(aha_cli("generate --model " + q(dir_ / "no-model") + " --input " + q(prompts_) + " --output " +
                       q(dir_)),
               {"--output " + dir_.string() + " is a directory"});
  expect_error(aha_cli("reward score --rewards math_accuracy:1 --input " + q(prompts_) + " --output /dev/null"),
               {"--output /dev/null", "character device"});
  expect_prompts_unchanged();
}

// Finding 11: invalid UTF-8 in a prompt file never reaches the JSON that aha writes.
TEST_F(HostileInput, InvalidUtf8IsReplacedInJsonOutput) {
  const fs::path latin1 = dir_ / "latin1.jsonl";
  const std::string bytes = "{\"prompt\": \"caf\xE9 \xFF!\", \"answer\": \"1\"}\n";
  std::ofstream(latin1, std::ios::binary) << bytes;
  const auto o = aha::test::run_aha("data inspect --format plain " + q(latin1), false, kTimeout);
  ASSERT_EQ(o.exit_status, 0) << o.out;
  // Each invalid byte became U+FFFD (EF BF BD); nothing else changed.
  EXPECT_NE(o.out.find("\"prompt\":\"caf\xEF\xBF\xBD \xEF\xBF\xBD!\""), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find('\xE9' + std::string(" ")), std::string::npos);
  EXPECT_EQ(o.out.find('\xFF'), std::string::npos);
  EXPECT_EQ(aha::read_file(latin1), bytes);
}

}  // namespace
