// SFT: conversations tokenized with exactly the assistant tokens trained (hand-worked with
// the fixture tokenizer), tokenizer merges across a span boundary refused, over-long examples
// refused or dropped and counted; the SFT stage in a multi-stage recipe: it learns, records
// its metrics, and a run stopped mid-stage and resumed gives the same losses as one that never
// stopped, then hands its model to a GRPO stage.
#include "recipes/runner/sft_stage.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/files.h"
#include "core/run_store.h"
#include "policy/learner/checkpoint.h"
#include "policy/model/model_io.h"
#include "recipes/runner/sft_data.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

std::vector<int64_t> encode(const std::string& text) {
  auto ids = test::fixture_tokenizer().encode(text, false);
  return {ids.begin(), ids.end()};
}

TEST(SftTokenize, OnlyAssistantTokensAreTrained) {
  ChatExample ex{{{"user", "What is 2+3?", ""}, {"assistant", "It is 5.", ""}, {"user", "And 2+4?", ""},
                  {"assistant", "6", ""}},
                 "d.jsonl:1"};
  const auto rendering = ChatRenderer("chatml").render(ex);
  const auto seq = tokenize_conversation(test::fixture_tokenizer(), rendering, ex.where);
  // The whole: the text encoded in one go (no piece boundary changed a token).
  EXPECT_EQ(seq.ids, encode(rendering.text()));
  // The trained tokens, in order: each assistant content and its <|im_end|> (id 2).
  std::vector<int64_t> trained, expected = encode("It is 5.");
  expected.push_back(2);
  for (int64_t id : encode("6")) expected.push_back(id);
  expected.push_back(2);
  for (size_t i = 0; i < seq.ids.size(); ++i)
    if (seq.trained[i]) trained.push_back(seq.ids[i]);
  EXPECT_EQ(trained, expected);
  // The first trained token comes right after "<|im_start|>assistant\n".
  const auto prompt = encode("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n");
  ASSERT_GT(seq.trained.size(), prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) EXPECT_EQ(seq.trained[i], 0) << i;
  EXPECT_EQ(seq.trained[prompt.size()], 1);
}

TEST(SftTokenize, AMergeAcrossASpanBoundaryIsAnError) {
  ChatRendering r;
  r.pieces = {{"Say th", false}, {"e", true}};  // the fixture's merges make " th" + "e" one token " the"
  const auto part = encode("Say th"), whole = encode("Say the");
  ASSERT_FALSE(whole.size() >= part.size() && std::equal(part.begin(), part.end(), whole.begin()))
      << "precondition: the fixture tokenizer merges \" the\"";
  try {
    tokenize_conversation(test::fixture_tokenizer(), r, "d.jsonl:4");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl:4: the tokenizer merges tokens across the boundary"),
              std::string::npos)
        << e.what();
  }
}

class SftStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    work_ = fs::path(AHA_BINARY_DIR) /
            ("sft-stage-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    remove_tree(work_);
    fs::create_directories(work_);
    auto model = init_model(test::tiny_config(), 3);
    save_model(*model, work_ / "model", {.copy_extras_from = test::tokenizer_dir()});
    std::ofstream data(work_ / "chat.jsonl");
    for (int i = 0; i < 12; ++i)
      data << R"({"messages": [{"role": "user", "content": "What is )" << i << " + " << i
           << R"(?"}, {"role": "assistant", "content": "The answer is )" << 2 * i << R"(."}]})" << "\n";
    data << R"({"prompt": "Say a long thing.", "completion": ")" << std::string(400, 'z') << "\"}\n";
  }
  void TearDown() override { remove_tree(work_); }

  StagedRecipe recipe(const std::string& sft_keys, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> o{"model.path=" + (work_ / "model").string()};
    o.insert(o.end(), extra.begin(), extra.end());
    return parse_staged_recipe(R"({
      "name": "sft-test",
      "model": {"path": "set-below", "device": "cpu"},
      "template": "chatml",
      "data": {"train": {"synthetic": "arithmetic", "n": 20, "seed": 1, "difficulty": 1},
               "eval": {"arith": {"synthetic": "arithmetic", "n": 3, "seed": 2, "difficulty": 1, "split": "heldout"}}},
      "rewards": [{"name": "accuracy", "kind": "math_accuracy"}],
      "rollout": {"prompts_per_step": 2, "group_size": 2, "max_new_tokens": 4},
      "algorithm": {"lr": 0.01},
      "schedule": {"steps": 1, "seed": 5},
      "eval": {"max_new_tokens": 3},
      "stages": [{"name": "cold_start", "kind": "sft", "data": "chat.jsonl", )" + sft_keys + R"(},
                 {"name": "rl", "kind": "grpo", "model": "@cold_start"}]})",
                               work_ / "recipe.json", o);
  }
  RunOptions options(const std::string& run, int64_t stop_after = 0, bool resume = false) {
    RunOptions o;
    o.run_dir = work_ / run;
    o.progress = false;
    o.stop_after_steps = stop_after;
    o.resume = resume;
    return o;
  }
  std::vector<double> series(const std::string& run, const std::string& name) {
    RunStore store(work_ / run / "run.db", {.read_only = true});
    std::vector<double> values;
    for (const auto& p : store.metric_series(store.stages().at(0).id, name)) values.push_back(p.value);
    return values;
  }
  fs::path work_;
};

const char* kKeys = R"("max_length": 64, "on_bad_example": "drop", "batch_tokens": 128, "epochs": 3,
                       "lr": 0.003, "warmup_steps": 1, "heldout_fraction": 0.2, "seed": 3)";

TEST_F(SftStageTest, OverLongExamplesAreErrorsOrDroppedAndCounted) {
  auto strict = recipe(R"("max_length": 64)");
  try {
    run_staged(strict, options("strict"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chat.jsonl:13: the example has"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("more than max_length 64"), std::string::npos) << e.what();
  }
  run_staged(recipe(kKeys), options("drop", 1));
  EXPECT_EQ(series("drop", "data/records"), std::vector<double>{13});
  EXPECT_EQ(series("drop", "data/dropped/too_long"), std::vector<double>{1});
  const double train = series("drop", "data/examples").at(0), heldout = series("drop", "data/heldout_examples").at(0);
  EXPECT_EQ(train + heldout, 12);
  EXPECT_GT(heldout, 0);
}

TEST_F(SftStageTest, LearnsStopsResumesExactlyAndFeedsTheNextStage) {
  auto straight = run_staged(recipe(kKeys), options("straight"));
  ASSERT_TRUE(straight.finished);
  EXPECT_EQ(straight.stages[0].status, "done");
  EXPECT_EQ(straight.stages[1].status, "done");
  const auto loss = series("straight", "sft/loss");
  ASSERT_GE(loss.size(), 6u);  // 3 epochs of >= 2 steps: 128-token steps of 64-token rows
  EXPECT_LT(loss.back(), loss.front());
  const auto heldout = series("straight", "eval/heldout_loss");
  ASSERT_GE(heldout.size(), 2u);  // before and after
  EXPECT_LT(heldout.back(), heldout.front());
  EXPECT_EQ(series("straight", "eval/accuracy").size(), 1u);  // generation eval at the end
  const auto lr = series("straight", "sft/lr");
  EXPECT_LT(lr.front(), lr.at(1));  // warm-up, then cosine decay
  EXPECT_LT(lr.back(), lr.at(1));
  EXPECT_TRUE(fs::exists(straight.stages[0].output / "tokenizer.json"));
  EXPECT_EQ(straight.stages[0].output.parent_path().parent_path(), work_ / "straight" / "checkpoints" / "cold_start");

  auto first = run_staged(recipe(kKeys), options("resumed", 2));
  EXPECT_FALSE(first.finished);
  EXPECT_EQ(first.stages[0].status, "stopped");
  auto second = run_staged(recipe(kKeys), options("resumed", 0, true));
  EXPECT_TRUE(second.finished);
  EXPECT_EQ(series("resumed", "sft/loss"), loss);
  auto a = load_model(straight.stages[0].output), b = load_model(second.stages[0].output);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
}

// A bf16 model with algorithm.fp32_master_weights: the SFT stage keeps float32 masters too (its
// checkpoints carry them, so a stop and resume equals the straight run), and the GRPO stage after
// it trains the bf16 policy the same way.
TEST_F(SftStageTest, Bf16WithFloat32MastersResumesExactlyThroughBothStages) {
  const std::vector<std::string> masters = {"model.dtype=bfloat16", "algorithm.fp32_master_weights=true"};
  auto straight = run_staged(recipe(kKeys, masters), options("straight"));
  ASSERT_TRUE(straight.finished);
  EXPECT_EQ(straight.stages[1].status, "done");
  const auto loss = series("straight", "sft/loss");
  ASSERT_GE(loss.size(), 6u);
  EXPECT_LT(loss.back(), loss.front());
  auto first = run_staged(recipe(kKeys, masters), options("resumed", 2));
  EXPECT_FALSE(first.finished);
  const auto saved = policy::latest_checkpoint(work_ / "resumed" / "checkpoints" / "cold_start");
  ASSERT_TRUE(saved.has_value());
  torch::serialize::InputArchive archive;
  archive.load_from((*saved / "optimizer.pt").string());
  torch::Tensor count;
  ASSERT_TRUE(archive.try_read("aha_master_count", count)) << "the SFT checkpoint holds no float32 masters";
  EXPECT_GT(count.item<int64_t>(), 0);
  auto second = run_staged(recipe(kKeys, masters), options("resumed", 0, true));
  EXPECT_TRUE(second.finished);
  EXPECT_EQ(series("resumed", "sft/loss"), loss);
  auto a = load_model(straight.stages[0].output), b = load_model(second.stages[0].output);
  EXPECT_EQ(a->named_parameters()[0].second.scalar_type(), torch::kBFloat16);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
}

TEST_F(SftStageTest, BadKeysAreNamedBeforeAnyWork) {
  EXPECT_THROW(check_stages(recipe(R"("epochs": 0)")), Error);
  try {
    check_stages(recipe(R"("epoch": 2)"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage 'cold_start' (sft)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("epoch"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_stages(recipe(R"("on_bad_example": "skip")")), Error);
  EXPECT_THROW(check_stages(recipe(R"("max_length": 64, "row_tokens": 32)")), Error);
  // A bad shared algorithm.fp32_master_weights, which the SFT stage reads too, is named at the first
  // stage, before any work.
  try {
    check_stages(recipe(kKeys, {"model.dtype=bfloat16", "algorithm.fp32_master_weights=\"yes\""}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stage 'cold_start' (sft)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'fp32_master_weights' must be true or false"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(work_ / "run"));
}

}  // namespace
}  // namespace aha::recipes
