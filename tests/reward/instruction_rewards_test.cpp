// The verifiable instruction rewards (max_words, include_keywords, json_keys, lowercase) on
// hand-worked replies, the adversarial ones first: an empty reply, an answer hidden in the
// reasoning, JSON in a code fence or with text around it, a keyword inside another word,
// upper case outside ASCII.
#include <gtest/gtest.h>

#include "core/error.h"
#include "reward/instruction_text.h"
#include "reward/reward_registry.h"

namespace aha::reward {
namespace {

double score(const std::string& kind, const std::string& options, const std::string& completion) {
  RewardSpec spec;
  spec.name = spec.kind = kind;
  spec.options_json = options;
  return create_reward(spec)->score(RewardExample{}, Completion{completion, -1}).value;
}

std::string error_of(const std::string& kind, const std::string& options) {
  RewardSpec spec;
  spec.name = spec.kind = kind;
  spec.options_json = options;
  try {
    create_reward(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(InstructionText, FinalAnswerIsAfterTheReasoning) {
  EXPECT_EQ(final_answer_text("<think>long thought</think>\n<answer> 42 </answer>\n", false), "42");
  EXPECT_EQ(final_answer_text("just the answer", false), "just the answer");
  EXPECT_EQ(final_answer_text("<think>never closed", false), "");
  EXPECT_EQ(final_answer_text("still thinking", true), "");  // the prompt opened <think>
  EXPECT_EQ(final_answer_text("thought</think>done", true), "done");
  EXPECT_EQ(final_answer_text("a</think>b</think>c", false), "c");  // after the last one
  EXPECT_EQ(final_answer_text("", false), "");
}

TEST(InstructionText, CountsWordsAsIfEvalDoes) {
  EXPECT_EQ(count_words(""), 0);
  EXPECT_EQ(count_words("  ...  !!! "), 0);
  EXPECT_EQ(count_words("Hello, world!"), 2);
  EXPECT_EQ(count_words("don't stop"), 3);         // \w+: don, t, stop
  EXPECT_EQ(count_words("state-of-the-art"), 4);
  EXPECT_EQ(count_words("café au lait"), 3);       // é is a letter, not a separator
  EXPECT_EQ(count_words("答案是四"), 4);           // each Han character is a word
  EXPECT_EQ(count_words("x\xe2\x80\x94y"), 2);     // an em dash separates
}

TEST(InstructionText, LowerCasesBeyondAscii) {
  EXPECT_EQ(lowercase_utf8("ÉCOLE Straße ΣΟΦΙΑ МОСКВА Ａ"), "école straße σοφια москва ａ");
  EXPECT_EQ(lowercase_utf8("İ Ÿ Ł"), "i ÿ ł");
  EXPECT_EQ(lowercase_utf8("\xff" "A"), "\xff" "a");  // invalid bytes kept as they are
}

TEST(MaxWordsReward, CountsOnlyTheFinalAnswer) {
  const std::string three = R"({"max_words": 3})";
  EXPECT_EQ(score("max_words", three, "one two three"), 1.0);
  EXPECT_EQ(score("max_words", three, "one two three four"), 0.0);
  // A long reasoning does not count against the answer ...
  EXPECT_EQ(score("max_words", three, "<think>a b c d e f g h</think><answer>yes it is</answer>"), 1.0);
  // ... and an answer hidden in an unfinished reasoning is no answer.
  EXPECT_EQ(score("max_words", three, "<think>yes"), 0.0);
  EXPECT_EQ(score("max_words", three, ""), 0.0);  // silence is not a short answer
  EXPECT_EQ(score("max_words", three, "   \n"), 0.0);
  EXPECT_EQ(score("max_words", three, "!!! ... ???"), 0.0);
  EXPECT_NE(error_of("max_words", "{}").find("max_words"), std::string::npos);
  EXPECT_NE(error_of("max_words", R"({"max_words": 0})").find("at least 1"), std::string::npos);
}

TEST(IncludeKeywordsReward, NeedsWholeWords) {
  const std::string cat = R"({"keywords": ["cat"]})";
  EXPECT_EQ(score("include_keywords", cat, "The cat sat."), 1.0);
  EXPECT_EQ(score("include_keywords", cat, "A category of concatenation."), 0.0);  // a substring is not the word
  EXPECT_EQ(score("include_keywords", cat, "(cat)"), 1.0);
  EXPECT_EQ(score("include_keywords", cat, "cats"), 0.0);
  EXPECT_EQ(score("include_keywords", cat, "CAT"), 1.0);
  EXPECT_EQ(score("include_keywords", R"({"keywords": ["cat"], "case_sensitive": true})", "CAT"), 0.0);
  EXPECT_EQ(score("include_keywords", cat, "<think>cat</think>dog"), 0.0);  // only the answer counts
  EXPECT_EQ(score("include_keywords", cat, ""), 0.0);
  // Unicode case: the keyword and the reply are folded alike.
  EXPECT_EQ(score("include_keywords", R"({"keywords": ["École"]})", "ÉCOLE normale"), 1.0);
  EXPECT_EQ(score("include_keywords", R"({"keywords": ["École"]})", "écoles"), 0.0);
  EXPECT_EQ(score("include_keywords", R"({"keywords": ["σοφια"]})", "ΣΟΦΙΑ"), 1.0);
  // Chinese has no spaces: a Han keyword needs no boundary.
  EXPECT_EQ(score("include_keywords", R"({"keywords": ["答案"]})", "最后的答案是四"), 1.0);
  const std::string two = R"({"keywords": ["red", "blue"]})";
  EXPECT_EQ(score("include_keywords", two, "red and green"), 0.0);
  EXPECT_EQ(score("include_keywords", R"({"keywords": ["red", "blue"], "partial_credit": true})", "red and green"),
            0.5);
  EXPECT_EQ(score("include_keywords", two, "blue, red"), 1.0);
  EXPECT_NE(error_of("include_keywords", R"({"keywords": []})").find("must not be empty"), std::string::npos);
  EXPECT_NE(error_of("include_keywords", R"({"keywords": "cat"})").find("array of strings"), std::string::npos);
  EXPECT_NE(error_of("include_keywords", R"({"keywords": ["a"], "x": 1})").find("x"), std::string::npos);
}

TEST(JsonKeysReward, ParsesTheWholeAnswer) {
  const std::string k = R"({"keys": ["answer"]})";
  EXPECT_EQ(score("json_keys", k, R"({"answer": 4})"), 1.0);
  EXPECT_EQ(score("json_keys", k, R"(<think>hmm</think>{"answer": "4", "why": [1, 2]})"), 1.0);
  EXPECT_EQ(score("json_keys", k, R"({"result": 4})"), 0.0);
  EXPECT_EQ(score("json_keys", k, R"({"data": {"answer": 4}})"), 0.0);  // top level only
  EXPECT_EQ(score("json_keys", k, R"(["answer"])"), 0.0);              // not an object
  EXPECT_EQ(score("json_keys", k, R"({'answer': 4})"), 0.0);           // not JSON
  EXPECT_EQ(score("json_keys", k, R"(Sure! {"answer": 4})"), 0.0);     // text before
  EXPECT_EQ(score("json_keys", k, R"({"answer": 4} Hope this helps)"), 0.0);  // text after
  EXPECT_EQ(score("json_keys", k, R"({"answer": 4}{"answer": 5})"), 0.0);
  EXPECT_EQ(score("json_keys", k, ""), 0.0);
  // A code fence around the whole answer is how chat models reply with JSON.
  EXPECT_EQ(score("json_keys", k, "```json\n{\"answer\": 4}\n```"), 1.0);
  EXPECT_EQ(score("json_keys", k, "```\n{\"answer\": 4}\n```"), 1.0);
  EXPECT_EQ(score("json_keys", k, "Here:\n```json\n{\"answer\": 4}\n```"), 0.0);
  EXPECT_EQ(score("json_keys", k, "```python\n{\"answer\": 4}\n```"), 0.0);
  EXPECT_EQ(score("json_keys", k, "```json\n{\"answer\": 4}\n```\n```json\n{}\n```"), 0.0);
  EXPECT_EQ(score("json_keys", R"({"keys": ["answer"], "allow_code_fence": false})",
                  "```json\n{\"answer\": 4}\n```"),
            0.0);
  // Deep nesting is parsed iteratively: a score, not a stack overflow.
  EXPECT_EQ(score("json_keys", "{}", "{\"a\": " + std::string(200000, '[') + std::string(200000, ']') + "}"), 1.0);
  EXPECT_EQ(score("json_keys", "{}", std::string(200000, '[')), 0.0);
  EXPECT_NE(error_of("json_keys", R"({"keys": [1]})").find("strings"), std::string::npos);
}

TEST(LowercaseReward, RefusesAnyUpperCase) {
  EXPECT_EQ(score("lowercase", "{}", "all lower case, 42 times."), 1.0);
  EXPECT_EQ(score("lowercase", "{}", "<think>Thinking In Caps</think>fine here"), 1.0);
  EXPECT_EQ(score("lowercase", "{}", "Not this"), 0.0);
  EXPECT_EQ(score("lowercase", "{}", "école ÉCOLE"), 0.0);
  EXPECT_EQ(score("lowercase", "{}", "σοφία Σ"), 0.0);
  EXPECT_EQ(score("lowercase", "{}", "ｆｕｌｌ Ａ"), 0.0);  // fullwidth capital
  EXPECT_EQ(score("lowercase", "{}", "ｆｕｌｌｗｉｄｔｈ"), 1.0);
  EXPECT_EQ(score("lowercase", "{}", "答案"), 1.0);  // no case, but letters
  EXPECT_EQ(score("lowercase", "{}", ""), 0.0);
  EXPECT_EQ(score("lowercase", "{}", "42 + 7 = 49"), 0.0);  // no letter at all
  EXPECT_EQ(score("lowercase", "{}", "<think>unfinished"), 0.0);
}

}  // namespace
}  // namespace aha::reward
