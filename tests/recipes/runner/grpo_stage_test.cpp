// The stage runner on a tiny random model: a short run records what it should, stopping and
// resuming continues exactly (same metrics and weights as never stopping), and bad setups are
// refused before any work.
#include "recipes/runner/grpo_stage.h"

#include <gtest/gtest.h>

#include "core/files.h"
#include "core/reflection_words.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

class GrpoStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    work_ = test::tiny_model_workdir("grpo-stage-");
  }
  void TearDown() override { remove_tree(work_); }

  Recipe recipe(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> o{"model.path=" + (work_ / "model").string()};
    o.insert(o.end(), extra.begin(), extra.end());
    return parse_recipe(R"({
      "name": "stage-test",
      "model": {"path": "set-below", "device": "cpu"},
      "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1},
               "eval": {"arith": {"synthetic": "arithmetic", "n": 6, "seed": 2, "difficulty": 1, "split": "heldout"}}},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"},
                  {"name": "length", "kind": "length", "weight": 1.0, "options": {"max_length": 30, "buffer": 30, "unit": "characters"}}],
      "rollout": {"prompts_per_step": 3, "group_size": 4, "max_new_tokens": 6},
      "algorithm": {"lr": 0.01, "clip_eps_high": 0.28},
      "schedule": {"steps": 4, "seed": 5},
      "checkpoint": {"every": 0, "keep_last": 0},
      "eval": {"max_new_tokens": 4}
    })", work_ / "recipe.json", o);
  }

  RunOptions options(const std::string& run, int64_t stop_after = 0, bool resume = false) {
    RunOptions o;
    o.run_dir = work_ / run;
    o.progress = false;
    o.stop_after_steps = stop_after;
    o.resume = resume;
    return o;
  }

  fs::path work_;
};

TEST_F(GrpoStageTest, RecordsStepsEvalsSamplesAndCheckpoints) {
  auto summary = run_grpo(recipe(), options("run"));
  EXPECT_EQ(summary.steps, 4);
  const auto db = work_ / "run" / "run.db";
  RunStore store(db, {.read_only = true});
  auto stage = store.stages().at(0);
  EXPECT_EQ(stage.status, "done");
  EXPECT_EQ(test::metric_values(db, "reward/total").size(), 4u);
  EXPECT_EQ(test::metric_values(db, "train/loss").size(), 4u);
  EXPECT_EQ(test::metric_values(db, "eval/accuracy").size(), 2u);  // before and after
  EXPECT_EQ(test::metric_values(db, "eval/arith/accuracy").size(), 2u);
  // Every step trains on prompts_per_step x G rows.
  for (double rows : test::metric_values(db, "train/sequences")) EXPECT_EQ(rows, 12.0);
  auto samples = store.samples(stage.id, 4);
  ASSERT_EQ(samples.size(), 12u);
  EXPECT_FALSE(samples[0].prompt.empty());
  EXPECT_EQ(samples[0].group_index, 0);
  EXPECT_EQ(samples[11].group_index, 2);
  // The step's reflection rate is the share of its completions with a self-verification phrase.
  auto reflection = test::metric_values(db, "response/reflection_rate");
  ASSERT_EQ(reflection.size(), 4u);
  int reflecting = 0;
  for (const auto& sample : samples) reflecting += count_reflection_words(sample.completion, default_reflection_words()) > 0;
  EXPECT_DOUBLE_EQ(reflection[3], reflecting / 12.0);
  // Advantages within a group sum to zero (GRPO's group normalisation).
  double sum = 0;
  for (int j = 0; j < 4; ++j) sum += samples[j].advantage;
  EXPECT_NEAR(sum, 0.0, 1e-4);
  ASSERT_EQ(store.checkpoints(stage.id).size(), 1u);  // only at the end (every = 0)
  EXPECT_TRUE(fs::exists(summary.final_checkpoint / "model" / "tokenizer.json"));
  auto reloaded = load_model(summary.final_checkpoint / "model");
  EXPECT_EQ(reloaded->config().hidden_size, 64);
}

TEST_F(GrpoStageTest, StopAndResumeContinuesExactly) {
  run_grpo(recipe(), options("straight"));
  auto first = run_grpo(recipe(), options("resumed", /*stop_after=*/2));
  EXPECT_EQ(first.steps, 2);
  {
    RunStore store(work_ / "resumed" / "run.db", {.read_only = true});
    EXPECT_EQ(store.stages().at(0).status, "stopped");
  }
  auto second = run_grpo(recipe(), options("resumed", 0, /*resume=*/true));
  EXPECT_EQ(second.steps, 4);
  for (const char* name : {"reward/total", "train/loss", "train/grad_norm", "response/length_mean"}) {
    auto a = test::metric_values(work_ / "straight" / "run.db", name), b = test::metric_values(work_ / "resumed" / "run.db", name);
    ASSERT_EQ(a.size(), 4u) << name;
    EXPECT_EQ(a, b) << name;
  }
  auto wa = load_model(work_ / "straight" / "checkpoints" / "grpo" / "step-4" / "model");
  auto wb = load_model(work_ / "resumed" / "checkpoints" / "grpo" / "step-4" / "model");
  auto pa = wa->named_parameters(), pb = wb->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
}

TEST_F(GrpoStageTest, RefusesToOverwriteARunAndChecksTheRecipeOnResume) {
  run_grpo(recipe({"schedule.steps=1"}), options("run"));
  auto e = test::error_of([&] { run_grpo(recipe({"schedule.steps=1"}), options("run")); });
  EXPECT_NE(e.find("--resume"), std::string::npos) << e;
  e = test::error_of([&] { run_grpo(recipe({"schedule.steps=1", "algorithm.lr=0.5"}), options("run", 0, true)); });
  EXPECT_NE(e.find("recipe differs"), std::string::npos) << e;
  e = test::error_of([&] { run_grpo(recipe(), options("nothing-here", 0, true)); });
  EXPECT_NE(e.find("no run"), std::string::npos) << e;
}

TEST_F(GrpoStageTest, KlInRewardStartsAtZeroAndGrowsOnceThePolicyMoves) {
  auto r = recipe({"algorithm.beta=0.1", "algorithm.kl_in_reward=true", "algorithm.kl_estimator=k3"});
  run_grpo(r, options("run"));
  auto kl = test::metric_values(work_ / "run" / "run.db", "reward/kl");
  ASSERT_EQ(kl.size(), 4u);
  // Step 1 samples from the policy the reference copies: behaviour and reference log-probs agree
  // up to the engine's numerics, so k3 is ~0. Later steps sample from an updated policy.
  EXPECT_LT(kl[0], 1e-3);
  EXPECT_GT(kl[3], kl[0]);
  EXPECT_EQ(test::metric_values(work_ / "run" / "run.db", "reward/kl_penalty").size(), 4u);
  // The loss has no KL term then (no train/kl metrics), and a reward KL needs beta > 0.
  EXPECT_TRUE(test::metric_values(work_ / "run" / "run.db", "train/kl_loss").empty());
  auto e = test::error_of([&] { recipe({"algorithm.kl_in_reward=true"}); });
  EXPECT_NE(e.find("kl_in_reward"), std::string::npos) << e;
}

TEST_F(GrpoStageTest, R1ZeroRecipeHasTheReportSettingsAndRunsTwoStepsOnATinyModel) {
  const fs::path file = fs::path(AHA_SOURCE_DIR) / "recipes" / "r1-zero.json";
  auto r = load_recipe(file);
  // The DeepSeek-R1 report's R1-Zero settings (recipes/README.md maps them).
  EXPECT_EQ(r.template_name, "r1_zero");
  EXPECT_DOUBLE_EQ(r.trainer.optimizer.lr, 3e-6);
  EXPECT_DOUBLE_EQ(r.trainer.loss.beta, 0.001);
  EXPECT_EQ(r.trainer.loss.kl_estimator, policy::KlEstimator::k3);
  EXPECT_DOUBLE_EQ(r.trainer.loss.clip_eps_low, 10);
  EXPECT_DOUBLE_EQ(r.trainer.loss.clip_eps_high, 10);
  EXPECT_DOUBLE_EQ(r.rollout.temperature, 1.0);
  EXPECT_EQ(r.rollout.group_size, 16);
  // 512 prompts x 16 = 8,192 outputs in 16 mini-batches: reference refresh every 25 rollouts
  // is every 400 optimizer steps.
  const int64_t rows = r.rollout.prompts_per_step * r.rollout.group_size;
  EXPECT_EQ(rows / r.trainer.mini_batch_size, 16);
  EXPECT_EQ(r.trainer.ref_refresh_steps * rows / r.trainer.mini_batch_size, 400);
  EXPECT_EQ(r.trainer.optimizer.schedule.total_steps, 10400);

  // Two steps on the tiny model, everything else as the recipe says except sizes (CPU).
  auto tiny = load_recipe(file, {"model.path=" + (work_ / "model").string(), "model.device=cpu",
                                 R"(data.train=[{"synthetic": "arithmetic", "n": 20, "seed": 1}])",
                                 R"(data.eval={"arith": {"synthetic": "arithmetic", "n": 4, "seed": 2, "split": "heldout"}})",
                                 "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8",
                                 "algorithm.mini_batch_size=4", "algorithm.micro_batch_size=2",
                                 "algorithm.autocast_bf16=false", "schedule.steps=2", "eval.max_new_tokens=8"});
  auto summary = run_grpo(tiny, options("r1-zero"));
  EXPECT_EQ(summary.steps, 2);
  auto optimizer_steps = test::metric_values(work_ / "r1-zero" / "run.db", "train/optimizer_steps");
  EXPECT_EQ(optimizer_steps, (std::vector<double>{2.0, 2.0}));  // 8 rows in mini-batches of 4
  EXPECT_EQ(test::metric_values(work_ / "r1-zero" / "run.db", "train/kl").size(), 2u);  // beta > 0: a reference
}

TEST_F(GrpoStageTest, MissingModelIsNamedBeforeAnyWork) {
  auto r = recipe({"model.path=" + (work_ / "absent").string()});
  auto e = test::error_of([&] { run_grpo(r, options("run")); });
  EXPECT_NE(e.find("absent"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(work_ / "run" / "run.db"));
}

// Issue 23, finding 3: a run directory that is not a run is refused before any work, and an
// empty run store never turns --resume into a fresh start over the folder.
TEST_F(GrpoStageTest, NeverWritesIntoAFolderThatIsNotItsRun) {
  fs::create_directories(work_ / "folder" / "checkpoints" / "grpo" / "step-3");
  write_file_atomic(work_ / "folder" / "checkpoints" / "grpo" / "step-3" / "state.json", "{\"theirs\": 1}");
  auto e = test::error_of([&] { run_grpo(recipe(), options("folder")); });
  EXPECT_NE(e.find("no run.db"), std::string::npos) << e;
  EXPECT_EQ(read_file(work_ / "folder" / "checkpoints" / "grpo" / "step-3" / "state.json"), "{\"theirs\": 1}");
  EXPECT_FALSE(fs::exists(work_ / "folder" / "run.db"));

  fs::create_directories(work_ / "empty-store");
  write_file_atomic(work_ / "empty-store" / "run.db", "");
  e = test::error_of([&] { run_grpo(recipe(), options("empty-store", 0, true)); });
  EXPECT_NE(e.find("refusing to continue"), std::string::npos) << e;
  EXPECT_EQ(fs::file_size(work_ / "empty-store" / "run.db"), 0u);

  fs::create_directories(work_ / "empty-dir");  // an empty folder is a fine place for a new run
  EXPECT_EQ(run_grpo(recipe({"schedule.steps=1"}), options("empty-dir")).steps, 1);
}

// Issue 23, finding 9: a run whose every optimizer step is skipped fails; it does not finish.
// The rollout must stay finite for steps to reach the optimizer, so the NaN is put where
// only the loss sees it: the KL reference of a checkpoint that the run then resumes from.
TEST_F(GrpoStageTest, ARunWhoseEveryStepIsSkippedFails) {
  const std::vector<std::string> settings{"algorithm.beta=0.1", "schedule.steps=3"};
  run_grpo(recipe(settings), options("run", /*stop_after=*/1));
  const fs::path reference = work_ / "run" / "checkpoints" / "grpo" / "step-1" / "reference";
  {
    auto model = load_model(reference);
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.fill_(std::numeric_limits<float>::quiet_NaN());
    save_model(*model, reference, {.made_by = "train", .overwrite = true});
  }
  auto e = test::error_of([&] { run_grpo(recipe(settings), options("run", 0, /*resume=*/true)); });
  EXPECT_NE(e.find("every optimizer step"), std::string::npos) << e;
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  EXPECT_EQ(store.stages().at(0).status, "failed");
  EXPECT_GT(test::metric_values(work_ / "run" / "run.db", "train/skipped_steps").back(), 0);
}

}  // namespace
}  // namespace aha::recipes
