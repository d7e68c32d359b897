// The JSON Lines sample format of `aha reward score`: reading, defaults, errors, write-back.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json.h"
#include "reward/scored_jsonl.h"

namespace aha::reward {
namespace {

TEST(ScoredJsonl, ReadsSamples) {
  auto math = scoring_input_from_json_line(
      R"({"completion": "\\boxed{4}", "gold": "#### 4", "num_tokens": 7})", "l1");
  EXPECT_EQ(math.completion.text, "\\boxed{4}");
  EXPECT_EQ(math.example.gold, "#### 4");
  EXPECT_EQ(math.example.task, TaskKind::math);
  EXPECT_EQ(math.completion.num_tokens, 7);
  auto code = scoring_input_from_json_line(
      R"({"completion": "c", "gold": "", "tests": ["assert f(1) == 2", "assert f(2) == 3"],
          "test_imports": ["import math"], "metadata": {"source": "mbpp"}})",
      "l2");
  EXPECT_EQ(code.example.task, TaskKind::code);
  EXPECT_EQ(code.example.tests.size(), 2u);
  EXPECT_EQ(code.example.test_setup, "import math\n");
  EXPECT_EQ(code.example.metadata_json, "{\"source\":\"mbpp\"}");
  auto humaneval = scoring_input_from_json_line(
      R"({"completion": "c", "gold": "", "task": "code", "tests": "def check(candidate): pass", "entry_point": "f"})",
      "l3");
  ASSERT_EQ(humaneval.example.tests.size(), 1u);
  EXPECT_EQ(humaneval.example.entry_point, "f");
}

TEST(ScoredJsonl, NamesTheLineAndFieldAtFault) {
  auto message = [](const char* line) {
    try {
      scoring_input_from_json_line(line, "in.jsonl line 3");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message(R"({"gold": "1"})").find("in.jsonl line 3: missing required field 'completion'"),
            std::string::npos);
  EXPECT_NE(message(R"({"completion": "x", "gold": "1", "task": "poetry"})").find("task must be"),
            std::string::npos);
  EXPECT_NE(message(R"({"completion": "x", "gold": "1", "tests": 3})").find("'tests'"), std::string::npos);
  EXPECT_NE(message("{nope").find("in.jsonl line 3: invalid JSON"), std::string::npos);
}

TEST(ScoredJsonl, WritesScoresBesideTheInput) {
  ScoredSample s;
  s.total = 1.5;
  s.components = {{"math_accuracy", 1.0}, {"format", 1.0}};
  s.diagnostics = {{"math_accuracy", "answer '4' gold '4'"}};
  auto line = scored_json_line(R"({"completion": "x", "gold": "4", "id": 17, "reward": -1})", s);
  auto doc = json::parse(line, "out");
  EXPECT_EQ(doc["id"].GetInt(), 17);
  EXPECT_EQ(doc["reward"].GetDouble(), 1.5);
  EXPECT_EQ(doc["components"]["format"].GetDouble(), 1.0);
  EXPECT_STREQ(doc["diagnostics"]["math_accuracy"].GetString(), "answer '4' gold '4'");
}

}  // namespace
}  // namespace aha::reward
