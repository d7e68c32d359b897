// Asynchronous GRPO in one process (algorithm.max_staleness, recipes/runner/grpo_stage.cpp):
// with 0 the stage is today's on-policy GRPO to the bit (checked against the step rebuilt from
// its parts); with 1 the rollout runs one policy version ahead, the staleness figures are the
// hand-worked ones, and every prompt is trained on exactly once, across a stop and resume too.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/files.h"
#include "core/run_store.h"
#include "datasets/data_iterator.h"
#include "datasets/prompt_template.h"
#include "datasets/seeded_random.h"
#include "policy/learner/advantages.h"
#include "policy/model/model_io.h"
#include "recipes/runner/batch_builder.h"
#include "recipes/runner/grpo_stage.h"
#include "recipes/runner/reward_scoring.h"
#include "recipes/runner/sampling.h"
#include "rollout/rollout_engine.h"
#include "tests/recipes/runner/recipes_test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

class AsyncGrpoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    work_ = test::tiny_model_workdir("async-grpo-");
  }
  void TearDown() override { remove_tree(work_); }

  Recipe recipe(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> o{"model.path=" + (work_ / "model").string()};
    o.insert(o.end(), extra.begin(), extra.end());
    return parse_recipe(R"({
      "name": "async-test",
      "model": {"path": "set-below", "device": "cpu"},
      "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1}},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"},
                  {"name": "length", "kind": "length", "weight": 1.0, "options": {"max_length": 30, "buffer": 30, "unit": "characters"}}],
      "rollout": {"prompts_per_step": 3, "group_size": 4, "max_new_tokens": 6},
      "algorithm": {"lr": 0.01, "clip_eps_high": 0.28},
      "schedule": {"steps": 4, "seed": 5},
      "checkpoint": {"every": 0, "keep_last": 0}
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

std::vector<std::pair<std::string, torch::Tensor>> weights(const fs::path& model_dir) {
  return load_model(model_dir)->named_parameters();
}

// Today's on-policy GRPO step, rebuilt from the parts the stage glues together: draw
// prompts_per_step prompts, sample and score them with the step's seeds, group advantages,
// one train_step.
TEST_F(AsyncGrpoTest, MaxStalenessZeroIsOnPolicyGrpoBitForBit) {
  const auto r = recipe({"algorithm.max_staleness=0", "algorithm.tis_cap=1.5", "schedule.steps=2"});
  run_grpo(r, options("stage"));

  const fs::path model_dir = work_ / "model";
  auto tokenizer = Tokenizer::from_dir(model_dir);
  auto prompt_template = PromptTemplate::from_name("chatml", {}, model_dir, "");
  policy::GrpoTrainer trainer(load_model(model_dir), r.trainer);
  const auto eos = default_eos_ids(model_dir, trainer.policy().config(), &tokenizer);
  const int64_t pad = tokenizer.pad_id().value_or(eos.front());
  RolloutEngine engine(trainer.policy(), EngineOptions{}, make_text_decoder(tokenizer));
  const auto train = load_dataset(r.train_data.at(0), r.base_dir);
  DataIterator data(train.size(), r.schedule.seed);
  auto scorer = make_reward_scorer(r);
  const int64_t G = r.rollout.group_size;
  for (int64_t step = 0; step < 2; ++step) {
    auto examples = data.next_batch(train, r.rollout.prompts_per_step);
    SamplingOptions s;
    s.group_size = G;
    s.settings.sampler.temperature = r.rollout.temperature;
    s.settings.sampler.top_p = r.rollout.top_p;
    s.settings.sampler.top_k = r.rollout.top_k;
    s.settings.stop.eos_token_ids = eos;
    s.settings.stop.max_new_tokens = r.rollout.max_new_tokens;
    s.settings.seed = mix_seed(mix_seed(r.schedule.seed, static_cast<uint64_t>(step)), 0);
    s.prompts_per_batch = r.rollout.prompts_per_step;
    auto groups = sample_and_score(engine, tokenizer, prompt_template, examples, s, *scorer);
    std::vector<float> rewards;
    std::vector<BatchRow> rows;
    for (const auto& g : groups)
      for (int64_t j = 0; j < G; ++j) {
        rewards.push_back(static_cast<float>(g.scores[j].total));
        rows.push_back({&g.prompt_ids, &g.completions[j].tokens, &g.completions[j].logprobs, 0.0f, rewards.back()});
      }
    auto batch = build_policy_batch(rows, pad);
    batch.advantages = policy::compute_advantages(torch::tensor(rewards), G, r.advantage).to(torch::kFloat32).contiguous();
    trainer.train_step(batch);
  }
  EXPECT_TRUE(test::same_parameters(weights(work_ / "stage" / "checkpoints" / "grpo" / "step-2" / "model"),
                           trainer.policy().named_parameters()));
  // The recipe without the key is the same run (0 is the default); a stale rollout is not.
  run_grpo(recipe({"schedule.steps=2"}), options("default"));
  EXPECT_TRUE(test::same_parameters(weights(work_ / "default" / "checkpoints" / "grpo" / "step-2" / "model"),
                           trainer.policy().named_parameters()));
  run_grpo(recipe({"algorithm.max_staleness=1", "schedule.steps=2"}), options("stale"));
  EXPECT_FALSE(test::same_parameters(weights(work_ / "stale" / "checkpoints" / "grpo" / "step-2" / "model"),
                            trainer.policy().named_parameters()));
  // On-policy runs record no async/ figures.
  EXPECT_TRUE(test::metric_values(work_ / "stage" / "run.db", "async/staleness_mean").empty());
}

TEST_F(AsyncGrpoTest, StalenessOneRunsAheadAndTrainsEveryPromptOnce) {
  run_grpo(recipe(), options("on_policy"));
  run_grpo(recipe({"algorithm.max_staleness=1"}), options("async"));
  const auto db = work_ / "async" / "run.db";
  // Step 1 trains batch 0 (sampled by version 0) at version 0; from then on each batch was
  // sampled one update before it is trained. Two batches are held until the last step, for
  // which none is sampled ahead.
  EXPECT_EQ(test::metric_values(db, "async/staleness_mean"), (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(test::metric_values(db, "async/staleness_max"), (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(test::metric_values(db, "async/staleness_1"), (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(test::metric_values(db, "async/queue_depth"), (std::vector<double>{2, 2, 2, 1}));
  EXPECT_EQ(test::metric_values(db, "async/dropped_groups_total"), (std::vector<double>{0, 0, 0, 0}));
  for (double w : test::metric_values(db, "async/is_weight_max")) EXPECT_LE(w, 2.0);  // the default tis_cap
  for (double rows : test::metric_values(db, "train/sequences")) EXPECT_EQ(rows, 12.0);
  // The same prompts in the same order as on-policy: none skipped, none twice.
  const auto prompts = test::trained_prompts(db, 4, 4);
  ASSERT_EQ(prompts.size(), 12u);
  EXPECT_EQ(prompts, test::trained_prompts(work_ / "on_policy" / "run.db", 4, 4));
  EXPECT_FALSE(test::same_parameters(weights(work_ / "async" / "checkpoints" / "grpo" / "step-4" / "model"),
                            weights(work_ / "on_policy" / "checkpoints" / "grpo" / "step-4" / "model")));

  // Stopped after step 2 with batch 2 sampled ahead: the checkpoint's data cursor is batch 2's,
  // so the resumed run samples it again and trains the same prompts.
  run_grpo(recipe({"algorithm.max_staleness=1"}), options("resumed", /*stop_after=*/2));
  run_grpo(recipe({"algorithm.max_staleness=1"}), options("resumed", 0, /*resume=*/true));
  EXPECT_EQ(test::trained_prompts(work_ / "resumed" / "run.db", 4, 4), prompts);
  // After the resume, batch 2 is resampled by version 2 and trained at version 2.
  EXPECT_EQ(test::metric_values(work_ / "resumed" / "run.db", "async/staleness_mean"), (std::vector<double>{0, 1, 0, 1}));
}

TEST_F(AsyncGrpoTest, RefusesBadKeys) {
  EXPECT_THROW(recipe({"algorithm.max_staleness=-1"}), Error);
  for (const char* cap : {"algorithm.tis_cap=0", "algorithm.tis_cap=-2"}) {
    try {
      recipe({cap});
      ADD_FAILURE() << cap << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tis_cap"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(recipe({"algorithm.max_staleness=3"}).async.max_staleness, 3);
  EXPECT_EQ(recipe().async.tis_cap, 2.0);
}

}  // namespace
}  // namespace aha::recipes
