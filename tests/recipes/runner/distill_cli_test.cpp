// `aha distill` and `aha export samples` as a user meets them: a kill -9 in the middle of a
// distillation, then --resume, leaves every prompt's record exactly once; nothing of the user's
// is overwritten; --where selects samples and names an unknown component.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "core/files.h"
#include "core/json.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "tests/recipes/runner/kill_helpers.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

test::CommandOutcome run_aha(const std::vector<std::string>& words) {
  std::string arguments;
  for (const auto& w : words) arguments.append(arguments.empty() ? "" : " ").append(test::shell_quoted(w));
  return test::run_aha(arguments, /*merge_stderr=*/true, 600);
}

using test::count_lines;
using test::expect_each_prompt_once;

// Starts `aha words...`, waits until `watched` has at least `lines` lines, and kills it with
// SIGKILL; returns the lines it had then (0 when it ended on its own first).
size_t kill_when(const std::vector<std::string>& words, const fs::path& watched, size_t lines) {
  const bool killed = test::kill_aha_when(words, [&] { return count_lines(watched) >= lines; });
  return killed ? count_lines(watched) : 0;
}

class DistillCli : public ::testing::Test {
 protected:
  static constexpr int kPrompts = 300;
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("aha_distill_cli_test_" + std::to_string(getpid()));
    remove_tree(root_);
    fs::create_directories(root_);
    auto model = test::chain_model(test::ids_of(" \\boxed{4}"), 2);  // answers 4 to everything
    save_model(*model, root_ / "model", {.copy_extras_from = test::tokenizer_dir()});
    std::string data;
    for (int i = 0; i < kPrompts; ++i)
      data += "{\"id\": \"p" + std::to_string(i) + "\", \"prompt\": \"What is " + std::to_string(i) +
              "?\", \"answer\": \"4\"}\n";
    write_file_atomic(root_ / "prompts.jsonl", data);
  }
  static void TearDownTestSuite() { remove_tree(root_); }
  void SetUp() override {
    if (!fs::exists(std::string(AHA_BINARY_DIR) + "/aha")) GTEST_SKIP() << "aha is not built";
  }
  static std::vector<std::string> distill(const fs::path& out, int limit) {
    return {"distill", "--model", (root_ / "model").string(), "--data", (root_ / "prompts.jsonl").string(),
            "--limit", std::to_string(limit), "--template", "plain", "--samples", "2", "--keep", "1",
            "--filter", "correct,exact_dup", "--max-new-tokens", "12", "--batch", "4", "--threads", "1",
            "--device", "cpu", "--out", out.string()};
  }
  static fs::path root_;
};
fs::path DistillCli::root_;

TEST_F(DistillCli, AKillMidRunThenResumeLosesAndRepeatsNothing) {
  const fs::path out = root_ / "killed.jsonl";
  auto words = distill(out, kPrompts);
  const size_t at_kill = kill_when(words, out, 10);
  ASSERT_GE(at_kill, 10u) << "aha distill ended before it was killed";
  ASSERT_LT(at_kill, static_cast<size_t>(kPrompts)) << "the kill came after the end: nothing was tested";

  // Without --resume the output is not touched.
  auto again = run_aha(words);
  EXPECT_EQ(again.exit_status, 1) << again.out;
  EXPECT_NE(again.out.find("--resume"), std::string::npos) << again.out;

  words.push_back("--resume");
  auto resumed = run_aha(words);
  ASSERT_EQ(resumed.exit_status, 0) << resumed.out;
  expect_each_prompt_once(out, kPrompts);
  std::set<std::string> ids;
  for (const auto& line : test::read_nonempty_lines(out))
    ids.insert(json::parse(line, out.string())["provenance"]["prompt_id"].GetString());
  EXPECT_EQ(ids.size(), static_cast<size_t>(kPrompts));
  auto stats = json::parse(read_file(root_ / "killed.stats.json"), "stats");
  EXPECT_EQ(stats["prompts"].GetInt(), kPrompts);
  EXPECT_EQ(stats["kept"].GetInt(), kPrompts);
  EXPECT_EQ(stats["dropped"]["exact_dup"].GetInt(), kPrompts);  // the second of two identical samples
  EXPECT_NE(resumed.out.find("kept 300"), std::string::npos) << resumed.out;
}

TEST_F(DistillCli, NothingOfTheUsersIsOverwritten) {
  const fs::path out = root_ / "mine.jsonl";
  write_file_atomic(out, "precious\n");
  auto o = run_aha(distill(out, 3));
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("--overwrite"), std::string::npos) << o.out;
  EXPECT_EQ(read_file(out), "precious\n");
  auto resume = distill(out, 3);
  resume.push_back("--resume");
  o = run_aha(resume);
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("nothing to resume"), std::string::npos) << o.out;
  EXPECT_EQ(read_file(out), "precious\n");
  auto both = resume;
  both.push_back("--overwrite");
  EXPECT_EQ(run_aha(both).exit_status, 2);
  auto bad = distill(root_ / "new.jsonl", 3);
  bad[std::find(bad.begin(), bad.end(), "correct,exact_dup") - bad.begin()] = "correct,typo";
  o = run_aha(bad);
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("unknown filter 'typo'"), std::string::npos) << o.out;
  EXPECT_FALSE(fs::exists(root_ / "new.jsonl"));
  // A stats file of the user's beside the output is not replaced either.
  write_file_atomic(root_ / "new.stats.json", "{}");
  o = run_aha(distill(root_ / "new.jsonl", 3));
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_EQ(read_file(root_ / "new.stats.json"), "{}");
}

TEST_F(DistillCli, ExportSamplesSelectsByReward) {
  const fs::path run = root_ / "run";
  fs::create_directories(run);
  {
    RunStore store(run / "run.db");
    int64_t stage = store.begin_stage("grpo", "grpo", R"({"template": "r1_zero_think"})");
    std::vector<Sample> samples;
    for (int i = 0; i < 4; ++i) {
      Sample s;
      s.index = i;
      s.group_index = i / 2;
      s.prompt = "What is " + std::to_string(i / 2) + "?";
      s.completion = "thought " + std::to_string(i) + "</think> <answer>" + std::to_string(i) + "</answer>";
      s.reward = i % 2 == 0 ? 1.5 : 0.5;
      s.reward_components = {{"accuracy", i % 2 == 0 ? 1.0 : 0.0}, {"format", 1.0}};
      s.length = 10 + i;
      s.finish_reason = "stop";
      samples.push_back(s);
    }
    store.write_samples(stage, 3, samples);
  }
  const fs::path out = root_ / "export.jsonl";
  auto o = run_aha({"export", "samples", "--run", run.string(), "--where", "reward/accuracy=1", "--out", out.string()});
  ASSERT_EQ(o.exit_status, 0) << o.out;
  EXPECT_NE(o.out.find("exported 2 of 4"), std::string::npos) << o.out;
  auto lines = test::read_nonempty_lines(out);
  ASSERT_EQ(lines.size(), 2u);
  auto d = json::parse(lines[1], "export");
  EXPECT_EQ(std::string(d["messages"][0]["content"].GetString()), "What is 1?");
  // The template opened <think>: it is put back.
  EXPECT_EQ(std::string(d["messages"][1]["content"].GetString()), "<think>thought 2</think> <answer>2</answer>");
  EXPECT_EQ(std::string(d["messages"][1]["reasoning_content"].GetString()), "thought 2");
  EXPECT_EQ(std::string(d["provenance"]["stage"].GetString()), "grpo");
  EXPECT_EQ(d["provenance"]["step"].GetInt(), 3);
  EXPECT_EQ(d["provenance"]["sample_index"].GetInt(), 2);
  EXPECT_EQ(d["provenance"]["rewards"]["accuracy"].GetDouble(), 1.0);
  // Two conditions, both must hold.
  const fs::path out2 = root_ / "export2.jsonl";
  o = run_aha({"export", "samples", "--run", run.string(), "--where", "reward>0.4", "--where", "tokens<=11", "--out",
               out2.string()});
  ASSERT_EQ(o.exit_status, 0) << o.out;
  EXPECT_EQ(test::read_nonempty_lines(out2).size(), 2u);  // lengths 10 and 11
  // Errors name what is wrong, and leave the output alone.
  o = run_aha({"export", "samples", "--run", run.string(), "--where", "reward/acuracy=1", "--out", out.string(),
               "--overwrite"});
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("no 'reward/acuracy'"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("reward/accuracy"), std::string::npos) << o.out;
  o = run_aha({"export", "samples", "--run", run.string(), "--where", "reward/accuracy=>1", "--out", out2.string(),
               "--overwrite"});
  EXPECT_EQ(o.exit_status, 1) << o.out;
  o = run_aha({"export", "samples", "--run", run.string(), "--stage", "sft", "--out", out2.string(), "--overwrite"});
  EXPECT_NE(o.out.find("stages: grpo"), std::string::npos) << o.out;
  o = run_aha({"export", "samples", "--run", run.string(), "--out", out.string()});
  EXPECT_EQ(o.exit_status, 1) << o.out;  // out holds content, no --overwrite
  EXPECT_EQ(test::read_nonempty_lines(out).size(), 2u);
}

}  // namespace
}  // namespace aha
