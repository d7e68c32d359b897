// The stage graph: parsing and reference checks (each mistake named with its stage), and two
// GRPO stages run in one run directory, stopped mid-run and resumed without redoing the
// finished stage.
#include "recipes/runner/stage_graph.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "core/files.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

// A recipe with shared GRPO keys and the given stages (JSON list text).
std::string staged(const std::string& stages) {
  return R"({
    "name": "graph-test",
    "model": {"path": "MODEL", "device": "cpu"},
    "template": "chatml",
    "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1},
             "eval": {"arith": {"synthetic": "arithmetic", "n": 4, "seed": 2, "difficulty": 1, "split": "heldout"}}},
    "rewards": [{"name": "accuracy", "kind": "math_accuracy"}],
    "rollout": {"prompts_per_step": 2, "group_size": 2, "max_new_tokens": 4},
    "algorithm": {"lr": 0.01},
    "schedule": {"steps": 2, "seed": 5},
    "eval": {"max_new_tokens": 3},
    "stages": )" + stages + "}";
}

std::string error_of(const std::string& stages) {
  try {
    parse_staged_recipe(staged(stages), "r.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(StageGraphParse, ReadsStagesAndReferences) {
  auto r = parse_staged_recipe(staged(R"([{"name": "a", "kind": "grpo"},
                                          {"name": "b", "kind": "grpo", "model": "@a"}])"), "dir/r.json");
  ASSERT_EQ(r.stages.size(), 2u);
  EXPECT_EQ(r.stages[0].model, "@base");
  EXPECT_EQ(r.stages[1].model, "@a");
  EXPECT_EQ(r.stages[1].index, 1);
  EXPECT_EQ(r.base_dir, fs::path("dir"));
  EXPECT_EQ(r.model.path, "MODEL");
  EXPECT_EQ(r.shared_json.find("stages"), std::string::npos);
}

TEST(StageGraphParse, ReferenceMistakesNameTheStage) {
  EXPECT_NE(error_of(R"([{"name": "a", "kind": "grpo", "model": "@nope"}])").find("stage 'a' (grpo): 'model': \"@nope\" names no stage"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "a", "kind": "grpo", "model": "@b"}, {"name": "b", "kind": "grpo"}])")
                .find("stage 'a' (grpo): 'model': \"@b\" names a later stage"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "a", "kind": "grpo", "model": "@a"}])").find("names the stage itself"),
            std::string::npos);
  // A data reference to a stage whose output is a model, and a model reference to a data stage.
  EXPECT_NE(error_of(R"([{"name": "a", "kind": "grpo"}, {"name": "b", "kind": "sft", "data": ["x.jsonl", "@a"]}])")
                .find("stage 'b' (sft): 'data': \"@a\" is a grpo stage, whose output is a model, not a data file"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "r", "kind": "rejection_sample"}, {"name": "b", "kind": "grpo", "model": "@r"}])")
                .find("'model': \"@r\" is a rejection_sample stage, whose output is a data file, not a model"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "a", "kind": "grpo"}, {"name": "a", "kind": "grpo"}])").find("a stage named 'a' comes earlier"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "base", "kind": "grpo"}])").find("not \"base\""), std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "a b", "kind": "grpo"}])").find("stage name 'a b'"), std::string::npos);
  EXPECT_NE(error_of(R"([{"name": "a", "kind": "ppo"}])").find("unknown stage kind 'ppo' (kinds: sft, grpo"),
            std::string::npos);
  EXPECT_NE(error_of("[]").find("'stages' must be a non-empty list"), std::string::npos);
}

TEST(StageGraphParse, StageKeysAreCheckedBeforeAnyWork) {
  auto r = parse_staged_recipe(staged(R"([{"name": "a", "kind": "grpo", "rollout": {"group_sise": 4}}])"), "r.json");
  try {
    check_stages(r);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage 'a' (grpo)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("group_sise"), std::string::npos) << e.what();
  }
}

TEST(StageGraphParse, StageKeysMergeOverTheSharedOnes) {
  auto r = parse_staged_recipe(staged(R"([{"name": "a", "kind": "grpo", "model": "@base",
                                           "rollout": {"group_size": 3}, "schedule": {"steps": 7}}])"), "r.json");
  StageInput in;
  in.recipe = &r;
  in.stage = &r.stages[0];
  auto merged = parse_recipe(in.merged_json(), "r.json");
  EXPECT_EQ(merged.rollout.group_size, 3);       // the stage's
  EXPECT_EQ(merged.rollout.prompts_per_step, 2);  // the shared object's other members stay
  EXPECT_EQ(merged.schedule.steps, 7);
  EXPECT_EQ(merged.schedule.seed, 5u);
  EXPECT_EQ(merged.eval_data.size(), 1u);
}

TEST(StageGraphParse, DistillIsCheckedAsAnSftStage) {
  auto r = parse_staged_recipe(staged(R"([{"name": "d", "kind": "distill"}])"), "r.json");
  try {
    check_stages(r);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage 'd' (distill): 'data' must name at least one chat data file"),
              std::string::npos)
        << e.what();
  }
}

TEST(StageGraphParse, AStageBuildMakesADirectoryModelAndIsNotTheKindsKey) {
  auto r = parse_staged_recipe(staged(R"([{"name": "s", "kind": "sft", "model": "student", "build": "small.json",
                                           "data": "chat.jsonl"}])"), "dir/r.json");
  EXPECT_EQ(r.stages[0].model, "student");
  EXPECT_EQ(r.stages[0].model_build, fs::path("dir") / "small.json");
  EXPECT_EQ(r.stages[0].config_json.find("build"), std::string::npos);  // the sft check never sees it
  EXPECT_NE(error_of(R"([{"name": "s", "kind": "sft", "build": "small.json", "data": "c.jsonl"}])")
                .find("stages.0 ('s'): 'build' makes the stage's model directory, so 'model' must be a directory, not \"@base\""),
            std::string::npos);
}

class StageGraphRun : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    work_ = fs::path(AHA_BINARY_DIR) /
            ("stage-graph-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    remove_tree(work_);
    fs::create_directories(work_);
    auto model = init_model(test::tiny_config(), 3);
    save_model(*model, work_ / "model", {.copy_extras_from = test::tokenizer_dir()});
  }
  void TearDown() override { remove_tree(work_); }

  StagedRecipe two_stages() {
    return parse_staged_recipe(staged(R"([{"name": "first", "kind": "grpo"},
                                          {"name": "second", "kind": "grpo", "model": "@first",
                                           "schedule": {"steps": 3}}])"),
                               work_ / "r.json", {"model.path=" + (work_ / "model").string()});
  }
  RunOptions options(int64_t stop_after = 0, bool resume = false) {
    RunOptions o;
    o.run_dir = work_ / "run";
    o.progress = false;
    o.stop_after_steps = stop_after;
    o.resume = resume;
    return o;
  }
  fs::path work_;
};

TEST_F(StageGraphRun, StopsMidStageAndResumesWithoutRedoingAFinishedStage) {
  // The first stage has 2 steps; stopping after 1 step of an invocation leaves it "stopped".
  auto first = run_staged(two_stages(), options(1));
  EXPECT_FALSE(first.finished);
  ASSERT_EQ(first.stages.size(), 2u);
  EXPECT_EQ(first.stages[0].status, "stopped");
  EXPECT_EQ(first.stages[1].status, "pending");

  // Resumed, with a stop after 1 step: the first stage finishes (its second step), and the
  // second stage starts and stops after its first step.
  auto second = run_staged(two_stages(), options(1, true));
  EXPECT_FALSE(second.finished);
  EXPECT_EQ(second.stages[0].status, "done");
  EXPECT_EQ(second.stages[1].status, "stopped");
  const fs::path first_model = second.stages[0].output;
  EXPECT_EQ(first_model, work_ / "run" / "checkpoints" / "first" / "step-2" / "model");
  const auto written = fs::last_write_time(first_model / "model.safetensors");

  auto third = run_staged(two_stages(), options(0, true));
  EXPECT_TRUE(third.finished);
  EXPECT_EQ(third.stages[1].status, "done");
  EXPECT_EQ(third.stages[1].output, work_ / "run" / "checkpoints" / "second" / "step-3" / "model");
  // The finished first stage was neither rerun nor rewritten.
  EXPECT_EQ(fs::last_write_time(first_model / "model.safetensors"), written);
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  const auto stages = store.stages();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].name, "first");
  EXPECT_EQ(stages[0].kind, "grpo");
  EXPECT_EQ(store.latest_step(stages[0].id), 2);
  EXPECT_EQ(store.latest_step(stages[1].id), 3);
  EXPECT_TRUE(third.stages[1].eval.count("eval/accuracy"));

  // A finished run resumed again does nothing and changes nothing.
  auto fourth = run_staged(two_stages(), options(0, true));
  EXPECT_TRUE(fourth.finished);
  EXPECT_EQ(fs::last_write_time(first_model / "model.safetensors"), written);
}

TEST_F(StageGraphRun, AStageBuildsItsOwnModelOnceAndNeverOverAnotherOne) {
  std::ofstream(work_ / "small.json") << R"({
    "model": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
              "intermediate_size": 64, "max_position_embeddings": 256},
    "tokenizer": {"vocab_size": 320},
    "corpus": {"documents": 150, "seed": 1, "min_difficulty": 1, "max_difficulty": 1,
               "styles": {"plain": 0.6, "dialogue": 0.1, "tagged": 0.2, "prose": 0.1}},
    "training": {"steps": 2, "seq_len": 64, "batch_size": 4, "lr": 0.003, "warmup_steps": 1},
    "eval": {"problems": 2, "max_new_tokens": 4}})";
  std::ofstream(work_ / "chat.jsonl") << R"({"messages": [{"role": "user", "content": "1 + 1?"}, {"role": "assistant", "content": "2"}]})"
                                      << "\n";
  auto recipe = [&](const fs::path& student) {
    return parse_staged_recipe(staged(R"([{"name": "s", "kind": "sft", "model": ")" + student.string() +
                                      R"(", "build": "small.json", "data": "chat.jsonl", "max_length": 64}])"),
                               work_ / "r.json", {"model.path=" + (work_ / "model").string()});
  };
  const fs::path student = work_ / "student";
  auto first = run_staged(recipe(student), options());
  ASSERT_TRUE(first.finished);
  EXPECT_EQ(load_model(student)->config().hidden_size, 32);  // the spec's, not the recipe's base model (64)
  const auto built = fs::last_write_time(student / "model.safetensors");
  // Another run with the same stage reuses the student it built; a model that the build did not
  // make (the random base here) is an error before any work, and is left alone.
  auto o = options();
  o.run_dir = work_ / "run2";
  EXPECT_TRUE(run_staged(recipe(student), o).finished);
  EXPECT_EQ(fs::last_write_time(student / "model.safetensors"), built);
  o.run_dir = work_ / "run3";
  const auto e = test::error_of([&] { run_staged(recipe(work_ / "model"), o); });
  EXPECT_NE(e.find("stage 's' (sft): 'build':"), std::string::npos) << e;
  EXPECT_NE(e.find("holds a model that no model.build made"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(work_ / "run3" / "run.db"));
}

TEST_F(StageGraphRun, ResumeNeedsTheSameRecipe) {
  run_staged(two_stages(), options(1));
  auto changed = parse_staged_recipe(staged(R"([{"name": "first", "kind": "grpo"}])"), work_ / "r.json",
                                     {"model.path=" + (work_ / "model").string()});
  EXPECT_THROW(run_staged(changed, options(0, true)), Error);
  EXPECT_THROW(run_staged(two_stages(), options(0, false)), Error);  // a run is there: --resume
}


TEST_F(StageGraphRun, AhaTrainPrintsOneRowPerStage) {
  if (!fs::exists(std::string(AHA_BINARY_DIR) + "/aha")) GTEST_SKIP() << "aha is not built";
  std::ofstream(work_ / "r.json") << staged(R"([{"name": "first", "kind": "grpo"},
                                                {"name": "second", "kind": "grpo", "model": "@first"}])");
  const std::string common = test::shell_quoted((work_ / "r.json").string()) + " --quiet --run-dir " +
                             test::shell_quoted((work_ / "run").string()) + " --set model.path=" +
                             test::shell_quoted((work_ / "model").string());
  auto stopped = test::run_aha("train " + common + " --stop-after 1", true);
  ASSERT_EQ(stopped.exit_status, 0) << stopped.out;
  EXPECT_NE(stopped.out.find("stopped early: continue with --resume"), std::string::npos) << stopped.out;
  EXPECT_NE(stopped.out.find("second           grpo              pending"), std::string::npos) << stopped.out;
  auto done = test::run_aha("train " + common + " --resume", true);
  ASSERT_EQ(done.exit_status, 0) << done.out;
  EXPECT_NE(done.out.find("all stages done"), std::string::npos) << done.out;
  EXPECT_NE(done.out.find("stage            kind              status     accuracy    format  lang_mix    length"),
            std::string::npos)
      << done.out;
  // Each stage's row: done, an accuracy in [0, 1] with three decimals, no language-mix metric.
  for (const char* row : {"first            grpo              done     ", "second           grpo              done     "}) {
    const size_t at = done.out.find(row);
    ASSERT_NE(at, std::string::npos) << done.out;
    const std::string line = done.out.substr(at, done.out.find('\n', at) - at);
    EXPECT_TRUE(std::regex_search(line, std::regex(" [01]\\.[0-9]{3} "))) << line;
    EXPECT_NE(line.find(" - "), std::string::npos) << line;
  }
  EXPECT_NE(done.out.find("stage second output: " + (work_ / "run" / "checkpoints" / "second" / "step-2" / "model").string()),
            std::string::npos)
      << done.out;
}

}  // namespace
}  // namespace aha::recipes
