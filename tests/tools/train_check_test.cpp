// `aha train RECIPE --check` (issue 22): every recipe in recipes/ passes it from a clean copy of
// the project's recipes/ and data/ (so no recipe may reach the development machines'
// ../shared), it writes nothing, and a broken recipe gets every problem listed at once.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using test::shell_quoted;

// Every path below `dir` (files with their sizes), to prove --check wrote nothing.
std::map<std::string, uintmax_t> listing(const fs::path& dir) {
  std::map<std::string, uintmax_t> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    out[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? e.file_size() : 0;
  return out;
}

// A small Qwen2-style model with a BPE tokenizer, standing in for the real base model that
// recipes/r1-zero.json is given with --set model.path (its vocabulary padded past the tokenizer's).
void make_small_model(const fs::path& work, const fs::path& model) {
  const fs::path corpus = work / "corpus.txt";
  std::ofstream(corpus) << "Question: what is 12 + 30? Answer: 42. The sum of two numbers is their total.\n"
                           "Natalia sold clips to 48 of her friends in April, and then she sold half as many.\n";
  const fs::path tok = work / "tok";
  auto t = test::run_aha("tokenizer train " + shell_quoted(corpus.string()) +
                             " --vocab-size 300 --special-tokens '<|endoftext|>,<|im_start|>,<|im_end|>' --out " +
                             shell_quoted(tok.string()),
                         true, 120);
  ASSERT_EQ(t.exit_status, 0) << t.out;
  const fs::path config = work / "config.json";
  std::ofstream(config) << R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32",
    "eos_token_id": 298, "vocab_size": 320})";
  auto m = test::run_aha("model init --config " + shell_quoted(config.string()) + " --tokenizer " +
                             shell_quoted(tok.string()) + " --out " + shell_quoted(model.string()),
                         true, 120);
  ASSERT_EQ(m.exit_status, 0) << m.out;
}

class TrainCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per test: ctest -j runs the tests of this suite side by side.
    work_ = fs::path(AHA_BINARY_DIR) /
            ("train-check-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    remove_tree(work_);
    copy_ = work_ / "project";  // recipes/ and data/ only: no ../shared beside it
    fs::create_directories(copy_);
    fs::copy(fs::path(AHA_SOURCE_DIR) / "recipes", copy_ / "recipes", fs::copy_options::recursive);
    fs::copy(fs::path(AHA_SOURCE_DIR) / "data", copy_ / "data", fs::copy_options::recursive);
    ASSERT_FALSE(fs::exists(work_ / "shared"));
  }
  void TearDown() override {
    if (!HasFailure()) remove_tree(work_);
  }
  fs::path work_, copy_;
};

TEST_F(TrainCheck, EveryRecipePassesFromACleanCopyAndWritesNothing) {
  const fs::path model = work_ / "small-model";
  make_small_model(work_, model);
  int recipes = 0;
  for (const auto& entry : fs::directory_iterator(copy_ / "recipes")) {
    if (entry.path().extension() != ".json") continue;
    ++recipes;
    const std::string name = entry.path().filename().string();
    // Only recipes that name no model of their own (no model.build) need one given, as the
    // README tells users; a stage's own "build" (distill-tiny's student) does not count.
    const auto doc = json::parse(read_file(entry.path()), name);
    const bool builds_model = doc["model"].HasMember("build") && !doc["model"]["build"].IsNull();
    const std::string set_model = builds_model ? "" : " --set model.path=" + shell_quoted(model.string());
    const auto before = listing(copy_);
    const auto o = test::run_aha_in(copy_, "train recipes/" + name + " --check" + set_model, true, 300);
    EXPECT_EQ(o.exit_status, 0) << name << ":\n" << o.out;
    EXPECT_NE(o.out.find("recipe ok"), std::string::npos) << name << ":\n" << o.out;
    EXPECT_EQ(o.out.find("PROBLEM"), std::string::npos) << name << ":\n" << o.out;
    // The plan is printed: GRPO steps, or for a recipe without a GRPO stage what its stages do.
    EXPECT_TRUE(o.out.find("GRPO steps") != std::string::npos ||
                (o.out.find("rejection sampling of") != std::string::npos && o.out.find("SFT on") != std::string::npos))
        << name << ": the plan is printed\n" << o.out;
    EXPECT_EQ(listing(copy_), before) << name << ": --check wrote into the project";
    EXPECT_FALSE(fs::exists(copy_ / "runs")) << name;
  }
  EXPECT_GE(recipes, 3);
}

// The language ablation (recipes/README.md) is r1-tiny itself without language consistency: the
// language reward's weight 0 wherever r1-tiny gives it one (it is still computed, so the
// language-mix rate is measured the same way), no `language` filter in rejection sampling, and its
// own run name: nothing else may drift apart.
TEST_F(TrainCheck, TheLanguageAblationIsR1TinyWithoutLanguageConsistency) {
  auto r1 = json::parse(read_file(copy_ / "recipes" / "r1-tiny.json"), "r1-tiny.json");
  const auto ablation = json::parse(read_file(copy_ / "recipes" / "r1-tiny-no-language.json"), "r1-tiny-no-language.json");
  int zeroed = 0, unfiltered = 0;
  auto zero_language = [&](rapidjson::Value& rewards) {
    for (auto& r : rewards.GetArray())
      if (std::string(r["kind"].GetString()) == "language_consistency") {
        EXPECT_GT(r["weight"].GetDouble(), 0.0);
        r["weight"].SetDouble(0.0);
        ++zeroed;
      }
  };
  zero_language(r1["rewards"]);
  for (auto& stage : r1["stages"].GetArray()) {
    if (stage.HasMember("rewards")) zero_language(stage["rewards"]);
    if (std::string(stage["kind"].GetString()) != "rejection_sample") continue;
    auto& filters = stage["filters"];
    for (auto it = filters.Begin(); it != filters.End();)
      if (std::string(it->GetString()) == "language") {
        it = filters.Erase(it);
        ++unfiltered;
      } else {
        ++it;
      }
  }
  EXPECT_EQ(zeroed, 2);      // the shared rewards and the all-scenario stage's
  EXPECT_EQ(unfiltered, 1);  // the rejection stage's filter of mixed-language chains of thought
  r1["name"].SetString("r1-tiny-no-language");
  EXPECT_EQ(json::to_string(r1), json::to_string(ablation));
}

// r1-tiny's cold start holds no problem about Mei (recipes/sft/make_cold_start.py): the tiny base
// reasons about Mei in Chinese, and English worked solutions for Mei in the cold start would
// remove the mixing before RL, leaving the language reward (and its ablation) nothing to show.
// Every other problem of the generator's 300 is there, in the readable format.
TEST_F(TrainCheck, TheR1TinyColdStartHoldsNoProblemAboutMei) {
  const std::string text = read_file(copy_ / "recipes" / "sft" / "r1-tiny-cold-start.jsonl");
  int records = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    ++records;
    const auto doc = json::parse(line, "r1-tiny-cold-start.jsonl");
    const auto& messages = doc["messages"];
    ASSERT_EQ(messages.Size(), 2u) << line;
    const std::string prompt = messages[0]["content"].GetString();
    EXPECT_EQ(prompt.find("Mei"), std::string::npos) << line;
    EXPECT_EQ(std::string(messages[1]["reasoning_content"].GetString()).find("Mei"), std::string::npos) << line;
  }
  EXPECT_EQ(records, 260);
}

TEST_F(TrainCheck, TheRealModelRecipeWithoutAModelNamesTheSetting) {
  const auto o = test::run_aha_in(copy_, "train recipes/r1-zero.json --check", true, 300);
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("PROBLEM  model: model.path models/Qwen2.5-1.5B holds no model"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("--set model.path=DIR"), std::string::npos) << o.out;
  // The data it ships were found all the same.
  EXPECT_NE(o.out.find("ok       data.train.0: data/gsm8k/train.jsonl: 7473 examples"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("ok       data.eval.math500: data/math500/test.jsonl: 500 examples"),
            std::string::npos)
      << o.out;
}

TEST_F(TrainCheck, EveryProblemIsListedAtOnce) {
  // A missing data file, an unknown reward option and a run directory holding someone's file:
  // one --check names all three, and leaves that file alone.
  const fs::path run_dir = work_ / "busy";
  fs::create_directories(run_dir);
  std::ofstream(run_dir / "notes.txt") << "mine";
  const auto o = test::run_aha_in(
      copy_,
      "train recipes/r1-zero-tiny.json --check --run-dir " + shell_quoted(run_dir.string()) +
          " --set 'data.train={\"path\": \"../data/nowhere.jsonl\", \"format\": \"gsm8k\"}'" +
          " --set 'rewards.0.options={\"no_such_option\": 1}'",
      true, 300);
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("PROBLEM  run directory:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("PROBLEM  data.train.0:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("nowhere.jsonl"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("PROBLEM  rewards:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("no_such_option"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("3 problem(s)"), std::string::npos) << o.out;
  EXPECT_EQ(read_file(run_dir / "notes.txt"), "mine");
  EXPECT_EQ(listing(run_dir).size(), 1u);
}

TEST_F(TrainCheck, ARecipeThatDoesNotParseIsAOneLineError) {
  const auto o = test::run_aha_in(copy_, "train recipes/r1-zero-tiny.json --check --set rewards.0.kind=no_such_reward",
                                  true, 300);
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("unknown kind 'no_such_reward'"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("math_accuracy"), std::string::npos) << "the known kinds are listed: " << o.out;
}

TEST_F(TrainCheck, AMemoryPlanThatCannotFitIsAProblem) {
  // 2^20 prompts x 64 completions x 4096 tokens of KV cache fit no machine.
  const auto o = test::run_aha_in(copy_,
                                  "train recipes/r1-zero-tiny.json --check --set rollout.prompts_per_step=1048576 "
                                  "--set rollout.group_size=64 --set rollout.max_new_tokens=4096",
                                  true, 300);
  EXPECT_EQ(o.exit_status, 1) << o.out;
  EXPECT_NE(o.out.find("PROBLEM  memory:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("lower rollout.prompts_per_batch"), std::string::npos) << o.out;
}

// The memory plan counts the recipe's sharding over the ranks the run would have
// (--nproc-per-node), and says so, with zero3's prefetch; one process shards nothing. zero3
// takes a reference model (beta > 0).
TEST_F(TrainCheck, TheMemoryPlanCountsTheShardingOverTheRanks) {
  const auto two = test::run_aha_in(
      copy_, "train recipes/r1-zero-tiny.json --check --nproc-per-node 2 --set parallel.sharding=zero3 --set algorithm.beta=0.04",
      true, 300);
  EXPECT_EQ(two.exit_status, 0) << two.out;
  EXPECT_NE(two.out.find("(zero3 over 2 ranks: the weights are the master range plus the rollout's whole copy, gathers "
                         "prefetched)"),
            std::string::npos)
      << two.out;
  // Its checkpoint peak beside the start-up one: the model streamed block by block.
  EXPECT_NE(two.out.find("; at a checkpoint "), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("gathered at once in float32 and a write buffer of 0.06 GiB beside the resident state, never "
                         "the whole float32 model)"),
            std::string::npos)
      << two.out;
  const auto unfetched = test::run_aha_in(
      copy_,
      "train recipes/r1-zero-tiny.json --check --nproc-per-node 2 --set parallel.sharding=zero3 --set parallel.prefetch=false",
      true, 300);
  EXPECT_EQ(unfetched.exit_status, 0) << unfetched.out;
  EXPECT_NE(unfetched.out.find("gathers not prefetched)"), std::string::npos) << unfetched.out;
  const auto one = test::run_aha_in(copy_, "train recipes/r1-zero-tiny.json --check --set parallel.sharding=zero3",
                                    true, 300);
  EXPECT_EQ(one.exit_status, 0) << one.out;
  EXPECT_EQ(one.out.find("over 2 ranks"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("ok       memory:"), std::string::npos) << one.out;
}

// parallel.expert_parallel: the tiny MoE base (4 experts) over 2 ranks is planned with half the
// routed experts per rank; 3 ranks do not divide its experts and a dense model has none, each a
// problem that says so.
TEST_F(TrainCheck, ExpertParallelNamesTheExpertsPerRankAndRefusesWhatCannotSplit) {
  const std::string moe =
      "train recipes/r1-zero-tiny.json --check --set model.build=base/tiny-moe-base.json "
      "--set model.path=runs/models/tiny-moe-base --set parallel.expert_parallel=true";
  const auto two = test::run_aha_in(copy_, moe + " --nproc-per-node 2", true, 300);
  EXPECT_EQ(two.exit_status, 0) << two.out;
  EXPECT_NE(two.out.find("ok       parallel.expert_parallel: 2 of 4 routed experts per rank over 2 ranks"),
            std::string::npos)
      << two.out;
  EXPECT_NE(two.out.find("(expert parallel over 2 ranks: 1/2 of the routed experts, plus the rollout's whole copy)"),
            std::string::npos)
      << two.out;
  // With zero3 the replicated parameters are fully sharded and each rank's experts stay whole.
  const auto zero3 = test::run_aha_in(copy_, moe + " --nproc-per-node 2 --set parallel.sharding=zero3", true, 300);
  EXPECT_EQ(zero3.exit_status, 0) << zero3.out;
  EXPECT_NE(zero3.out.find("(zero3 over 2 ranks: the weights are the master range of the replicated parameters, 1/2 of "
                           "the routed experts whole plus the rollout's whole copy"),
            std::string::npos)
      << zero3.out;
  const auto three = test::run_aha_in(copy_, moe + " --nproc-per-node 3", true, 300);
  EXPECT_EQ(three.exit_status, 1) << three.out;
  EXPECT_NE(three.out.find("4 routed experts cannot be split evenly over 3 ranks"), std::string::npos) << three.out;
  const auto dense = test::run_aha_in(
      copy_, "train recipes/r1-zero-tiny.json --check --nproc-per-node 2 --set parallel.expert_parallel=true", true, 300);
  EXPECT_EQ(dense.exit_status, 1) << dense.out;
  EXPECT_NE(dense.out.find("PROBLEM  parallel.expert_parallel: parallel.expert_parallel needs a mixture-of-experts model"),
            std::string::npos)
      << dense.out;
}

TEST_F(TrainCheck, NoRecipeReadsOutsideTheProject) {
  for (const auto& entry : fs::recursive_directory_iterator(copy_ / "recipes")) {
    if (entry.path().extension() != ".json") continue;
    const std::string text = read_file(entry.path());
    EXPECT_EQ(text.find("shared/"), std::string::npos) << entry.path() << " refers to the development machines' data";
  }
}

}  // namespace
}  // namespace aha
