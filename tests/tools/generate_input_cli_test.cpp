// `aha generate --input` as one continuous-batching request: every prompt's samples appear once,
// prompt-major, and do not depend on --batch (the prompts decoding at once); the first prompt's
// samples are the ones `--prompt-ids` gives for it alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "core/files.h"
#include "core/json.h"
#include "core/text_lines.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using aha::test::shell_quoted;

constexpr int kTimeout = 300;

std::string q(const fs::path& p) { return shell_quoted(p.string()); }

struct Line {
  int64_t prompt_index = 0, sample_index = 0;
  std::vector<int64_t> tokens;
  std::vector<double> logprobs;
  std::string finish_reason;
};

std::vector<Line> read_lines(const std::string& text) {
  std::vector<Line> lines;
  aha::for_each_nonblank_line(text, "output", [&](std::string_view line, size_t) {
    auto d = aha::json::parse(line, "output");
    Line l;
    l.prompt_index = d["prompt_index"].GetInt64();
    l.sample_index = d["sample_index"].GetInt64();
    for (const auto& t : d["tokens"].GetArray()) l.tokens.push_back(t.GetInt64());
    for (const auto& p : d["logprobs"].GetArray()) l.logprobs.push_back(p.GetDouble());
    l.finish_reason = d["finish_reason"].GetString();
    lines.push_back(std::move(l));
    return true;
  });
  return lines;
}

class GenerateInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_generate_input_" + std::to_string(::getpid()));
    aha::remove_tree(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { aha::remove_tree(dir_); }
  fs::path dir_;
};

TEST_F(GenerateInput, OneRequestWhateverTheBatch) {
  const fs::path model = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied";
  const std::vector<std::string> prompts = {"1,17,99,4,200", "1,3,3,3,250,9,8,7,6", "1", "9,8", "1,100,101,102,103",
                                            "77,66,55", "5,6,7,8,9,10,11,12,13,14"};
  std::string jsonl;
  for (const auto& p : prompts) jsonl += "{\"prompt_ids\": [" + p + "]}\n";
  aha::write_file_atomic(dir_ / "prompts.jsonl", jsonl);
  const std::string common = "generate --device cpu --model " + q(model) +
                             " -n 3 --max-new-tokens 12 --temperature 0.9 --seed 4 --eos-ids 124,22,200";
  std::vector<std::vector<Line>> runs;
  for (int batch : {1, 2, 64}) {
    const fs::path out = dir_ / ("out" + std::to_string(batch) + ".jsonl");
    auto outcome = aha::test::run_aha(common + " --input " + q(dir_ / "prompts.jsonl") + " --output " + q(out) +
                                          " --batch " + std::to_string(batch),
                                      true, kTimeout);
    ASSERT_EQ(outcome.exit_status, 0) << outcome.out;
    runs.push_back(read_lines(aha::read_file(out)));
  }
  const auto& whole = runs.back();
  ASSERT_EQ(whole.size(), prompts.size() * 3);
  bool early = false, full = false;
  for (size_t k = 0; k < whole.size(); ++k) {
    EXPECT_EQ(whole[k].prompt_index, static_cast<int64_t>(k / 3));
    EXPECT_EQ(whole[k].sample_index, static_cast<int64_t>(k % 3));
    early = early || whole[k].finish_reason == "eos";
    full = full || whole[k].finish_reason == "length";
  }
  EXPECT_TRUE(early && full) << "the comparison needs completions of different lengths";
  for (size_t r = 0; r + 1 < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), whole.size()) << "run " << r;
    for (size_t k = 0; k < whole.size(); ++k) {
      EXPECT_EQ(runs[r][k].prompt_index, whole[k].prompt_index);
      EXPECT_EQ(runs[r][k].sample_index, whole[k].sample_index);
      EXPECT_EQ(runs[r][k].tokens, whole[k].tokens) << "run " << r << " completion " << k;
      EXPECT_EQ(runs[r][k].finish_reason, whole[k].finish_reason) << "run " << r << " completion " << k;
      ASSERT_EQ(runs[r][k].logprobs.size(), whole[k].logprobs.size());
      for (size_t t = 0; t < whole[k].logprobs.size(); ++t)
        EXPECT_NEAR(runs[r][k].logprobs[t], whole[k].logprobs[t], 2e-5) << "run " << r << " completion " << k;
    }
  }
  // The first prompt alone (prompt index 0 there too) gives its samples in the file.
  auto alone = aha::test::run_aha(common + " --prompt-ids " + prompts[0], false, kTimeout);
  ASSERT_EQ(alone.exit_status, 0) << alone.out;
  for (int j = 0; j < 3; ++j) {
    std::string ids;
    for (size_t t = 0; t < whole[j].tokens.size(); ++t) ids += (t ? "," : "") + std::to_string(whole[j].tokens[t]);
    EXPECT_NE(alone.out.find("\n" + ids + "\n"), std::string::npos) << "sample " << j << ": " << ids << "\n" << alone.out;
  }
}

// Per-line "max_new_tokens" (one limit for the prompt, or one per sample): each completion ends
// at its own limit with finish_reason "length", and its tokens are the first ones the same
// sample has without the limit (a limit truncates; it does not change what is sampled).
TEST_F(GenerateInput, PerLineTokenLimitsEndEachCompletionThere) {
  const fs::path model = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied";
  const std::string common = "generate --device cpu --model " + q(model) +
                             " -n 3 --max-new-tokens 10 --temperature 0.9 --seed 2 --ignore-eos --batch 2";
  aha::write_file_atomic(dir_ / "free.jsonl", "{\"prompt_ids\": [1,17,99]}\n{\"prompt_ids\": [5,6]}\n{\"prompt_ids\": [9]}\n");
  aha::write_file_atomic(dir_ / "limited.jsonl",
                         "{\"prompt_ids\": [1,17,99], \"max_new_tokens\": [3, 10, 1]}\n"
                         "{\"prompt_ids\": [5,6], \"max_new_tokens\": 4}\n"
                         "{\"prompt_ids\": [9]}\n");
  auto free = aha::test::run_aha(common + " --input " + q(dir_ / "free.jsonl") + " --output " + q(dir_ / "free.out"), true, kTimeout);
  ASSERT_EQ(free.exit_status, 0) << free.out;
  auto limited = aha::test::run_aha(common + " --input " + q(dir_ / "limited.jsonl") + " --output " + q(dir_ / "limited.out"),
                                    true, kTimeout);
  ASSERT_EQ(limited.exit_status, 0) << limited.out;
  const auto whole = read_lines(aha::read_file(dir_ / "free.out"));
  const auto cut = read_lines(aha::read_file(dir_ / "limited.out"));
  const std::vector<size_t> expected = {3, 10, 1, 4, 4, 4, 10, 10, 10};  // the third line: --max-new-tokens
  ASSERT_EQ(whole.size(), expected.size());
  ASSERT_EQ(cut.size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    ASSERT_EQ(whole[k].tokens.size(), 10u) << "completion " << k;
    ASSERT_EQ(cut[k].tokens.size(), expected[k]) << "completion " << k;
    EXPECT_EQ(cut[k].finish_reason, "length") << "completion " << k;
    EXPECT_EQ(cut[k].tokens, std::vector<int64_t>(whole[k].tokens.begin(), whole[k].tokens.begin() + expected[k]))
        << "completion " << k;
  }
  // Bad limits are named with their line, before the model loads, and no output is written.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"prompt_ids\": [1], \"max_new_tokens\": [2, 3]}", "line 1: max_new_tokens has 2 values"},
      {"{\"prompt_ids\": [1], \"max_new_tokens\": 11}", "line 1: max_new_tokens 11 is outside [1, --max-new-tokens 10]"},
      {"{\"prompt_ids\": [1]}\n{\"prompt_ids\": [1], \"max_new_tokens\": 0}", "line 2: max_new_tokens 0 is outside"},
      {"{\"prompt_ids\": [1], \"max_new_tokens\": []}", "line 1: max_new_tokens is an empty list"},
      {"{\"prompt_ids\": [1], \"max_new_tokens\": \"5\"}", "max_new_tokens"}};
  for (const auto& [line, message] : bad) {
    aha::write_file_atomic(dir_ / "bad.jsonl", line + "\n");
    auto outcome = aha::test::run_aha("generate --device cpu --model " + q(dir_ / "no-such-model") +
                                          " -n 3 --max-new-tokens 10 --input " + q(dir_ / "bad.jsonl") + " --output " +
                                          q(dir_ / "bad.out"),
                                      true, kTimeout);
    EXPECT_NE(outcome.exit_status, 0) << line;
    EXPECT_NE(outcome.out.find(message), std::string::npos) << line << "\n" << outcome.out;
    EXPECT_FALSE(fs::exists(dir_ / "bad.out")) << line;
  }
}

}  // namespace
