// A multi-stage run as a user meets it after crashes: `aha train` killed with SIGKILL during each
// stage kind in turn (sft, grpo, rejection_sample, distill), each time continued with --resume.
// The run finishes; a finished stage is never redone (its output left as it was, its record
// once in run.db); the rejection export holds every prompt exactly once (none lost, none
// repeated), counted against the prompts file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>

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

constexpr int kPrompts = 80;

class StagedKillResume : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(std::string(AHA_BINARY_DIR) + "/aha")) GTEST_SKIP() << "aha is not built";
    root_ = fs::temp_directory_path() / ("aha_staged_kill_test_" + std::to_string(getpid()));
    remove_tree(root_);
    fs::create_directories(root_);
    save_model(*init_model(test::tiny_config(), 3), root_ / "model", {.copy_extras_from = test::tokenizer_dir()});
    save_model(*init_model(test::tiny_config(), 7), root_ / "student", {.copy_extras_from = test::tokenizer_dir()});
    std::string chat, prompts;
    for (int i = 0; i < 48; ++i)
      chat += R"({"messages": [{"role": "user", "content": "What is )" + std::to_string(i) + R"( plus 1?"}, )" +
              R"({"role": "assistant", "content": ")" + std::to_string(i + 1) + R"("}]})" + "\n";
    for (int i = 0; i < kPrompts; ++i)
      prompts += R"({"id": "p)" + std::to_string(i) + R"(", "prompt": "What is )" + std::to_string(i) +
                 R"(?", "answer": "4"})" + "\n";
    write_file_atomic(root_ / "chat.jsonl", chat);
    write_file_atomic(root_ / "prompts.jsonl", prompts);
    // Every stage long enough (many steps, a checkpoint after each) that a kill lands inside it.
    const std::string sft_keys = R"("max_length": 64, "batch_tokens": 128, "epochs": 4, "lr": 0.001, "checkpoint_every": 1)";
    write_file_atomic(root_ / "recipe.json", R"({"name": "kill-all",
      "model": {"path": ")" + (root_ / "model").string() + R"(", "device": "cpu", "threads": 1},
      "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1},
               "eval": {"arith": {"synthetic": "arithmetic", "n": 4, "seed": 2, "difficulty": 1, "split": "heldout"}}},
      "eval": {"max_new_tokens": 3},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"}],
      "rollout": {"prompts_per_step": 2, "group_size": 2, "max_new_tokens": 8},
      "algorithm": {"lr": 0.01},
      "schedule": {"steps": 12, "seed": 5},
      "checkpoint": {"every": 1, "keep_last": 2},
      "stages": [
        {"name": "cold", "kind": "sft", "data": "chat.jsonl", )" + sft_keys + R"(},
        {"name": "rl", "kind": "grpo", "model": "@cold"},
        {"name": "rej", "kind": "rejection_sample", "model": "@rl", "data": {"path": "prompts.jsonl", "format": "plain"},
         "samples": 2, "keep": 1, "filters": ["exact_dup"], "max_new_tokens": 8, "prompts_per_batch": 2, "temperature": 1.0},
        {"name": "student", "kind": "distill", "model": ")" + (root_ / "student").string() + R"(", "data": "@rej", )" +
                                          sft_keys + R"(, "on_bad_example": "drop"}]})");
  }
  void TearDown() override {
    if (!HasFailure()) remove_tree(root_);
  }

  fs::path run() const { return root_ / "run"; }
  std::vector<std::string> train(bool resume) const {
    std::vector<std::string> w = {"train", (root_ / "recipe.json").string(), "--run-dir", run().string(), "--quiet"};
    if (resume) w.push_back("--resume");
    return w;
  }
  // The newest step directory holding a whole checkpoint under checkpoints/<stage> (0: none).
  int64_t newest_step(const std::string& stage) const {
    int64_t newest = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(run() / "checkpoints" / stage, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("step-", 0) == 0 && name.find('.') == std::string::npos && fs::exists(e.path() / "state.json"))
        newest = std::max<int64_t>(newest, std::stoll(name.substr(5)));
    }
    return newest;
  }
  // Whether run.db records the stage's output, i.e. the stage finished.
  bool finished(const std::string& stage) const {
    RunStore store(run() / "run.db", {.read_only = true});
    return store.config("stage_output." + stage).has_value();
  }
  // Kills the run (fresh or resumed) once ready() holds, and checks that it died inside
  // `stage`: the stages before it finished, it did not.
  void kill_during(const std::string& stage, const std::vector<std::string>& before, bool resume,
                   const std::function<bool()>& ready) {
    ASSERT_TRUE(test::kill_aha_when(train(resume), ready)) << "aha train ended before the kill in stage " << stage;
    for (const auto& s : before) EXPECT_TRUE(finished(s)) << s << " should have finished before the kill in " << stage;
    ASSERT_FALSE(finished(stage)) << "the kill came after stage " << stage << " ended: nothing was tested";
  }

  fs::path root_;
};

TEST_F(StagedKillResume, AKillInEachStageKindThenResumeFinishesWithoutRedoingOrLosingAnything) {
  const fs::path exported = run() / "exports" / "rej.jsonl";
  kill_during("cold", {}, false, [&] { return newest_step("cold") >= 3; });
  kill_during("rl", {"cold"}, true, [&] { return newest_step("rl") >= 2; });
  kill_during("rej", {"cold", "rl"}, true, [&] { return test::count_lines(exported) >= 6; });
  EXPECT_LT(test::count_lines(exported), static_cast<size_t>(kPrompts));
  kill_during("student", {"cold", "rl", "rej"}, true, [&] { return newest_step("student") >= 2; });

  // What the finished stages left, to compare after the last resume.
  RunStore before(run() / "run.db", {.read_only = true});
  const fs::path cold_out = json::parse(*before.config("stage_output.cold"), "run.db").GetString();
  const fs::path rl_out = json::parse(*before.config("stage_output.rl"), "run.db").GetString();
  const auto cold_time = fs::last_write_time(cold_out / "model.safetensors");
  const auto rl_time = fs::last_write_time(rl_out / "model.safetensors");
  const std::string export_text = read_file(exported);

  const auto done = test::run_aha_in({}, [&] {
    std::string a;
    for (const auto& w : train(true)) a += (a.empty() ? "" : " ") + test::shell_quoted(w);
    return a;
  }(), true, 600);
  ASSERT_EQ(done.exit_status, 0) << done.out;
  EXPECT_NE(done.out.find("all stages done"), std::string::npos) << done.out;
  // The table covers every kind: a held-out accuracy for the stages that train, the kept
  // samples' mean length and counts for the rejection stage (80 prompts x 2 samples, 1 kept each).
  for (const char* row : {"\ncold +sft +done +", "\nrl +grpo +done +", "\nstudent +distill +done +"})
    EXPECT_TRUE(std::regex_search(done.out, std::regex(std::string(row) + "[01]\\.[0-9]{3} "))) << row << done.out;
  EXPECT_TRUE(std::regex_search(done.out, std::regex("\nrej +rejection_sample +done +- +- +- +[0-9]+\\.[0-9]{3}\n")))
      << done.out;
  EXPECT_NE(done.out.find("stage rej: kept 80 of 160 samples from 80 prompts (0 with none kept)"), std::string::npos)
      << done.out;

  // The export: every prompt once, whole lines, and untouched by the resumes after its stage.
  test::expect_each_prompt_once(exported, kPrompts);
  EXPECT_EQ(test::count_lines(exported), static_cast<size_t>(kPrompts));
  EXPECT_EQ(read_file(exported), export_text);
  EXPECT_EQ(fs::last_write_time(cold_out / "model.safetensors"), cold_time);
  EXPECT_EQ(fs::last_write_time(rl_out / "model.safetensors"), rl_time);

  RunStore store(run() / "run.db", {.read_only = true});
  const auto stages = store.stages();
  ASSERT_EQ(stages.size(), 4u);  // one record each, however often resumed
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"cold", "sft"}, {"rl", "grpo"}, {"rej", "rejection_sample"}, {"student", "distill"}};
  for (size_t i = 0; i < stages.size(); ++i) {
    EXPECT_EQ(stages[i].name, expected[i].first);
    EXPECT_EQ(stages[i].kind, expected[i].second);
    EXPECT_EQ(stages[i].status, "done") << stages[i].name;
  }
  EXPECT_EQ(store.latest_step(stages[1].id), 12);  // every GRPO step once, none beyond the schedule
  EXPECT_EQ(store.metric_series(stages[2].id, "rejection/prompts").back().value, double(kPrompts));
  EXPECT_EQ(store.metric_series(stages[2].id, "rejection/kept").back().value, double(kPrompts));
  // The student read all of it: one conversation per prompt (a random teacher's empty answers
  // are dropped and counted, "on_bad_example": "drop").
  EXPECT_EQ(store.metric_series(stages[3].id, "data/records").back().value, double(kPrompts));
  EXPECT_TRUE(fs::exists(json::parse(*store.config("stage_output.student"), "run.db").GetString() +
                         std::string("/config.json")));
}

}  // namespace
}  // namespace aha
