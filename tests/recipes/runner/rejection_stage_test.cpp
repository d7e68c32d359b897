// The rejection_sample stage kind in a multi-stage recipe: its keys checked before any work
// (errors naming the stage), and a run on a model whose answer is known (" \boxed{4}") that
// exports exactly the prompts it answers right, records the stage and its output, and is not
// redone on --resume.
#include <gtest/gtest.h>

#include <set>

#include "core/files.h"
#include "core/json.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "recipes/runner/stage_graph.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

std::string recipe(const std::string& stage_keys) {
  return R"({"name": "rejection-test", "model": {"path": "MODEL", "device": "cpu"}, "template": "{prompt}",
    "rewards": [{"name": "accuracy", "kind": "math_accuracy"}],
    "data": {"train": {"path": "prompts.jsonl", "format": "plain"}},
    "stages": [{"name": "rejection", "kind": "rejection_sample")" +
         stage_keys + "}]}";
}

std::string check_error(const std::string& stage_keys) {
  return test::error_of([&] { check_stages(parse_staged_recipe(recipe(stage_keys), "r.json")); });
}

TEST(RejectionStage, KeysAreCheckedBeforeAnyWork) {
  EXPECT_EQ(check_error(R"(, "samples": 2, "filters": ["correct", "near_dup"])"), "");
  EXPECT_NE(check_error(R"(, "filters": ["correct", "typo"])").find("stage 'rejection' (rejection_sample): 'filters'"),
            std::string::npos);
  EXPECT_NE(check_error(R"(, "sample": 2)").find("sample"), std::string::npos);
  EXPECT_NE(check_error(R"(, "keep": 0)").find("keep must be at least 1"), std::string::npos);
  // The format filter needs a format reward, which this recipe does not have.
  EXPECT_NE(check_error(R"(, "filters": ["format"])").find("'format'"), std::string::npos);
  EXPECT_NE(check_error(R"(, "data": "prompts.jsonl")").find("data set spec object"), std::string::npos);
  EXPECT_NE(check_error(R"(, "data": "@other")").find("\"@other\" names no stage"), std::string::npos);
}

class RejectionStageRun : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    work_ = fs::temp_directory_path() / ("aha_rejection_stage_" + std::to_string(getpid()));
    remove_tree(work_);
    fs::create_directories(work_);
    auto model = test::chain_model(test::ids_of(" \\boxed{4}"), 2);
    save_model(*model, work_ / "checkpoints" / "step-5" / "model", {.copy_extras_from = test::tokenizer_dir()});
    std::string data;
    for (int i = 0; i < 6; ++i)
      data += "{\"id\": \"p" + std::to_string(i) + "\", \"prompt\": \"Q" + std::to_string(i) + "\", \"answer\": \"" +
              (i % 3 == 0 ? "4" : "7") + "\"}\n";
    write_file_atomic(work_ / "prompts.jsonl", data);
  }
  void TearDown() override { remove_tree(work_); }
  StagedRecipe staged() {
    return parse_staged_recipe(recipe(R"(, "samples": 2, "keep": 1, "filters": ["correct", "exact_dup"],
                                         "max_new_tokens": 12, "prompts_per_batch": 4, "temperature": 1.0)"),
                               work_ / "r.json",
                               {"model.path=" + (work_ / "checkpoints" / "step-5" / "model").string()});
  }
  RunOptions options(bool resume) {
    RunOptions o;
    o.run_dir = work_ / "run";
    o.progress = false;
    o.resume = resume;
    return o;
  }
  fs::path work_;
};

TEST_F(RejectionStageRun, ExportsTheRightAnswersOnce) {
  auto summary = run_staged(staged(), options(false));
  ASSERT_TRUE(summary.finished);
  const fs::path out = work_ / "run" / "exports" / "rejection.jsonl";
  std::vector<std::string> ids;
  for (const auto& line : test::read_nonempty_lines(out)) {
    auto d = json::parse(line, "export");
    ids.push_back(d["provenance"]["prompt_id"].GetString());
    EXPECT_EQ(std::string(d["provenance"]["stage"].GetString()), "rejection");
    EXPECT_EQ(d["provenance"]["step"].GetInt(), 5);  // the checkpoint's step
  }
  EXPECT_EQ(ids, std::vector<std::string>({"p0", "p3"}));  // gold 4: p0 and p3
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  auto stages = store.stages();
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].kind, "rejection_sample");
  EXPECT_EQ(stages[0].status, "done");
  auto kept = store.metric_series(stages[0].id, "rejection/kept");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].value, 2.0);
  EXPECT_EQ(store.metric_series(stages[0].id, "rejection/dropped/correct")[0].value, 8.0);
  // A finished stage is not redone: its export is left exactly as it was.
  const std::string before = read_file(out);
  const auto mtime = fs::last_write_time(out);
  run_staged(staged(), options(true));
  EXPECT_EQ(read_file(out), before);
  EXPECT_EQ(fs::last_write_time(out), mtime);
}

TEST_F(RejectionStageRun, ADistillStageTrainsAStudentOnTheExport) {
  // rejection (the teacher's right answers, layout field) -> distill (SFT of the student on them).
  auto r = parse_staged_recipe(
      recipe(R"(, "samples": 2, "keep": 1, "filters": ["correct", "exact_dup"], "max_new_tokens": 12,
               "temperature": 1.0},
               {"name": "student", "kind": "distill", "model": "@base", "data": "@rejection", "template": "chatml",
                "max_length": 64, "batch_tokens": 128, "epochs": 2, "lr": 0.001)"),
      work_ / "r.json", {"model.path=" + (work_ / "checkpoints" / "step-5" / "model").string()});
  auto summary = run_staged(r, options(false));
  ASSERT_TRUE(summary.finished);
  ASSERT_EQ(summary.stages.size(), 2u);
  EXPECT_TRUE(fs::exists(summary.stages[1].output / "config.json")) << summary.stages[1].output;
  // The export holds the answer alone as content, as the SFT renderer reads it.
  for (const auto& line : test::read_nonempty_lines(work_ / "run" / "exports" / "rejection.jsonl"))
    EXPECT_EQ(std::string(json::parse(line, "export")["messages"][1]["content"].GetString()), " \\boxed{4}");
  RunStore store(work_ / "run" / "run.db", {.read_only = true});
  auto stages = store.stages();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[1].name, "student");
  EXPECT_EQ(stages[1].kind, "distill");
  EXPECT_EQ(stages[1].status, "done");
  auto records = store.metric_series(stages[1].id, "data/records");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, 2.0);  // p0 and p3
}

}  // namespace
}  // namespace aha::recipes
