// `aha eval`: bad input gets an error naming the option or file and exit status 1, with no
// report written; a run on a model whose answer is known writes the report it should.
#include <gtest/gtest.h>
#include <unistd.h>


#include "core/files.h"
#include "core/json.h"
#include "policy/model/model_io.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

using Outcome = test::CommandOutcome;

Outcome run_aha(const std::vector<std::string>& words) {
  std::string arguments;
  for (const auto& w : words) arguments.append(arguments.empty() ? "" : " ").append(test::shell_quoted(w));
  return test::run_aha(arguments, /*merge_stderr=*/true);
}

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("aha_eval_cli_test_" + std::to_string(getpid()));
    remove_tree(root_);
    fs::create_directories(root_);
    // Answers " \boxed{4}" to every prompt.
    auto model = test::chain_model(test::ids_of(" \\boxed{4}"), 2);
    save_model(*model, root_ / "model", {.copy_extras_from = test::tokenizer_dir()});
    write_file_atomic(
        root_ / "probe.jsonl",
        "{\"prompt\": \"What is 2+2?\", \"answer\": \"4\"}\n{\"prompt\": \"What is 2+3?\", \"answer\": 5}\n");
  }
  static void TearDownTestSuite() { remove_tree(root_); }
  void SetUp() override {
    if (!fs::exists(std::string(AHA_BINARY_DIR) + "/aha")) GTEST_SKIP() << "aha is not built";
  }

  static std::vector<std::string> base(const std::string& name) {
    return {"eval",
            "--model",
            (root_ / "model").string(),
            "--run-dir",
            (root_ / "run").string(),
            "--name",
            name,
            "--device",
            "cpu",
            "--template",
            "plain",
            "--max-new-tokens",
            "12"};
  }
  // Runs with extra words; expects failure with a message containing `expected`, and exit
  // status 1 (an error), or 2 for a usage error (tools/cli.h).
  static void expect_error(std::vector<std::string> words, const std::string& expected, int status = 1) {
    auto o = run_aha(words);
    EXPECT_EQ(o.exit_status, status) << o.out;
    EXPECT_NE(o.out.find(expected), std::string::npos) << "expected '" << expected << "' in: " << o.out;
    EXPECT_FALSE(fs::exists(root_ / "run" / "exports" / "eval-bad")) << o.out;
  }
  static std::vector<std::string> with(std::vector<std::string> words, const std::vector<std::string>& more) {
    words.insert(words.end(), more.begin(), more.end());
    return words;
  }
  static fs::path root_;
};
fs::path EvalCli::root_;

TEST_F(EvalCli, BadInputIsNamed) {
  const std::string probe = (root_ / "probe.jsonl").string();
  auto b = base("bad");
  expect_error(with(b, {}), "--data", 2);
  expect_error({"eval", "--model", (root_ / "missing").string(), "--data", probe}, "missing is not a directory");
  expect_error({"eval", "--model", root_.string(), "--data", probe}, "no config.json");
  expect_error(with(b, {"--data", probe, "--format", "bogus"}), "bogus");
  expect_error(with(b, {"--data", probe, "--samples", "0"}), "--samples must be at least 1");
  expect_error(with(b, {"--data", probe, "--samples", "4", "--temperature", "0"}), "needs --temperature > 0");
  expect_error(with(b, {"--data", (root_ / "nope.jsonl").string()}), "nope.jsonl");
  expect_error(with(b, {"--data", R"({"synthetic": "nope", "n": 3, "seed": 1})"}), "nope");
  expect_error(with(b, {"--data", R"({"synthetic": "arithmetic", "n": 3})"}), "seed");
  expect_error(with(b, {"--data", probe, "--verifier", "math_accuracy,format"}), "exactly one");
  expect_error(with(b, {"--data", probe, "--answer-tag", "maybe"}), "--answer-tag");
  expect_error(with(b, {"--data", probe, "--extraction", "loose"}), "--extraction must be \"strict\" or \"lenient\"");
  expect_error(with(b, {"--data", probe, "--top-p", "2"}), "top_p");
  expect_error(with(b, {"--data", probe, "--limit", "-1"}), "--limit", 2);
  expect_error(with(b, {"--data", probe, "stray"}), "stray", 2);
  expect_error(with(b, {"--data", probe, "--bogus-option", "1"}), "--bogus-option", 2);
}

TEST_F(EvalCli, WritesTheReportOfAKnownModel) {
  const std::string probe = (root_ / "probe.jsonl").string();
  auto o = run_aha(
      with(base("ok"), {"--data", probe, "--data", R"({"synthetic": "arithmetic", "n": 5, "seed": 1, "difficulty": 1})",
                        "--limit", "3", "--samples", "2"}));
  ASSERT_EQ(o.exit_status, 0) << o.out;
  EXPECT_NE(o.out.find("pass@1"), std::string::npos) << o.out;
  const fs::path dir = root_ / "run" / "exports" / "eval-ok";
  auto report = json::parse(read_file(dir / "report.json"), "report.json");
  ASSERT_EQ(report["datasets"].Size(), 2u);
  EXPECT_STREQ(report["datasets"][0]["name"].GetString(), "probe");
  EXPECT_STREQ(report["datasets"][1]["name"].GetString(), "arithmetic");
  EXPECT_EQ(report["datasets"][0]["summary"]["examples"].GetInt(), 2);
  EXPECT_EQ(report["datasets"][1]["summary"]["examples"].GetInt(), 3);               // --limit
  EXPECT_DOUBLE_EQ(report["datasets"][0]["summary"]["pass_at_1"].GetDouble(), 0.5);  // golds 4 and 5
  EXPECT_DOUBLE_EQ(report["options"]["temperature"].GetDouble(), 0.6);               // the k > 1 default
  EXPECT_FALSE(report["options"]["require_answer_tag"].GetBool());
  EXPECT_STREQ(report["options"]["extraction"].GetString(), "strict");
  EXPECT_EQ(test::read_nonempty_lines(dir / "samples.jsonl").size(), 5u);

  // The same name again: refused, the report kept.
  o = run_aha(with(base("ok"), {"--data", probe}));
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("already exists"), std::string::npos) << o.out;
  EXPECT_TRUE(fs::exists(dir / "report.json"));
}

}  // namespace
}  // namespace aha
