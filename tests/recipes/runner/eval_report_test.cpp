// recipes/eval_report.h: report.json and samples.jsonl read back, the directory appearing
// whole or not at all, and no overwriting.
#include "recipes/runner/eval_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

EvalResult hand_result() {
  EvalRecord a;
  a.id = "a";
  a.prompt = "2+2?";
  a.gold = "4";
  a.completions = {"<answer>4</answer>", "bad \xff byte"};
  a.answers = {"4", std::nullopt};
  a.correct = {true, false};
  a.well_formed = {false, false};
  a.response_tokens = {5, 7};
  a.finish_reasons = {FinishReason::kStop, FinishReason::kLength};
  a.verifier_errors = {"", "timeout after 10 s"};
  a.majority_answer = "4";
  a.majority_correct = true;
  EvalResult r;
  DatasetEval d;
  d.name = "tiny";
  d.records = {a};
  d.summary.examples = 1;
  d.summary.samples = 2;
  d.summary.pass_at_1 = 0.5;
  d.summary.maj_at_k = 1;
  d.summary.max_response_tokens = 7;
  r.datasets = {d};
  r.overall = d.summary;
  r.seconds = 1.5;
  return r;
}

class EvalReport : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("aha_eval_report_test_" + std::to_string(getpid()));
    remove_tree(root_);
  }
  void TearDown() override { remove_tree(root_); }
  fs::path root_;
};

TEST_F(EvalReport, WritesReportAndSamplesThatReadBack) {
  EvalOptions options;
  options.samples = 2;
  options.temperature = 0.6;
  options.seed = 9;
  const fs::path dir = root_ / "exports" / "eval-x";
  write_eval_report(dir, hand_result(), options, {"models/m", {"data/t.jsonl"}, "2026-11-23T20:00:00Z"});

  auto report = json::parse(read_file(dir / "report.json"), "report.json");
  EXPECT_STREQ(report["model"].GetString(), "models/m");
  EXPECT_EQ(report["options"]["samples"].GetInt(), 2);
  EXPECT_EQ(report["options"]["seed"].GetInt(), 9);
  EXPECT_STREQ(report["options"]["template"].GetString(), "r1_zero");
  EXPECT_TRUE(report["options"]["require_answer_tag"].GetBool());
  EXPECT_DOUBLE_EQ(report["overall"]["pass_at_1"].GetDouble(), 0.5);
  EXPECT_DOUBLE_EQ(report["overall"]["maj_at_k"].GetDouble(), 1.0);
  EXPECT_TRUE(report["overall"]["format_rate"].IsNull());
  ASSERT_EQ(report["datasets"].Size(), 1u);
  EXPECT_STREQ(report["datasets"][0]["name"].GetString(), "tiny");
  EXPECT_STREQ(report["datasets"][0]["source"].GetString(), "data/t.jsonl");
  EXPECT_EQ(report["datasets"][0]["summary"]["max_response_tokens"].GetInt(), 7);

  auto lines = test::read_nonempty_lines(dir / "samples.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  auto line = json::parse(lines[0], "samples.jsonl");
  EXPECT_STREQ(line["dataset"].GetString(), "tiny");
  EXPECT_STREQ(line["gold"].GetString(), "4");
  EXPECT_STREQ(line["majority_answer"].GetString(), "4");
  EXPECT_TRUE(line["majority_correct"].GetBool());
  const auto& samples = line["samples"];
  ASSERT_EQ(samples.Size(), 2u);
  EXPECT_STREQ(samples[0]["answer"].GetString(), "4");
  EXPECT_TRUE(samples[0]["correct"].GetBool());
  EXPECT_FALSE(samples[0].HasMember("verifier_error"));
  EXPECT_TRUE(samples[1]["answer"].IsNull());
  EXPECT_STREQ(samples[1]["text"].GetString(), "bad \xEF\xBF\xBD byte");  // U+FFFD
  EXPECT_STREQ(samples[1]["finish_reason"].GetString(), "length");
  EXPECT_EQ(samples[1]["tokens"].GetInt(), 7);
  EXPECT_STREQ(samples[1]["verifier_error"].GetString(), "timeout after 10 s");

  // Nothing else beside it: the temporary directory was renamed.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.parent_path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(EvalReport, NeverOverwritesAndLeavesNothingHalfWritten) {
  const fs::path dir = root_ / "eval-x";
  write_eval_report(dir, hand_result(), EvalOptions(), {"m", {}, ""});
  const std::string before = read_file(dir / "report.json");
  auto error = test::error_of([&] { write_eval_report(dir, EvalResult(), EvalOptions(), {"other", {}, ""}); });
  EXPECT_NE(error.find("already exists"), std::string::npos) << error;
  EXPECT_EQ(read_file(dir / "report.json"), before);

  // A parent that is a file: an error naming it, and no directory.
  write_file_atomic(root_ / "plain_file", "x");
  error = test::error_of([&] { write_eval_report(root_ / "plain_file" / "eval-y", hand_result(), {}, {}); });
  EXPECT_NE(error.find("plain_file"), std::string::npos) << error;
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_)) ++entries;
  EXPECT_EQ(entries, 2u);  // eval-x and plain_file
}

}  // namespace
}  // namespace aha::recipes
