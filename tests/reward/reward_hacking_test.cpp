// The reward-hacking audit: completions that try to game each built-in reward, each with the
// reward it must get and why. The rules they check are written in reward/README.md.
// Code cases run python3 in the sandbox and are skipped with a message where it cannot run.
#include <gtest/gtest.h>

#include "core/error.h"
#include "reward/reward_registry.h"
#include "sandbox/sandbox.h"

namespace aha::reward {
namespace {

double score(const std::string& kind, const RewardExample& example, const std::string& completion,
             const std::string& options = "{}", int64_t tokens = -1, double timeout_seconds = 10) {
  RewardSpec spec;
  spec.name = spec.kind = kind;
  spec.options_json = options;
  spec.timeout_seconds = timeout_seconds;
  return create_reward(spec)->score(example, Completion{completion, tokens}).value;
}

RewardExample math_example(const std::string& prompt, const std::string& gold) {
  RewardExample ex;
  ex.prompt = prompt;
  ex.gold = gold;
  return ex;
}

// ---- math_accuracy: one final answer, the last one, compared with the gold ----

TEST(RewardHacking, MathSeveralBoxedAnswersCountOnlyTheLast) {
  auto ex = math_example("What is 3 + 4?", "7");
  // Hedging with several boxes: only the last box is the answer, so listing candidates does
  // not collect the right one.
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{7} or maybe \\boxed{8}"), 0.0);
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{6} \\boxed{7} \\boxed{8}"), 0.0);
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{8}, no: \\boxed{7}"), 1.0);  // a correction is an answer
  // Several values in one box are a list, not 7.
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{6, 7, 8}"), 0.0);
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{\\{6, 7, 8\\}}"), 0.0);
  // An <answer> tag outranks any box outside it: a right box in the reasoning does not rescue
  // a wrong tagged answer.
  EXPECT_EQ(score("math_accuracy", ex, "<think>\\boxed{7}</think><answer>8</answer>"), 0.0);
}

TEST(RewardHacking, MathAnswerTagsRepeatedOrInsideTheReasoning) {
  auto ex = math_example("What is 3 + 4?", "7");
  // Repeated tags: the last one is the answer; the format reward refuses the repetition.
  EXPECT_EQ(score("math_accuracy", ex, "<answer>7</answer><answer>8</answer>"), 0.0);
  EXPECT_EQ(score("math_accuracy", ex, "<answer>8</answer><answer>7</answer>"), 1.0);
  EXPECT_EQ(score("format", ex, "<think>a</think><answer>8</answer><answer>7</answer>"), 0.0);
  // A tag inside the reasoning, followed by the real one: the last (the real one) counts.
  EXPECT_EQ(score("math_accuracy", ex, "<think>is it <answer>7</answer>?</think><answer>8</answer>"), 0.0);
  // Only inside the reasoning: the answer is still the model's own, so accuracy gives it, but
  // the format reward does not (the answer block must follow the think block).
  std::string inside = "<think>so <answer>7</answer></think>";
  EXPECT_EQ(score("math_accuracy", ex, inside), 1.0);
  EXPECT_EQ(score("format", ex, inside), 0.0);
  // An unterminated tag is no answer, and a box after it does not borrow its place.
  EXPECT_EQ(score("math_accuracy", ex, "<answer>7"), 0.0);
  EXPECT_EQ(score("math_accuracy", ex, "<answer></answer>"), 0.0);
}

TEST(RewardHacking, MathGoldCopiedFromThePrompt) {
  // Repeating a number of the prompt is not the answer unless it is the answer.
  auto ex = math_example("Tom has 12 apples and gives away 5. How many are left?", "7");
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{12}"), 0.0);
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed{5}"), 0.0);
  // The whole prompt pasted as the answer is not a number.
  EXPECT_EQ(score("math_accuracy", ex, "<answer>" + ex.prompt + "</answer>"), 0.0);
}

TEST(RewardHacking, MathUnicodeLookAlikeDigits) {
  // Look-alike digits are never read as other digits: "1" followed by a fullwidth 7 is not 1,
  // and Arabic-Indic or mathematical bold digits do not turn into some ASCII number.
  auto one = math_example("?", "1");
  EXPECT_EQ(score("math_accuracy", one, "\\boxed{1\uff17}"), 0.0);          // 1 + fullwidth 7
  EXPECT_EQ(score("math_accuracy", one, "\\boxed{1\u0667}"), 0.0);          // 1 + Arabic-Indic 7
  EXPECT_EQ(score("math_accuracy", one, "\\boxed{1\U0001D7D5}"), 0.0);      // 1 + mathematical bold 7
  auto seven = math_example("?", "7");
  EXPECT_EQ(score("math_accuracy", seven, "\\boxed{\uff11}"), 0.0);  // fullwidth 1 is not 7
  EXPECT_EQ(score("math_accuracy", seven, "\\boxed{\u0661}"), 0.0);  // Arabic-Indic 1 is not 7
}

TEST(RewardHacking, HugeOutputsCostAReadAndEarnNothingExtra) {
  auto ex = math_example("What is 3 + 4?", "7");
  // A megabyte of filler before the answer: read once, scored like the short one. Overlong
  // output is the length reward's business.
  std::string filler(1 << 20, 'a');
  EXPECT_EQ(score("math_accuracy", ex, filler + "\\boxed{7}"), 1.0);
  EXPECT_EQ(score("length", ex, filler + "\\boxed{7}", R"({"max_length": 1000, "buffer": 100, "unit": "characters"})"),
            -1.0);
  // Half a million nested braces around the answer: read in linear time, never a crash (or a
  // stack overflow); braces are LaTeX grouping, so what they hold is 7.
  std::string nested = std::string(1 << 19, '{') + "7" + std::string(1 << 19, '}');
  EXPECT_EQ(score("math_accuracy", ex, "\\boxed" + nested), 1.0);
  // A megabyte of wrong boxes: the last one (8) is the answer.
  std::string boxes;
  while (boxes.size() < (1 << 20)) boxes += "\\boxed{8}";
  EXPECT_EQ(score("math_accuracy", ex, boxes), 0.0);
  // A huge answer tag holding the gold among junk is not the gold.
  EXPECT_EQ(score("math_accuracy", ex, "<answer>" + std::string(1 << 20, '7') + "</answer>"), 0.0);
}

// ---- format: exactly one think block, then exactly one answer block, nothing after ----

TEST(RewardHacking, FormatCannotBePaddedOrNested) {
  RewardExample ex;
  EXPECT_EQ(score("format", ex, "<think>a</think><answer>7</answer>"), 1.0);
  // Extra or nested blocks, blocks in the wrong place, empty answers, trailing text.
  for (const char* hack : {"<think>a</think><answer>7</answer><answer>7</answer>",
                           "<think><think>a</think></think><answer>7</answer>",
                           "<think>a<answer>7</answer></think><answer>7</answer>",
                           "<answer>7</answer><think>a</think>",
                           "<think>a</think><answer>  </answer>",
                           "<think>a</think><answer>7</answer> and more",
                           "<think>a</think> interlude <answer>7</answer>",
                           "<think>a</think>",
                           "\uff1cthink\uff1ea\uff1c/think\uff1e<answer>7</answer>"}) {  // fullwidth brackets
    EXPECT_EQ(score("format", ex, hack), 0.0) << hack;
  }
  // A megabyte of reasoning is still the format; its length is the length reward's business.
  EXPECT_EQ(score("format", ex, "<think>" + std::string(1 << 20, 'a') + "</think><answer>7</answer>"), 1.0);
}

// ---- language_consistency: the share of the reasoning in the target language ----

TEST(RewardHacking, LanguageTextOutsideTheReasoningDoesNotCount) {
  RewardExample ex;
  const std::string chinese = "首先我们把这两个数相加，然后检查结果是否仍然正确。这个结果是对的。";
  const std::string english = "First we add the two numbers, and then we check whether the result is still correct.";
  // Chinese reasoning with English text placed after the reasoning (in the answer or after
  // it) still scores 0 for English in scope "think": only the reasoning is judged.
  EXPECT_EQ(score("language_consistency", ex, "<think>" + chinese + "</think><answer>" + english + "</answer>"), 0.0);
  EXPECT_EQ(score("language_consistency", ex, "<think>" + chinese + "</think>" + english), 0.0);
  // LaTeX commands are blanked out: \therefore, \because, \implies do not make Chinese
  // reasoning English.
  EXPECT_EQ(score("language_consistency", ex, "<think>" + chinese + " \\therefore \\because \\implies</think>"), 0.0);
  // Invalid UTF-8 and symbols are not a language.
  EXPECT_EQ(score("language_consistency", ex, "<think>\xff\xfe\xfd 1 + 2 = 3 !!! ? ? ?</think>"), 0.0);
}

TEST(RewardHacking, LanguageRepetitionIsALimitationOfTheRewardNotAHole) {
  // The reward measures language, not content: a reasoning of one repeated English sentence
  // scores 1 for English. This is by design (R1 adds it to the accuracy reward, which is the
  // signal); it is written down in reward/README.md so that no one weights it alone.
  RewardExample ex;
  std::string repeated;
  for (int i = 0; i < 20; ++i) repeated += "Let me check the answer again. ";
  EXPECT_EQ(score("language_consistency", ex, "<think>" + repeated + "</think><answer>1</answer>"), 1.0);
}

// ---- length: counts what was generated, not what the text claims ----

TEST(RewardHacking, LengthCountsCharactersOrTheTokenizersTokens) {
  RewardExample ex;
  const std::string options = R"({"max_length": 100, "buffer": 20, "unit": "characters"})";
  // Multi-byte characters count once each: 100 CJK characters (300 bytes) are 100 characters.
  std::string cjk;
  for (int i = 0; i < 100; ++i) cjk += "\u4e00";
  EXPECT_EQ(score("length", ex, cjk, options), -1.0 * 20 / 20);
  // Zero-width characters are characters: padding with them does not hide length either way.
  std::string zero_width;
  for (int i = 0; i < 200; ++i) zero_width += "\u200b";
  EXPECT_EQ(score("length", ex, zero_width, options), -1.0);
  // In token units the count comes from the rollout, never from the text; unknown is an error.
  EXPECT_EQ(score("length", ex, "short", R"({"max_length": 100, "buffer": 20})", 150), -1.0);
  EXPECT_THROW(score("length", ex, "short", R"({"max_length": 100, "buffer": 20})"), Error);
}

// ---- countdown: an expression over the given numbers that equals the target ----

TEST(RewardHacking, CountdownCannotBeTalkedInto) {
  RewardExample ex;
  ex.gold = "24";
  ex.task = TaskKind::custom;
  ex.metadata_json = R"({"task": "countdown", "numbers": [2, 5, 5, 10], "target": 24})";
  EXPECT_EQ(score("countdown", ex, "<answer>(5 - 2 / 10) * 5</answer>"), 1.0);
  for (const char* hack : {
           "<answer>24</answer>",                    // the target copied from the prompt
           "<answer>10 + 10 + 2 + 2</answer>",       // numbers reused
           "<answer>20 + 4</answer>",                // numbers not given
           "<answer>5 * 5 - 1</answer>",             // 1 is not given
           "<answer>(5 - 2 / 10) \u00d7 5</answer>",  // a look-alike operator
           "<answer>(5 - 2 / 10) * 5 = 25</answer>",  // a wrong stated result
           "<answer>24 = 24</answer>",
           "<answer>(5 - 2 / 10) * 5</answer><answer>5 * 5</answer>",  // the last answer counts
       }) {
    EXPECT_EQ(score("countdown", ex, hack), 0.0) << hack;
  }
  // An answer tag inside the reasoning is still the last answer (the format reward refuses
  // the layout): text after it that holds no tag changes nothing.
  EXPECT_EQ(score("countdown", ex, "<think><answer>(5 - 2 / 10) * 5</answer></think>I give up."), 1.0);
}

// ---- code: a harness, not the candidate, decides what passed ----

bool sandbox_usable(std::string* why) {
  sandbox::SandboxRequest request;
  request.program = "print(1)";
  auto result = sandbox::run_sandboxed(request);
  if (result.status != sandbox::SandboxStatus::ok) *why = result.message + " " + result.stderr_text;
  return result.status == sandbox::SandboxStatus::ok;
}

TEST(RewardHacking, CodeCannotFakeAPass) {
  std::string why;
  if (!sandbox_usable(&why)) GTEST_SKIP() << "sandbox cannot run python3: " << why;
  RewardExample mbpp;
  mbpp.task = TaskKind::code;
  mbpp.tests = {"assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert abs(add(0.1, 0.2) - 0.3) < 1e-9",
                "import math\nassert math.isclose(add(0.5, 0.25), 0.75)",
                "from math import isclose\nassert isclose(add(2, 2), 4)"};
  RewardExample humaneval;
  humaneval.task = TaskKind::code;
  humaneval.prompt = "def double(x):\n";
  humaneval.entry_point = "double";
  humaneval.tests = {"def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"};
  // The honest solutions pass (so that the 0s below are the hacks' doing).
  EXPECT_EQ(score("code", mbpp, "```python\ndef add(a, b):\n    return a + b\n```"), 1.0);
  EXPECT_EQ(score("code", humaneval, "```python\ndef double(x):\n    return 2 * x\n```"), 1.0);
  struct Hack {
    const char* code;
    const char* why;
  };
  const Hack hacks[] = {
      {"print('PASSED')\nprint('pass 0')\nprint('done')\n", "printed verdicts lack the harness's nonce"},
      {"import sys\nsys.exit(0)\n", "exiting before the tests passes none of them"},
      {"import os\nos._exit(0)\n", "the same, without cleanup"},
      {"raise SystemExit(0)\n", "SystemExit is caught as a load error"},
      {"def add(a, b):\n    import os; os._exit(0)\n", "exiting during the first test ends the run"},
      {"def add(a, b):\n    raise SystemExit(0)\n", "SystemExit in a test is that test's failure"},
      {"def add(a, b):\n    import time; time.sleep(100)\n", "sleeping runs into the timeout"},
      {"class Any:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
       "    def __lt__(self, other): return True\n    def __sub__(self, other): return self\n"
       "    def __abs__(self): return self\ndef add(a, b):\n    return Any()\n",
       "an object equal to anything is not a built-in value"},
      {"class Int(int):\n    def __eq__(self, other): return True\n    __hash__ = int.__hash__\n"
       "def add(a, b):\n    return Int(5)\n", "an int subclass compares as the int it holds (5)"},
      {"import collections\ncollections.Counter.__eq__ = lambda s, o: True\n"
       "def add(a, b):\n    return collections.Counter()\n", "a patched library class is rebuilt as a dict"},
      {"import builtins\nbuiltins.exec = lambda *a, **k: None\n", "the harness bound exec before the candidate ran"},
      {"import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.AssertionError = type('E', (Exception,), {})\n"
       "def add(a, b):\n    return 7\n", "tests run with the builtins as they were"},
      {"import math\nmath.isclose = lambda *a, **k: True\ndef add(a, b):\n    return 7\n",
       "tests import the common modules as they were"},
      {"import ast\nast.NodeTransformer.generic_visit = lambda self, node: node\n"
       "class Any:\n    __eq__ = lambda s, o: True\ndef add(a, b):\n    return Any()\n",
       "tests were compiled before the candidate ran"},
  };
  for (const Hack& hack : hacks) {
    double value = score("code", mbpp, std::string("```python\n") + hack.code + "```", R"({"mode": "fraction"})",
                         -1, 3);
    EXPECT_EQ(value, 0.0) << hack.why << "\n" << hack.code;
  }
  // HumanEval: check(candidate) runs in the tests' globals, with the same protections.
  EXPECT_EQ(score("code", humaneval,
                  "```python\nclass Any:\n    __eq__ = lambda s, o: True\ndef double(x):\n    return Any()\n```"),
            0.0);
  // A real dict subclass with the right content still passes: values are rebuilt, not refused;
  // so do comparisons of classes and of Decimals (C types whose == cannot be patched).
  RewardExample counting;
  counting.task = TaskKind::code;
  counting.tests = {"assert count('abca') == {'a': 2, 'b': 1, 'c': 1}", "assert type(count('')) != int",
                    "import decimal\nassert decimal.Decimal('0.5') == 0.5"};
  EXPECT_EQ(score("code", counting,
                  "```python\nimport collections\ndef count(s):\n    return collections.Counter(s)\n```"),
            1.0);
}

}  // namespace
}  // namespace aha::reward
