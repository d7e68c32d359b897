// Data set specs as recipes write them: files by format, synthetic tasks, and bad specs.
#include "datasets/dataset_spec.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

#include "core/error.h"
#include "core/json.h"

namespace aha {
namespace {

using aha::test::error_of;

TEST(DatasetSpec, FileRelativeToTheBaseDirectory) {
  auto spec = parse_dataset_spec(R"({"path": "fixtures/gsm8k_small.jsonl", "format": "gsm8k", "limit": 2})", "spec");
  auto ex = load_dataset(spec, AHA_SOURCE_DIR "/tests/datasets");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].gold, "1234");
}

TEST(DatasetSpec, PlainWithMappedFieldsAndKind) {
  auto spec = parse_dataset_spec(R"({"path": ")" AHA_SOURCE_DIR
                                 R"(/tests/datasets/fixtures/mapped_small.jsonl", "format": "plain",
          "prompt_field": "question_text", "answer_field": "final", "kind": "custom", "every_nth": 2})",
                                 "spec");
  auto ex = load_dataset(spec, "/nonexistent");  // an absolute path ignores the base
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].prompt, "What is 2 + 2?");
  EXPECT_EQ(ex[0].gold, "4");
  EXPECT_EQ(ex[0].kind, TaskKind::custom);
}

TEST(DatasetSpec, SyntheticMatchesTheGenerator) {
  auto spec = parse_dataset_spec(
      R"({"synthetic": "countdown", "n": 5, "seed": 3, "difficulty": 1, "split": "heldout"})", "spec");
  auto ex = load_dataset(spec);
  auto direct = generate_countdown(5, 3, CountdownConfig::for_difficulty(1), Split::heldout);
  ASSERT_EQ(ex.size(), 5u);
  for (size_t i = 0; i < ex.size(); ++i) EXPECT_EQ(ex[i].prompt, direct[i].prompt);
  EXPECT_EQ(load_dataset(parse_dataset_spec(R"({"synthetic": "arithmetic", "n": 3, "seed": 0})", "s")).size(), 3u);
}

TEST(DatasetSpec, StepsOverrideKeepsTheDifficultysNumbers) {
  auto spec = parse_dataset_spec(
      R"({"synthetic": "arithmetic", "n": 40, "seed": 5, "difficulty": 2, "min_steps": 6, "max_steps": 8,
          "split": "heldout"})",
      "spec");
  ArithmeticConfig expected = ArithmeticConfig::for_difficulty(2);
  expected.min_steps = 6;
  expected.max_steps = 8;
  auto direct = generate_arithmetic(40, 5, expected, Split::heldout);
  auto ex = load_dataset(spec);
  ASSERT_EQ(ex.size(), 40u);
  for (size_t i = 0; i < ex.size(); ++i) {
    EXPECT_EQ(ex[i].prompt, direct[i].prompt);
    auto meta = json::parse(ex[i].metadata, "meta");
    const int64_t steps = meta["steps"].GetInt64();
    EXPECT_GE(steps, 6);
    EXPECT_LE(steps, 8);
  }
  // Either end alone: the other comes from the difficulty (2: 1..2 steps).
  auto deep_only = parse_dataset_spec(R"({"synthetic": "arithmetic", "n": 1, "seed": 1, "max_steps": 9})", "s");
  EXPECT_EQ(arithmetic_config(deep_only).min_steps, 1);
  EXPECT_EQ(arithmetic_config(deep_only).max_steps, 9);
  EXPECT_EQ(arithmetic_config(parse_dataset_spec(R"({"synthetic": "arithmetic", "n": 1, "seed": 1})", "s")).max_steps,
            2);
  for (const char* bad : {R"({"synthetic": "arithmetic", "n": 1, "seed": 1, "min_steps": 0})",
                          R"({"synthetic": "arithmetic", "n": 1, "seed": 1, "max_steps": 13})",
                          R"({"synthetic": "arithmetic", "n": 1, "seed": 1, "min_steps": 5, "max_steps": 4})",
                          R"({"synthetic": "arithmetic", "n": 1, "seed": 1, "min_steps": 3})"}) {
    auto e = error_of([&] { parse_dataset_spec(bad, "stage.data"); });
    EXPECT_NE(e.find("min_steps <= max_steps"), std::string::npos) << bad << ": " << e;
  }
  auto e = error_of([] { parse_dataset_spec(R"({"synthetic": "countdown", "n": 1, "seed": 1, "max_steps": 4})", "s"); });
  EXPECT_NE(e.find("arithmetic only"), std::string::npos) << e;
}

TEST(DatasetSpec, BadSpecsNameTheFieldAndTheChoices) {
  auto e = error_of([] { parse_dataset_spec(R"({"path": "a.jsonl", "synthetic": "countdown"})", "stage.data"); });
  EXPECT_NE(e.find("stage.data: give exactly one of 'path'"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"format": "gsm8k"})", "stage.data"); });
  EXPECT_NE(e.find("exactly one of"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"path": "a.jsonl", "format": "gsm8k", "lmit": 3})", "stage.data"); });
  EXPECT_NE(e.find("lmit"), std::string::npos) << e;
  EXPECT_NE(e.find("limit"), std::string::npos) << e;  // the known keys are listed
  e = error_of(
      [] { parse_dataset_spec(R"({"path": "a.jsonl", "format": "gsm8k", "prompt_field": "q"})", "stage.data"); });
  EXPECT_NE(e.find("prompt_field"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"path": "a.jsonl"})", "stage.data"); });
  EXPECT_NE(e.find("'format'"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"path": "a.jsonl", "format": "gsm8k", "limit": 0})", "stage.data"); });
  EXPECT_NE(e.find("'limit' must be at least 1"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"synthetic": "sudoku", "n": 1, "seed": 1})", "stage.data"); });
  EXPECT_NE(e.find("'synthetic' must be"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"synthetic": "countdown", "seed": 1})", "stage.data"); });
  EXPECT_NE(e.find("missing required field 'n'"), std::string::npos) << e;
  e = error_of(
      [] { parse_dataset_spec(R"({"synthetic": "countdown", "n": 1, "seed": 1, "difficulty": 7})", "stage.data"); });
  EXPECT_NE(e.find("'difficulty' must be 1..5"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"synthetic": "countdown", "n": 1, "seed": -1})", "stage.data"); });
  EXPECT_NE(e.find("'seed'"), std::string::npos) << e;
  e = error_of([] { parse_dataset_spec(R"({"synthetic": "countdown", "n": 1, "seed": 1, "path": 3})", "stage.data"); });
  EXPECT_NE(e.find("exactly one of"), std::string::npos) << e;
  e = error_of(
      [] { load_dataset(parse_dataset_spec(R"({"path": "missing.jsonl", "format": "math"})", "s"), "/tmp/nowhere"); });
  EXPECT_NE(e.find("/tmp/nowhere/missing.jsonl"), std::string::npos) << e;
}

}  // namespace
}  // namespace aha
