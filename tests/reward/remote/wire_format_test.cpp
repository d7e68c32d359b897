// The wire format: items and results read back as they were written (numbers bit for bit),
// requests with faults are errors naming the field and item, and spec comparison.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/json.h"
#include "reward/remote/wire_format.h"
#include "reward/reward_registry.h"
#include "reward/scored_jsonl.h"

namespace aha::reward::remote {
namespace {

std::string message_of(std::string_view body) {
  try {
    parse_score_request(body);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(WireFormat, ItemsReadBackAsWritten) {
  ScoringInput code;
  code.example.prompt = "def f(x):\n";
  code.example.task = TaskKind::code;
  code.example.tests = {"assert f(1) == 2", "assert f(2) == 3"};
  code.example.test_setup = "import math\nfrom os import path\n";
  code.example.entry_point = "f";
  code.example.metadata_json = R"({"source":"mbpp","level":3})";
  code.completion.text = "    return x + 1\n\u00e9";
  code.completion.num_tokens = 12;
  ScoringInput math;
  math.example.gold = "#### 4";
  math.completion.text = "\\boxed{4}";
  ScoringInput custom = math;
  custom.example.task = TaskKind::custom;  // no tests: the task must still read back as custom
  const std::vector<ScoringInput> items{code, math, custom};
  const auto request = parse_score_request(score_request_json(parse_reward_specs("math_accuracy"), items, 0, 3));
  ASSERT_TRUE(request.has_rewards);
  ASSERT_EQ(request.items.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const auto &a = items[i], &b = request.items[i];
    EXPECT_EQ(a.example.prompt, b.example.prompt);
    EXPECT_EQ(a.example.gold, b.example.gold);
    EXPECT_EQ(a.example.task, b.example.task);
    EXPECT_EQ(a.example.tests, b.example.tests);
    EXPECT_EQ(a.example.test_setup, b.example.test_setup);
    EXPECT_EQ(a.example.entry_point, b.example.entry_point);
    EXPECT_EQ(a.example.metadata_json, b.example.metadata_json);
    EXPECT_EQ(a.completion.text, b.completion.text);
    EXPECT_EQ(a.completion.num_tokens, b.completion.num_tokens);
  }
  // A range of the batch: items [1, 3).
  EXPECT_EQ(parse_score_request(score_request_json(parse_reward_specs("format"), items, 1, 3)).items.size(), 2u);
}

TEST(WireFormat, AnAhaRewardScoreLineIsAnItem) {
  const std::string line = R"({"completion": "c", "gold": "", "tests": ["assert f(1) == 2"], "test_imports": ["import math"]})";
  const auto from_line = scoring_input_from_json_line(line, "line");
  const auto from_request = parse_score_request("{\"items\": [" + line + "]}").items.at(0);
  EXPECT_EQ(from_line.example.task, TaskKind::code);
  EXPECT_EQ(from_request.example.task, TaskKind::code);
  EXPECT_EQ(from_request.example.test_setup, "import math\n");
  EXPECT_FALSE(parse_score_request("{\"items\": [" + line + "]}").has_rewards);
}

TEST(WireFormat, ResultsReadBackBitForBit) {
  ScoredSample s;
  s.total = 0.1 + 0.2;  // 0.30000000000000004
  s.components = {{"acc", 1.0 / 3.0}, {"acc.sub", -2.5e-17}, {"nan", std::nan("")}};
  s.diagnostics = {{"acc", "extracted \"4\""}};
  s.errors = {{"code", "timed out after 10 s"}};
  const auto back = parse_score_reply(score_reply_json({s, ScoredSample{}}), 2, "reply");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].total, 0.1 + 0.2);
  EXPECT_EQ(back[0].components.at("acc"), 1.0 / 3.0);
  EXPECT_EQ(back[0].components.at("acc.sub"), -2.5e-17);
  EXPECT_TRUE(std::isnan(back[0].components.at("nan")));
  EXPECT_EQ(back[0].diagnostics, s.diagnostics);
  EXPECT_EQ(back[0].errors, s.errors);
  EXPECT_EQ(back[1].total, 0.0);
  EXPECT_THROW(parse_score_reply(score_reply_json({s}), 2, "reply"), Error);  // one result short
}

TEST(WireFormat, RequestFaultsNameTheFieldAndItem) {
  EXPECT_NE(message_of("{\"items\": [").find("the request body"), std::string::npos);
  EXPECT_NE(message_of("[]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(message_of("{}").find("'items'"), std::string::npos);
  EXPECT_NE(message_of(R"({"items": {}})").find("'items' must be a list"), std::string::npos);
  EXPECT_NE(message_of(R"({"items": [], "extra": 1})").find("extra"), std::string::npos);
  const std::string missing = message_of(R"({"items": [{"completion": "a", "gold": "1"}, {"completion": "b"}]})");
  EXPECT_NE(missing.find("items[1]"), std::string::npos) << missing;
  EXPECT_NE(missing.find("gold"), std::string::npos) << missing;
  const std::string wrong_type = message_of(R"({"items": [{"completion": 3, "gold": "1"}]})");
  EXPECT_NE(wrong_type.find("items[0]"), std::string::npos) << wrong_type;
  EXPECT_NE(wrong_type.find("completion"), std::string::npos) << wrong_type;
  const std::string bad_task = message_of(R"({"items": [{"completion": "a", "gold": "1", "task": "poetry"}]})");
  EXPECT_NE(bad_task.find("items[0]"), std::string::npos) << bad_task;
  EXPECT_NE(message_of(R"({"items": [], "rewards": [{"kind": "format"}]})").find("rewards"), std::string::npos);
}

TEST(WireFormat, SpecDifferenceSaysWhatDiffers) {
  const auto a = parse_reward_specs("math_accuracy:1,format:0.5");
  EXPECT_EQ(spec_difference(a, parse_reward_specs("math_accuracy:1,format:0.5")), "");
  EXPECT_EQ(spec_difference(a, parse_health(health_json(a, 4, 2), "health")), "");  // through the wire
  EXPECT_NE(spec_difference(a, parse_reward_specs("math_accuracy")).find("[math_accuracy, format] here"), std::string::npos);
  EXPECT_NE(spec_difference(a, parse_reward_specs("math_accuracy:1,format:1")).find("weight 0.5 here, 1 there"),
            std::string::npos);
  auto options = a;
  options[0].options_json = R"({"require_answer_tag": true})";
  EXPECT_NE(spec_difference(options, a).find("options"), std::string::npos);
}

}  // namespace
}  // namespace aha::reward::remote
