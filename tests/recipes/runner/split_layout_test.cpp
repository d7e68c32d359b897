// The split layout (recipe "layout": {"mode": "split"}): rollout worker processes (the `aha`
// binary's rollout-worker command) sample, this process trains. On a tiny random model on the
// CPU: with max_staleness 0 the run equals the colocated one bit for bit (one worker, and two
// workers of which one is SIGKILLed mid-run: its prompts are sampled again by the other, none is
// lost or trained twice; data sets that name their rewards; dynamic sampling, whose refill
// rounds run on the workers); with max_staleness 1 the figures stay within the bound.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "recipes/runner/grpo_stage.h"
#include "recipes/runner/stage_graph.h"
#include "tests/recipes/runner/recipes_test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

const fs::path kAha = fs::path(AHA_BINARY_DIR) / "aha";

class SplitLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kAha)) GTEST_SKIP() << "aha is not built";
    torch::set_num_threads(1);
    work_ = test::tiny_model_workdir("split-layout-");
  }
  void TearDown() override {
    unsetenv("AHA_TEST_ROLLOUT_CRASH");
    if (!work_.empty()) remove_tree(work_);
  }

  // One intra-op thread in every process (the workers' too), so that sums run in one order.
  // `train`: the data.train value.
  Recipe recipe(const std::vector<std::string>& extra = {},
                const std::string& train = R"({"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1})") {
    std::vector<std::string> o{"model.path=" + (work_ / "model").string()};
    o.insert(o.end(), extra.begin(), extra.end());
    return parse_recipe(R"({
      "name": "split-test",
      "model": {"path": "set-below", "device": "cpu", "threads": 1},
      "template": "chatml",
      "data": {"train": )" + train + R"(},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"},
                  {"name": "length", "kind": "length", "weight": 1.0, "options": {"max_length": 30, "buffer": 30, "unit": "characters"}}],
      "rollout": {"prompts_per_step": 3, "group_size": 4, "max_new_tokens": 6},
      "algorithm": {"lr": 0.01, "clip_eps_high": 0.28},
      "schedule": {"steps": 3, "seed": 5},
      "checkpoint": {"every": 0, "keep_last": 0}
    })", work_ / "recipe.json", o);
  }

  RunOptions options(const std::string& run) {
    RunOptions o;
    o.run_dir = work_ / run;
    o.progress = false;
    o.rollout_worker_program = kAha;
    return o;
  }

  fs::path work_;
};

bool same_weights(const fs::path& a, const fs::path& b) {
  return test::same_parameters(load_model(a)->named_parameters(), load_model(b)->named_parameters());
}

fs::path final_model(const fs::path& run) { return run / "checkpoints" / "grpo" / "step-3" / "model"; }

// Every figure the first stage of run database `db` recorded but its timings (perf/): name ->
// values, step by step.
std::map<std::string, std::vector<double>> recorded_figures(const fs::path& db) {
  std::map<std::string, std::vector<double>> figures;
  RunStore store(db, {.read_only = true});
  for (const auto& name : store.metric_names(store.stages().at(0).id))
    if (name.rfind("perf/", 0) != 0) figures[name] = test::metric_values(db, name);
  return figures;
}

// Two data sets for dynamic sampling: the first is scored by accuracy alone, which the random
// model never earns, so its groups' rewards are all equal and they are dropped (refill rounds
// follow); the second's length penalty makes its groups informative.
const std::string kUniformAndInformative = R"([
    {"synthetic": "arithmetic", "n": 20, "seed": 1, "difficulty": 1, "rewards": ["accuracy"]},
    {"synthetic": "arithmetic", "n": 20, "seed": 2, "difficulty": 1, "rewards": ["length", "accuracy"]}])";

TEST_F(SplitLayoutTest, OneWorkerOnPolicyEqualsColocatedBitForBit) {
  run_grpo(recipe(), options("colocated"));
  run_grpo(recipe({"layout.mode=split", "layout.rollout_workers=1"}), options("split"));
  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split")));
  for (const char* name : {"reward/total", "train/loss", "response/length_mean", "response/reflection_rate"})
    EXPECT_EQ(test::metric_values(work_ / "colocated" / "run.db", name), test::metric_values(work_ / "split" / "run.db", name)) << name;
  const auto db = work_ / "split" / "run.db";
  // Batch b needs version b: the worker receives new weights before each batch after the first.
  EXPECT_EQ(test::metric_values(db, "rollout/weight_syncs"), (std::vector<double>{0, 1, 1}));
  EXPECT_EQ(test::metric_values(db, "rollout/workers_alive"), (std::vector<double>{1, 1, 1}));
  for (double u : test::metric_values(db, "rollout/worker_utilisation")) EXPECT_TRUE(u >= 0 && u <= 1) << u;
}

// A data set that names its rewards (reward_selection.h) is scored by those alone under the
// split layout too: the run equals the colocated one bit for bit, reward means included.
TEST_F(SplitLayoutTest, PerDataSetRewardsScoreAsInOneProcess) {
  const std::string selected = R"([
      {"synthetic": "arithmetic", "n": 20, "seed": 1, "difficulty": 1, "rewards": ["accuracy"]},
      {"synthetic": "arithmetic", "n": 20, "seed": 2, "difficulty": 1, "rewards": ["length", "accuracy"]}])";
  const std::string every = R"([{"synthetic": "arithmetic", "n": 20, "seed": 1, "difficulty": 1},
                                {"synthetic": "arithmetic", "n": 20, "seed": 2, "difficulty": 1}])";
  run_grpo(recipe({}, every), options("every"));
  run_grpo(recipe({}, selected), options("colocated"));
  run_grpo(recipe({"layout.mode=split", "layout.rollout_workers=1"}, selected), options("split"));
  const auto totals = [&](const char* run) { return test::metric_values(work_ / run / "run.db", "reward/total"); };
  // Worth comparing: leaving the length penalty out of the first data set changes the totals.
  ASSERT_NE(totals("every"), totals("colocated"));
  EXPECT_EQ(totals("split"), totals("colocated"));
  for (const char* name : {"reward/length", "reward/accuracy", "train/loss"})
    EXPECT_EQ(test::metric_values(work_ / "colocated" / "run.db", name), test::metric_values(work_ / "split" / "run.db", name))
        << name;
  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split")));
}

// A GRPO stage of a multi-stage recipe may use the split layout: its workers start from the
// stage's own model (here the first stage's output) and the run equals the colocated one.
TEST_F(SplitLayoutTest, AStageOfAMultiStageRecipe) {
  auto staged = [&](const std::string& layout) {
    return parse_staged_recipe(R"({
      "name": "split-stages",
      "model": {"path": "set-below", "device": "cpu", "threads": 1},
      "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1}},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"},
                  {"name": "length", "kind": "length", "weight": 1.0, "options": {"max_length": 30, "buffer": 30, "unit": "characters"}}],
      "rollout": {"prompts_per_step": 3, "group_size": 4, "max_new_tokens": 6},
      "algorithm": {"lr": 0.01},
      "schedule": {"steps": 2, "seed": 5},
      "stages": [{"name": "first", "kind": "grpo"},
                 {"name": "second", "kind": "grpo", "model": "@first", "layout": )" + layout + R"(}]
    })", work_ / "staged.json", {"model.path=" + (work_ / "model").string()});
  };
  run_staged(staged(R"({"mode": "colocated"})"), options("colocated"));
  const auto split = run_staged(staged(R"({"mode": "split", "rollout_workers": 1})"), options("split"));
  ASSERT_TRUE(split.finished);
  const fs::path last = fs::path("checkpoints") / "second" / "step-2" / "model";
  EXPECT_EQ(split.stages.at(1).output, work_ / "split" / last);
  EXPECT_TRUE(same_weights(work_ / "colocated" / last, work_ / "split" / last));
  RunStore store(work_ / "split" / "run.db", {.read_only = true});
  const auto syncs = store.metric_series(store.stages().at(1).id, "rollout/weight_syncs");
  ASSERT_EQ(syncs.size(), 2u);  // the second stage's steps ran on a worker
}

// Dynamic sampling (DAPO): the refill rounds run on the worker, with the prompts and seeds one
// process draws, so the run equals the colocated one bit for bit: weights, every figure, the
// prompts trained on.
TEST_F(SplitLayoutTest, DynamicSamplingRefillsAsInOneProcess) {
  run_grpo(recipe({"rollout.dynamic_sampling=true"}, kUniformAndInformative), options("colocated"));
  run_grpo(recipe({"rollout.dynamic_sampling=true", "layout.mode=split", "layout.rollout_workers=1"},
                  kUniformAndInformative),
           options("split"));
  const auto colocated = work_ / "colocated" / "run.db", split = work_ / "split" / "run.db";
  // Worth comparing: refill rounds ran, and the policy trained.
  const auto rounds = test::metric_values(colocated, "data/sampling_rounds");
  ASSERT_EQ(rounds.size(), 3u);
  ASSERT_GT(*std::max_element(rounds.begin(), rounds.end()), 1.0) << "no refill round: nothing to compare";
  ASSERT_FALSE(same_weights(work_ / "model", final_model(work_ / "colocated")));

  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split")));
  for (const auto& [name, values] : recorded_figures(colocated))
    EXPECT_EQ(test::metric_values(split, name), values) << name;
  const auto prompts = test::trained_prompts(split, 3, 4);
  EXPECT_EQ(prompts, test::trained_prompts(colocated, 3, 4));
  EXPECT_EQ(std::set<std::string>(prompts.begin(), prompts.end()).size(), prompts.size()) << "a prompt trained twice";
}

// A worker killed as it receives a refill round loses nothing: the round goes to the other
// worker with the same prompts and seed, and the run equals the colocated one.
TEST_F(SplitLayoutTest, AWorkerKilledInARefillRoundLosesNoPrompt) {
  run_grpo(recipe({"rollout.dynamic_sampling=true"}, kUniformAndInformative), options("colocated"));
  const auto colocated = work_ / "colocated" / "run.db", split = work_ / "split" / "run.db";
  ASSERT_GT(test::metric_values(colocated, "data/sampling_rounds").at(0), 1.0) << "step 1 had no refill round";
  // Worker 0 takes step 1's first round and, both workers being idle then, its refill round
  // (the least busy, first), and SIGKILLs itself on receiving that.
  setenv("AHA_TEST_ROLLOUT_CRASH", "0:1", 1);
  run_grpo(recipe({"rollout.dynamic_sampling=true", "layout.mode=split", "layout.rollout_workers=2"},
                  kUniformAndInformative),
           options("split"));
  unsetenv("AHA_TEST_ROLLOUT_CRASH");
  EXPECT_EQ(test::metric_values(split, "rollout/requeued_tasks"), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(test::metric_values(split, "rollout/workers_alive"), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(test::metric_values(split, "data/sampling_rounds"), test::metric_values(colocated, "data/sampling_rounds"));
  EXPECT_EQ(test::trained_prompts(split, 3, 4), test::trained_prompts(colocated, 3, 4));
  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split")));
}

// Sampling ahead (max_staleness 1) with dynamic sampling: a step's prompts are drawn only once
// the step before has drawn its refill rounds, so the steps get the prompts in one process's
// order (here which groups are dropped depends on the data set alone, not on the policy) and
// the staleness stays within the bound.
TEST_F(SplitLayoutTest, DynamicSamplingAheadDrawsPromptsInOrder) {
  run_grpo(recipe({"rollout.dynamic_sampling=true"}, kUniformAndInformative), options("colocated"));
  run_grpo(recipe({"rollout.dynamic_sampling=true", "layout.mode=split", "layout.rollout_workers=2",
                   "algorithm.max_staleness=1"},
                  kUniformAndInformative),
           options("split"));
  const auto colocated = work_ / "colocated" / "run.db", split = work_ / "split" / "run.db";
  ASSERT_GT(test::metric_values(colocated, "data/sampling_rounds").at(0), 1.0) << "step 1 had no refill round";
  for (double s : test::metric_values(split, "async/staleness_max")) EXPECT_LE(s, 1.0);
  EXPECT_EQ(test::metric_values(split, "async/dropped_groups_total").back(), 0.0);
  EXPECT_EQ(test::metric_values(split, "data/sampling_rounds"), test::metric_values(colocated, "data/sampling_rounds"));
  EXPECT_EQ(test::trained_prompts(split, 3, 4), test::trained_prompts(colocated, 3, 4));
}

// Stopped after step 2 and resumed, a split run with dynamic sampling continues from the
// checkpoint's data cursor: on-policy it equals the colocated run bit for bit; sampling ahead
// (max_staleness 1), the step sampled ahead is drawn again and its prompts are trained once.
TEST_F(SplitLayoutTest, DynamicSamplingStopAndResumeLosesNoPrompt) {
  const std::vector<std::string> dynamic{"rollout.dynamic_sampling=true", "layout.mode=split"};
  run_grpo(recipe({"rollout.dynamic_sampling=true"}, kUniformAndInformative), options("colocated"));
  const auto colocated = work_ / "colocated" / "run.db";
  for (const std::string staleness : {"0", "1"}) {
    auto o = dynamic;
    o.push_back("algorithm.max_staleness=" + staleness);
    const auto split = recipe(o, kUniformAndInformative);
    auto first = options("split" + staleness);
    first.stop_after_steps = 2;
    run_grpo(split, first);
    auto second = options("split" + staleness);
    second.resume = true;
    run_grpo(split, second);
    const auto db = work_ / ("split" + staleness) / "run.db";
    EXPECT_EQ(test::trained_prompts(db, 3, 4), test::trained_prompts(colocated, 3, 4)) << "max_staleness " << staleness;
    EXPECT_EQ(test::metric_values(db, "data/sampling_rounds"), test::metric_values(colocated, "data/sampling_rounds"))
        << "max_staleness " << staleness;
  }
  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split0")));
}

TEST_F(SplitLayoutTest, KilledWorkerLosesNoPromptAndTrainsNoneTwice) {
  run_grpo(recipe(), options("colocated"));
  // Worker 0 takes batches 0 and 1 (the least busy, first) and SIGKILLs itself on receiving
  // batch 1: that batch goes to worker 1, which first receives version 1's weights.
  setenv("AHA_TEST_ROLLOUT_CRASH", "0:1", 1);
  run_grpo(recipe({"layout.mode=split", "layout.rollout_workers=2"}), options("split"));
  unsetenv("AHA_TEST_ROLLOUT_CRASH");
  const auto db = work_ / "split" / "run.db";
  EXPECT_EQ(test::metric_values(db, "rollout/requeued_tasks"), (std::vector<double>{0, 1, 1}));
  EXPECT_EQ(test::metric_values(db, "rollout/workers_alive"), (std::vector<double>{2, 1, 1}));
  const auto prompts = test::trained_prompts(db, 3, 4);
  EXPECT_EQ(prompts.size(), 9u);
  EXPECT_EQ(prompts, test::trained_prompts(work_ / "colocated" / "run.db", 3, 4));
  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split")));
}

TEST_F(SplitLayoutTest, StalenessOneWithTwoWorkersStaysWithinTheBound) {
  run_grpo(recipe(), options("colocated"));
  run_grpo(recipe({"layout.mode=split", "layout.rollout_workers=2", "algorithm.max_staleness=1"}), options("split"));
  const auto db = work_ / "split" / "run.db";
  for (double s : test::metric_values(db, "async/staleness_max")) EXPECT_LE(s, 1.0);
  EXPECT_EQ(test::metric_values(db, "async/dropped_groups_total").back(), 0.0);
  EXPECT_EQ(test::trained_prompts(db, 3, 4), test::trained_prompts(work_ / "colocated" / "run.db", 3, 4));
}

TEST_F(SplitLayoutTest, StopAndResumeEqualsTheColocatedRun) {
  run_grpo(recipe(), options("colocated"));
  const auto split = recipe({"layout.mode=split"});
  auto first = options("split");
  first.stop_after_steps = 2;
  run_grpo(split, first);
  auto second = options("split");
  second.resume = true;
  run_grpo(split, second);
  EXPECT_TRUE(same_weights(final_model(work_ / "colocated"), final_model(work_ / "split")));
  EXPECT_EQ(test::trained_prompts(work_ / "split" / "run.db", 3, 4), test::trained_prompts(work_ / "colocated" / "run.db", 3, 4));

  // With max_staleness 2 all three batches are sampled by version 0 at the start (staleness 0,
  // 1, 2); stopped after step 2, the resumed run samples batch 2 again, and its workers start
  // from the resumed policy (version 2), not from model.path's: staleness 0.
  const auto stale = recipe({"layout.mode=split", "algorithm.max_staleness=2"});
  auto straight = options("stale_straight");
  run_grpo(stale, straight);
  EXPECT_EQ(test::metric_values(work_ / "stale_straight" / "run.db", "async/staleness_mean"), (std::vector<double>{0, 1, 2}));
  auto stopped = options("stale_resumed");
  stopped.stop_after_steps = 2;
  run_grpo(stale, stopped);
  auto resumed = options("stale_resumed");
  resumed.resume = true;
  run_grpo(stale, resumed);
  EXPECT_EQ(test::metric_values(work_ / "stale_resumed" / "run.db", "async/staleness_mean"), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(test::trained_prompts(work_ / "stale_resumed" / "run.db", 3, 4), test::trained_prompts(work_ / "colocated" / "run.db", 3, 4));
}

TEST_F(SplitLayoutTest, AWorkerThatCannotStartIsNamed) {
  auto o = options("split");
  o.rollout_worker_program = work_ / "no-such-program";
  try {
    run_grpo(recipe({"layout.mode=split"}), o);
    ADD_FAILURE() << "the run started without its worker";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rollout worker 0 did not start: it exited with status 127"), std::string::npos)
        << e.what();
  }
}

// The live processes whose parent is `parent` and whose command line has `word`.
std::vector<pid_t> children_running(pid_t parent, const std::string& word) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (state == 'Z' || ppid != parent) continue;
    std::ifstream cmd(entry.path() / "cmdline", std::ios::binary);
    const std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (cmdline.find(word) != std::string::npos) found.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return found;
}

bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

// `aha train` SIGKILLed while its two workers run: they end too (PR_SET_PDEATHSIG), no orphan.
TEST_F(SplitLayoutTest, WorkersDieWithTheirController) {
  const auto file = work_ / "long.json";
  {
    std::ofstream out(file);
    out << R"({"name": "split-orphans", "model": {"path": ")" << (work_ / "model").string()
        << R"(", "device": "cpu", "threads": 1}, "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 40, "seed": 1, "difficulty": 1}},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"}],
      "rollout": {"prompts_per_step": 3, "group_size": 4, "max_new_tokens": 6},
      "schedule": {"steps": 100000, "seed": 5}, "layout": {"mode": "split", "rollout_workers": 2}})";
  }
  const std::string run_dir = (work_ / "orphans").string();
  const pid_t controller = ::fork();
  ASSERT_GE(controller, 0);
  if (controller == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(kAha.c_str(), "aha", "train", file.c_str(), "--run-dir", run_dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Both workers running (a limit against a hang only: it never decides the outcome).
  std::vector<pid_t> workers;
  for (int i = 0; i < 6000 && workers.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    workers = children_running(controller, "rollout-worker");
  }
  ASSERT_EQ(workers.size(), 2u) << "the controller did not start its workers";
  ::kill(controller, SIGKILL);
  ::waitpid(controller, nullptr, 0);
  bool gone = false;
  for (int i = 0; i < 3000 && !gone; ++i) {
    gone = std::none_of(workers.begin(), workers.end(), running);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone) << "rollout workers outlived their controller";
  for (pid_t w : workers)
    if (running(w)) ::kill(w, SIGKILL);
}

TEST_F(SplitLayoutTest, LayoutKeysAreChecked) {
  EXPECT_THROW(recipe({"layout.mode=spread"}), Error);
  EXPECT_THROW(recipe({"layout.rollout_workers=0"}), Error);
  EXPECT_THROW(recipe({"layout.backend=mpi"}), Error);
  // Dynamic sampling's refill rounds run on the workers too.
  EXPECT_TRUE(recipe({"layout.mode=split", "rollout.dynamic_sampling=true"}).layout.split);
  // Where the roles run is not part of what the run computes: a run resumes under either.
  EXPECT_EQ(recipe({"layout.mode=split"}).canonical_json, recipe().canonical_json);
}

}  // namespace
}  // namespace aha::recipes
