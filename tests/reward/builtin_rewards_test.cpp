// The built-in rewards (math_accuracy, format, language_consistency by script, length) on hand-worked
// completions, and their option checking.
#include <gtest/gtest.h>

#include "core/error.h"
#include "reward/math_answer.h"
#include "reward/reward_registry.h"

namespace aha::reward {
namespace {

RewardOutput score_with(const std::string& kind, const std::string& options, const std::string& completion,
                        const std::string& gold = "", int64_t tokens = -1) {
  RewardSpec spec;
  spec.name = spec.kind = kind;
  spec.options_json = options;
  RewardExample example;
  example.gold = gold;
  return create_reward(spec)->score(example, Completion{completion, tokens});
}

TEST(MathAnswer, ExtractsTheFinalAnswer) {
  EXPECT_EQ(extract_final_answer("so \\boxed{\\frac{1}{2}} wait \\boxed{\\frac{\\sqrt{3}}{2}}."),
            "\\frac{\\sqrt{3}}{2}");
  EXPECT_EQ(extract_final_answer("\\fbox{7}"), "7");
  EXPECT_EQ(extract_final_answer("\\boxed 5"), "5");
  EXPECT_EQ(extract_final_answer("\\boxed{\\{1, 2\\}}"), "\\{1, 2\\}");
  EXPECT_EQ(extract_final_answer("<think>\\boxed{3}</think><answer>4</answer>"), "4");
  EXPECT_EQ(extract_final_answer("<answer>so \\boxed{4} it is</answer>"), "4");
  EXPECT_EQ(extract_final_answer("\\boxed{}"), "");
  EXPECT_EQ(extract_final_answer("\\boxed{3"), std::nullopt);
  EXPECT_EQ(extract_final_answer("The answer is 3."), std::nullopt);
  EXPECT_EQ(extract_gold_answer("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), "72");
  EXPECT_EQ(extract_gold_answer("So it is $\\boxed{\\frac{1}{4}}$."), "\\frac{1}{4}");
  EXPECT_EQ(extract_gold_answer(" 12 "), "12");
}

TEST(MathAccuracyReward, ScoresFinalAnswers) {
  EXPECT_EQ(score_with("math_accuracy", "{}", "<think>2+2</think><answer>\\boxed{4}</answer>", "4").value,
            1.0);
  EXPECT_EQ(score_with("math_accuracy", "{}", "It is \\boxed{4.0}", "#### 4").value, 1.0);
  EXPECT_EQ(score_with("math_accuracy", "{}", "It is \\boxed{5}", "#### 4").value, 0.0);
  EXPECT_EQ(score_with("math_accuracy", "{}", "It is \\boxed{}", "4").value, 0.0);
  EXPECT_EQ(score_with("math_accuracy", "{}", "It is 4", "4").value, 0.0);
  EXPECT_EQ(score_with("math_accuracy", "{}", "\\boxed{4} or \\boxed{1, 4}", "4").value, 0.0);
  auto out = score_with("math_accuracy", "{}", "\\boxed{\\dfrac12}", "the answer is $\\boxed{0.5}$");
  EXPECT_EQ(out.value, 1.0);
  EXPECT_EQ(out.diagnostic, "answer '\\dfrac12' gold '0.5'");
  EXPECT_EQ(score_with("math_accuracy", "{\"require_answer_tag\": true}", "\\boxed{4}", "4").value, 0.0);
  EXPECT_EQ(score_with("math_accuracy", "{\"require_answer_tag\": true}", "<answer>4</answer>", "4").value,
            1.0);
}

TEST(FormatReward, AcceptsOnlyTheR1ZeroStructure) {
  EXPECT_EQ(score_with("format", "{}", "<think>reason</think>\n<answer>4</answer>\n").value, 1.0);
  EXPECT_EQ(score_with("format", "{}", "<think>a</think><answer>4</answer> extra").value, 0.0);
  EXPECT_EQ(score_with("format", "{}", "<think>a</think><answer>4</answer><answer>5</answer>").value, 0.0);
  EXPECT_EQ(score_with("format", "{}", "<think>a</think><think>b</think><answer>4</answer>").value, 0.0);
  EXPECT_EQ(score_with("format", "{}", "<answer>4</answer><think>a</think>").value, 0.0);
  EXPECT_EQ(score_with("format", "{}", "<think>a</think> words <answer>4</answer>").value, 0.0);
  EXPECT_EQ(score_with("format", "{}", "<think>a</think><answer> </answer>").value, 0.0);
  EXPECT_EQ(score_with("format", "{}", "preface <think>a</think><answer>4</answer>").value, 0.0);
  // The prompt ended in <think>.
  EXPECT_EQ(score_with("format", "{\"think_in_prompt\": true}", "reason</think><answer>4</answer>").value,
            1.0);
  EXPECT_EQ(score_with("format", "{}", "reason</think><answer>4</answer>").value, 0.0);
  // Partial credit: a quarter per property.
  auto partial =
      score_with("format", "{\"partial_credit\": true}", "<think>a</think><answer>4</answer> extra");
  EXPECT_DOUBLE_EQ(partial.value, 0.75);
  EXPECT_EQ(partial.components.at("nothing_after"), 0.0);
  EXPECT_EQ(partial.components.at("think"), 1.0);
  EXPECT_DOUBLE_EQ(score_with("format", "{\"partial_credit\": true}", "just text").value, 0.0);
  EXPECT_DOUBLE_EQ(score_with("format", "{\"partial_credit\": true}", "<think>a</think>").value, 0.25);
}

TEST(LanguageConsistencyReward, CountsWordsByScript) {
  const std::string kScript = R"({"identifier": "script"})";
  // 4 English words; "x" and \frac are not words.
  EXPECT_DOUBLE_EQ(
      score_with("language_consistency", kScript, "<think>so we add x \\frac{1}{2} here</think>").value, 1.0);
  // 2 English words + 4 Han characters.
  std::string mixed = "<think>first \u6211\u4eec\u8ba1\u7b97 then</think><answer>4</answer>";
  EXPECT_DOUBLE_EQ(score_with("language_consistency", kScript, mixed).value, 2.0 / 6.0);
  EXPECT_DOUBLE_EQ(score_with("language_consistency", R"({"identifier": "script", "language": "zh"})", mixed).value, 4.0 / 6.0);
  // Only the reasoning counts in scope "think"; everything in scope "completion".
  std::string answer_words = "<think>alpha beta</think><answer>\u7b54\u6848</answer>";
  EXPECT_DOUBLE_EQ(score_with("language_consistency", kScript, answer_words).value, 1.0);
  EXPECT_DOUBLE_EQ(score_with("language_consistency", R"({"identifier": "script", "scope": "completion"})", answer_words).value,
                   0.5);
  // Cyrillic words count against English; no words at all scores 0.
  EXPECT_DOUBLE_EQ(score_with("language_consistency", kScript, "one \u0434\u0432\u0430").value, 0.5);
  EXPECT_DOUBLE_EQ(score_with("language_consistency", kScript, "<think>1 + 2 = 3</think>").value, 0.0);
  // The script path knows only en and zh; other languages need CLD2
  // (tests/reward/language_identifier_test.cpp).
  EXPECT_THROW(score_with("language_consistency", R"({"language": "fr", "identifier": "script"})", "x"), Error);
}

TEST(LengthReward, IsDapoOverlongPenalty) {
  const std::string options = "{\"max_length\": 100, \"buffer\": 20}";
  EXPECT_DOUBLE_EQ(score_with("length", options, "", "", 50).value, 0.0);
  EXPECT_DOUBLE_EQ(score_with("length", options, "", "", 80).value, 0.0);
  EXPECT_DOUBLE_EQ(score_with("length", options, "", "", 85).value, -0.25);
  EXPECT_DOUBLE_EQ(score_with("length", options, "", "", 100).value, -1.0);
  EXPECT_DOUBLE_EQ(score_with("length", options, "", "", 101).value, -1.0);
  EXPECT_THROW(score_with("length", options, "text"), Error);  // token count unknown
  // Characters are code points: 90 of them (each "\u00e9" is two bytes).
  std::string text;
  for (int i = 0; i < 90; ++i) text += "\u00e9";
  EXPECT_DOUBLE_EQ(
      score_with("length", "{\"max_length\": 100, \"buffer\": 20, \"unit\": \"characters\"}", text).value,
      -0.5);
}

TEST(MathAccuracyReward, LenientExtractionFindsUnformattedAnswers) {
  const std::string lenient = "{\"extraction\": \"lenient\"}";
  // Strict (the default) needs a box or a tag; lenient also reads prose, math and numbers.
  EXPECT_EQ(score_with("math_accuracy", "{}", "The final answer is $\\frac{3}{4}$.", "0.75").value, 0.0);
  EXPECT_EQ(score_with("math_accuracy", lenient, "The final answer is $\\frac{3}{4}$.", "0.75").value, 1.0);
  EXPECT_EQ(score_with("math_accuracy", lenient, "Adding up gives 1,250 apples", "1250").value, 1.0);
  EXPECT_EQ(score_with("math_accuracy", lenient, "Adding up gives 1,251 apples", "1250").value, 0.0);
  // The gold may be a whole worked solution: its last box, else its last math.
  EXPECT_EQ(score_with("math_accuracy", lenient, "so $x = 6$", "We solve $2x = 12$, so $x = \\boxed{6}$.").value,
            1.0);
  EXPECT_EQ(score_with("math_accuracy", lenient, "it is 6", "We solve $2x = 12$ and get $6$.").value, 1.0);
  // A box is still preferred to prose before it; a final-answer phrase after it wins.
  EXPECT_EQ(score_with("math_accuracy", lenient, "\\boxed{5} then 6", "5").value, 1.0);
  EXPECT_EQ(score_with("math_accuracy", lenient, "\\boxed{5}. Final answer: 6", "6").value, 1.0);
  auto none = score_with("math_accuracy", lenient, "no idea", "6");
  EXPECT_EQ(none.value, 0.0);
  EXPECT_NE(none.diagnostic.find("no final answer"), std::string::npos) << none.diagnostic;
  // relative_precision: 0 accepts only exact decimals.
  EXPECT_EQ(score_with("math_accuracy", "{}", "\\boxed{0.1428571}", "\\frac{1}{7}").value, 1.0);
  EXPECT_EQ(score_with("math_accuracy", "{\"relative_precision\": 0}", "\\boxed{0.1428571}", "\\frac{1}{7}").value,
            0.0);
  EXPECT_EQ(score_with("math_accuracy", "{\"relative_precision\": 0.01}", "\\boxed{0.143}", "\\frac{1}{7}").value,
            1.0);
}

TEST(MathAccuracyReward, RefusesBadOptionsNamingThem) {
  for (const char* bad : {"{\"extraction\": \"loose\"}", "{\"extraction\": 1}", "{\"relative_precision\": -1}",
                          "{\"relative_precision\": 1}", "{\"relative_precision\": \"1e-6\"}", "{\"precision\": 6}"}) {
    try {
      score_with("math_accuracy", bad, "\\boxed{1}", "1");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_TRUE(message.find("extraction") != std::string::npos || message.find("precision") != std::string::npos)
          << bad << ": " << message;
    }
  }
}

TEST(RewardOptions, AreChecked) {
  try {
    score_with("format", "{\"partial\": true}", "x");
    FAIL() << "unknown option accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'partial'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("partial_credit, think_in_prompt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(score_with("length", "{\"max_length\": 100}", "x"), Error);
  EXPECT_THROW(score_with("length", "{\"max_length\": 10, \"buffer\": 20}", "x"), Error);
  EXPECT_THROW(score_with("length", "{\"max_length\": 100, \"buffer\": 20, \"unit\": \"bytes\"}", "x"),
               Error);
  EXPECT_THROW(score_with("format", "{\"partial_credit\": 1}", "x"), Error);
}

}  // namespace
}  // namespace aha::reward
