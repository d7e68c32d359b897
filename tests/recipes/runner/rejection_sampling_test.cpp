// Rejection sampling end to end in process, on a model whose answer is known (" \boxed{4}" to
// every prompt): what is kept and dropped is worked out by hand, and a run interrupted by an
// error after its first request resumes to the same output as an uninterrupted run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/text_lines.h"
#include "recipes/runner/rejection_sampling.h"
#include "recipes/runner/sampling.h"
#include "tests/recipes/runner/recipes_test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

std::vector<Example> prompts(int n) {
  std::vector<Example> out;
  for (int i = 0; i < n; ++i) {
    Example e;
    e.id = "q" + std::to_string(i);
    e.prompt = "What is " + std::to_string(i) + "?";
    e.gold = i % 2 == 0 ? "4" : "5";  // the model is right on q0, q2, q4
    e.source = "test";
    out.push_back(e);
  }
  return out;
}

std::vector<Example> five_prompts() { return prompts(5); }

RejectionSamplingOptions options() {
  RejectionSamplingOptions o;
  o.samples = 3;
  o.keep = 2;
  o.temperature = 1.0;
  o.max_new_tokens = 12;
  o.prompts_per_batch = 2;
  o.prompt_template = PromptTemplate::custom("{prompt}", {});
  o.eos_token_ids = {2};
  o.model = "chain";
  o.stage = "rejection";
  o.step = 7;
  enable_filters(o.filters, "correct,exact_dup", "test");
  return o;
}

class RejectionSampling : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = test::chain_model(test::ids_of(" \\boxed{4}"), 2).release(); }
  static void TearDownTestSuite() { delete model_; }
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_rejection_sampling_" + std::to_string(getpid()));
    remove_tree(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }
  static Transformer* model_;
  fs::path dir_;
};
Transformer* RejectionSampling::model_ = nullptr;

TEST_F(RejectionSampling, KeepsTheCorrectDistinctResponses) {
  RolloutEngine engine(*model_, {}, make_text_decoder(test::fixture_tokenizer()));
  const fs::path out = dir_ / "data.jsonl";
  auto stats = run_rejection_sampling(engine, test::fixture_tokenizer(), five_prompts(), options(), out,
                                      ResumableJsonl::Mode::fresh);
  // q0, q2, q4: three identical right answers, one kept, two exact duplicates. q1, q3: three wrong.
  EXPECT_EQ(stats.prompts, 5);
  EXPECT_EQ(stats.sampled, 15);
  EXPECT_EQ(stats.kept, 3);
  EXPECT_EQ(stats.prompts_without_kept, 2);
  EXPECT_EQ(stats.dropped, (std::map<std::string, int64_t>{{"correct", 6}, {"exact_dup", 6}}));
  std::vector<std::string> ids;
  for_each_nonblank_line(read_file(out), "out", [&](std::string_view line, size_t) {
    auto d = json::parse(line, "out");
    EXPECT_EQ(std::string(d["messages"][1]["content"].GetString()), " \\boxed{4}");
    EXPECT_EQ(std::string(d["messages"][1]["reasoning_content"].GetString()), "");
    const auto& p = d["provenance"];
    ids.push_back(p["prompt_id"].GetString());
    EXPECT_EQ(std::string(d["messages"][0]["content"].GetString()),
              "What is " + std::to_string(p["prompt_index"].GetInt()) + "?");
    EXPECT_EQ(std::string(p["model"].GetString()), "chain");
    EXPECT_EQ(std::string(p["stage"].GetString()), "rejection");
    EXPECT_EQ(p["step"].GetInt(), 7);
    EXPECT_EQ(p["sample_index"].GetInt(), 0);  // the first of three identical ones
    EXPECT_EQ(p["rewards"]["accuracy"].GetDouble(), 1.0);
    EXPECT_EQ(p["tokens"].GetInt(), static_cast<int>(test::ids_of(" \\boxed{4}").size()) + 1);  // + EOS
    EXPECT_EQ(std::string(p["finish_reason"].GetString()), "eos");
    return true;
  });
  EXPECT_EQ(ids, std::vector<std::string>({"q0", "q2", "q4"}));
  auto report = json::parse(read_file(stats_path(out)), "stats");
  EXPECT_EQ(report["kept"].GetInt(), 3);
  EXPECT_EQ(report["dropped"]["correct"].GetInt(), 6);
  EXPECT_EQ(report["kept_tokens"]["p50"].GetInt(), stats.p50_tokens);
  EXPECT_EQ(stats_path(out), dir_ / "data.stats.json");
  // Nothing is overwritten without being asked.
  EXPECT_THROW(run_rejection_sampling(engine, test::fixture_tokenizer(), five_prompts(), options(), out,
                                      ResumableJsonl::Mode::fresh),
               Error);
}

TEST_F(RejectionSampling, AnInterruptedRunResumesToTheSameOutput) {
  RolloutEngine engine(*model_, {}, make_text_decoder(test::fixture_tokenizer()));
  auto o = options();
  o.filters = {};
  enable_filters(o.filters, "exact_dup", "test");  // every prompt keeps one record
  o.prompts_per_batch = 1;  // requests of kRequestBatches = 8 prompts
  const auto eleven = prompts(11);
  const fs::path whole = dir_ / "whole.jsonl", cut = dir_ / "cut.jsonl";
  run_rejection_sampling(engine, test::fixture_tokenizer(), eleven, o, whole, ResumableJsonl::Mode::fresh);
  // Stop in the second request: the first request's eight prompts are done.
  EXPECT_THROW(run_rejection_sampling(engine, test::fixture_tokenizer(), eleven, o, cut, ResumableJsonl::Mode::fresh,
                                      [](int64_t finished, int64_t, int64_t) {
                                        if (finished > 8 * 3) throw Error("stop");
                                      }),
               Error);
  const std::string partial = read_file(cut);
  EXPECT_EQ(std::count(partial.begin(), partial.end(), '\n'), 8);
  EXPECT_FALSE(fs::exists(stats_path(cut)));
  auto different = o;
  different.keep = 1;
  EXPECT_THROW(run_rejection_sampling(engine, test::fixture_tokenizer(), eleven, different, cut,
                                      ResumableJsonl::Mode::resume),
               Error);
  auto stats = run_rejection_sampling(engine, test::fixture_tokenizer(), eleven, o, cut, ResumableJsonl::Mode::resume);
  EXPECT_EQ(read_file(cut), read_file(whole));
  EXPECT_EQ(stats.sampled, 33);  // counts carried over the interruption
  EXPECT_EQ(stats.kept, 11);
  EXPECT_EQ(stats.dropped.at("exact_dup"), 22);
}

}  // namespace
}  // namespace aha::recipes
