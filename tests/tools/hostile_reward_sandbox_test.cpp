// `aha reward score` and `aha sandbox run` against hostile and careless input (issue 23,
// findings 5, 6 and 10), run as a user runs them: the built binary, each command under
// `timeout 120`, so that a regression that hangs fails here instead of hanging CI.
#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace {

using aha::test::CommandOutcome;
using aha::test::shell_quoted;

constexpr int kTimeoutExit = 124;  // what timeout(1) exits with when it had to stop the command

// aha::test::run_aha with the command under `timeout 120` (stderr joins the output unless the
// output is to be parsed as JSON).
CommandOutcome run_bounded(const std::string& arguments, bool merge_stderr = true) {
  return aha::test::run_aha(arguments, merge_stderr, 120);
}

std::string repeat(const std::string& piece, size_t n) {
  std::string out;
  out.reserve(piece.size() * n);
  for (size_t i = 0; i < n; ++i) out += piece;
  return out;
}

class HostileRewardSandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(AHA_BINARY_DIR) + "/aha")) GTEST_SKIP() << "aha is not built";
    dir_ = std::string(AHA_BINARY_DIR) + "/hostile_reward_sandbox_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) aha::remove_tree(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
    return dir_ + "/" + name;
  }
  std::vector<std::string> lines_of(const std::string& path) { return aha::test::read_nonempty_lines(path); }
  std::string dir_;
};

// Finding 5: a megabyte of nested braces scores at once; a comparison that would take
// minutes is stopped at its 1 s timeout, reported as timed out, and the process exits with
// nothing of it left running.
TEST_F(HostileRewardSandbox, RewardScoreEndsTimedOutWorkAndExits) {
  const std::string braces = repeat("{", 500000) + "1" + repeat("}", 500000);
  // A set of 250 sets of 250 numbers against the same in reverse order: within the verifier's
  // element cap, but millions of element comparisons (many seconds), so the 1 s timeout ends it.
  // "\\\\{" is "\\{" in the JSON text, the set brace \{ once parsed.
  const int n = 250;
  auto inner = [&](int i) {
    std::string set = "\\\\{";
    for (int k = 1; k <= n; ++k) set += (k > 1 ? ", " : "") + std::to_string(i * 1000 + k);
    return set + "\\\\}";
  };
  std::string gold = "\\\\{", answer = "\\\\{";
  for (int i = 1; i <= n; ++i) gold += (i > 1 ? ", " : "") + inner(i);
  for (int i = n; i >= 1; --i) answer += inner(i) + (i > 1 ? ", " : "");
  gold += "\\\\}", answer += "\\\\}";
  const std::string samples = write(
      "samples.jsonl", "{\"completion\": \"\\\\boxed{" + braces + "}\", \"gold\": \"1\"}\n" +
                           "{\"completion\": \"\\\\boxed{" + answer + "}\", \"gold\": \"" + gold + "\"}\n");
  const std::string spec = write(
      "rewards.json", R"([{"name": "acc", "kind": "math_accuracy", "weight": 1, "timeout_seconds": 1}])");
  const std::string scored = dir_ + "/scored.jsonl";
  CommandOutcome o = run_bounded("reward score --rewards " + shell_quoted(spec) + " --input " +
                                 shell_quoted(samples) + " --output " + shell_quoted(scored) + " --threads 2");
  ASSERT_NE(o.exit_status, kTimeoutExit) << "aha reward score did not exit within 120 s";
  ASSERT_EQ(o.exit_status, 0) << o.out;
  EXPECT_NE(o.out.find("acc: 1 failed (first: timed out after 1 s)"), std::string::npos) << o.out;
  auto lines = lines_of(scored);
  ASSERT_EQ(lines.size(), 2u);
  rapidjson::Document first = aha::json::parse(lines[0], "scored line 1");
  EXPECT_EQ(first["reward"].GetDouble(), 1.0);
  rapidjson::Document second = aha::json::parse(lines[1], "scored line 2");
  EXPECT_EQ(second["reward"].GetDouble(), 0.0);
  EXPECT_EQ(std::string(second["diagnostics"]["acc"].GetString()), "error: timed out after 1 s");
  EXPECT_EQ(aha::test::processes_with_marker(dir_), std::vector<int>{});
}

// Finding 6: an absurd thread count is capped (and says so) instead of deadlocking.
TEST_F(HostileRewardSandbox, RewardScoreCapsThreads) {
  const std::string samples =
      write("samples.jsonl", "{\"completion\": \"\\\\boxed{4}\", \"gold\": \"4\"}\n"
                             "{\"completion\": \"\\\\boxed{5}\", \"gold\": \"4\"}\n");
  const std::string scored = dir_ + "/scored.jsonl";
  CommandOutcome o = run_bounded("reward score --rewards math_accuracy --input " + shell_quoted(samples) +
                                 " --output " + shell_quoted(scored) + " --threads 100000");
  ASSERT_NE(o.exit_status, kTimeoutExit) << "aha reward score --threads 100000 did not exit within 120 s";
  ASSERT_EQ(o.exit_status, 0) << o.out;
  EXPECT_NE(o.out.find("--threads 100000 capped to 2"), std::string::npos) << o.out;
  auto lines = lines_of(scored);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(aha::json::parse(lines[0], "line 1")["reward"].GetDouble(), 1.0);
  EXPECT_EQ(aha::json::parse(lines[1], "line 2")["reward"].GetDouble(), 0.0);
}

// Finding 10: megabyte options are range-checked (no overflow into a tiny limit), and a limit
// too small for the interpreter is memory_limit.
TEST_F(HostileRewardSandbox, SandboxMemoryOptionsAreRangeCheckedAndClassified) {
  const std::string program = write("hello.py", "print('hello')\n");
  for (const std::string option : {"--memory", "--output-limit"}) {
    for (const std::string value : {"99999999999", "0", "-5"}) {
      CommandOutcome o = run_bounded("sandbox run " + shell_quoted(program) + " " + option + " " + value);
      EXPECT_EQ(o.exit_status, 1) << option << " " << value << ": " << o.out;
      const std::string range = option == "--memory" ? "1..1048576" : "1..1024";
      EXPECT_NE(o.out.find(option + " must be in " + range + " (MB), got " + value), std::string::npos)
          << o.out;
    }
  }
  CommandOutcome tiny = run_bounded("sandbox run " + shell_quoted(program) + " --memory 1 --timeout 30", false);
  ASSERT_EQ(tiny.exit_status, 0) << tiny.out;
  rapidjson::Document d = aha::json::parse(tiny.out, "aha sandbox run output");
  EXPECT_EQ(std::string(d["status"].GetString()), "memory_limit") << tiny.out;
  EXPECT_EQ(std::string(d["stdout"].GetString()), "");
  // The largest values are limits, not overflows: the program runs.
  CommandOutcome large = run_bounded("sandbox run " + shell_quoted(program) +
                                     " --memory 1048576 --output-limit 1024 --timeout 30", false);
  ASSERT_EQ(large.exit_status, 0) << large.out;
  rapidjson::Document ok = aha::json::parse(large.out, "aha sandbox run output");
  EXPECT_EQ(std::string(ok["status"].GetString()), "ok") << large.out;
  EXPECT_EQ(std::string(ok["stdout"].GetString()), "hello\n");
}

}  // namespace
