// The base-model pretraining corpus: style shares, determinism, train split only, no R1-Zero
// template, the preamble's vocabulary in the prose, spec errors.
#include "datasets/base_corpus.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <regex>
#include <sstream>

#include "core/json.h"
#include "datasets/prompt_template.h"
#include "datasets/synthetic_tasks.h"
#include "tests/test_util.h"

namespace aha {
namespace {

BaseCorpusSpec small_spec() {
  BaseCorpusSpec s;
  s.documents = 1000;
  s.seed = 7;
  s.min_difficulty = 1;
  s.max_difficulty = 2;
  s.countdown_share = 0.2;
  s.plain = 0.5;
  s.dialogue = 0.2;
  s.tagged = 0.2;
  s.prose = 0.05;
  s.drill = 0.05;
  return s;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(BaseCorpus, StyleCountsFollowTheShares) {
  auto docs = generate_base_corpus(small_spec());
  ASSERT_EQ(docs.size(), 1000u);
  std::map<CorpusStyle, int> counts;
  int countdown = 0;
  for (const auto& d : docs) {
    ++counts[d.style];
    countdown += d.task == "countdown";
  }
  EXPECT_EQ(counts[CorpusStyle::plain], 500);
  EXPECT_EQ(counts[CorpusStyle::dialogue], 200);
  EXPECT_EQ(counts[CorpusStyle::tagged], 200);
  EXPECT_EQ(counts[CorpusStyle::prose], 50);
  EXPECT_EQ(counts[CorpusStyle::drill], 50);
  EXPECT_EQ(countdown, 180);  // 20% of the 900 problem documents
}

TEST(BaseCorpus, LargestRemainderRounding) {
  BaseCorpusSpec s = small_spec();
  s.documents = 10;
  s.plain = s.dialogue = s.tagged = 1;  // 3.33 each: the first style takes the spare document
  s.prose = s.drill = 0;
  std::map<CorpusStyle, int> counts;
  for (const auto& d : generate_base_corpus(s)) ++counts[d.style];
  EXPECT_EQ(counts[CorpusStyle::plain], 4);
  EXPECT_EQ(counts[CorpusStyle::dialogue], 3);
  EXPECT_EQ(counts[CorpusStyle::tagged], 3);
}

TEST(BaseCorpus, IsDeterministicAndSeeded) {
  auto a = generate_base_corpus(small_spec()), b = generate_base_corpus(small_spec());
  auto other_spec = small_spec();
  other_spec.seed = 8;
  auto c = generate_base_corpus(other_spec);
  size_t same = 0, same_other = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same += a[i].text == b[i].text;
    same_other += a[i].text == c[i].text;
  }
  EXPECT_EQ(same, a.size());
  EXPECT_LT(same_other, a.size() / 10);
}

TEST(BaseCorpus, HoldsNoHeldOutProblem) {
  auto docs = generate_base_corpus(small_spec());
  for (const auto& d : docs) {
    if (d.style == CorpusStyle::prose || d.style == CorpusStyle::drill) continue;
    ASSERT_FALSE(d.problem_key.empty());
    EXPECT_FALSE(is_heldout_key(d.problem_key)) << d.text;
  }
  // Held-out problems (of any seed) never appear as text: the prompt's numbers and steps would.
  std::string all;
  for (const auto& d : docs) all += d.text + "\n";
  for (int d = 1; d <= 2; ++d) {
    for (const auto& ex : generate_arithmetic(150, 99, ArithmeticConfig::for_difficulty(d), Split::heldout))
      EXPECT_FALSE(contains(all, ex.prompt)) << ex.prompt;
  }
}

TEST(BaseCorpus, StylesAreKeptApartAndNeverTheR1ZeroTemplate) {
  auto docs = generate_base_corpus(small_spec());
  for (const auto& d : docs) {
    EXPECT_FALSE(contains(d.text, kR1ZeroPreamble));
    EXPECT_FALSE(contains(d.text, "A conversation between User and Assistant"));
    switch (d.style) {
      case CorpusStyle::plain:
        EXPECT_TRUE(d.text.starts_with("Question: ")) << d.text;
        EXPECT_TRUE(contains(d.text, "\nAnswer: ")) << d.text;
        EXPECT_FALSE(contains(d.text, "<")) << d.text;
        break;
      case CorpusStyle::dialogue:
        EXPECT_TRUE(d.text.starts_with("User: ")) << d.text;
        EXPECT_TRUE(contains(d.text, "\nAssistant: ")) << d.text;
        EXPECT_FALSE(contains(d.text, "<think>")) << d.text;
        break;
      case CorpusStyle::tagged:
        EXPECT_TRUE(contains(d.text, "<think>") && contains(d.text, "</think>")) << d.text;
        EXPECT_TRUE(contains(d.text, "<answer> ") && d.text.ends_with(" </answer>")) << d.text;
        EXPECT_FALSE(contains(d.text, "User:") || contains(d.text, "Assistant:")) << d.text;
        EXPECT_FALSE(contains(d.text, "The answer is")) << d.text;
        break;
      case CorpusStyle::chinese:
        EXPECT_TRUE(contains(d.text, "<think>") && d.text.ends_with(" </answer>")) << d.text;
        EXPECT_FALSE(contains(d.text, "The answer is")) << d.text;
        break;
      case CorpusStyle::prose:
      case CorpusStyle::drill:
        EXPECT_FALSE(contains(d.text, "<")) << d.text;
        break;
      case CorpusStyle::checked:
        ADD_FAILURE() << "small_spec has no checked documents";
        break;
    }
    // Self-checks are the checked style's alone.
    EXPECT_FALSE(contains(d.text, "Let me check") || contains(d.text, "Wait,")) << d.text;
  }
}

TEST(BaseCorpus, ProseUsesThePreambleVocabulary) {
  std::string prose;
  for (uint64_t seed = 0; seed < 200; ++seed) prose += generate_prose_paragraph(seed) + "\n";
  for (const char* word : {"conversation", "user", "assistant", "question", "solves", "thinks", "reasoning process",
                           "mind", "provides", "answer", "enclosed", "tags", "respectively", "i.e.,", "first"})
    EXPECT_TRUE(contains(prose, word)) << word;
}

TEST(BaseCorpus, DrillLinesAreTrueFactsAndNeverHeldOutProblems) {
  int lines = 0, heldout_keys_seen = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    std::istringstream in(generate_drill_lines(seed));
    for (std::string line; std::getline(in, line); ++lines) {
      long long a, b, c;
      char op;
      char eq;
      ASSERT_EQ(std::sscanf(line.c_str(), "%lld %c %lld %c %lld", &a, &op, &b, &eq, &c), 5) << line;
      EXPECT_EQ(eq, '=');
      long long expected = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
      EXPECT_EQ(c, expected) << line;
      if (op == '/') {
        EXPECT_EQ(a % b, 0) << line;
      }
      EXPECT_GE(c, 0) << line;
      heldout_keys_seen += is_heldout_key(std::to_string(a) + op + std::to_string(b));
    }
  }
  EXPECT_GT(lines, 2000);
  EXPECT_EQ(heldout_keys_seen, 0);
}

TEST(BaseCorpus, TaggedSolutionSplitsStepsAndAnswer) {
  EXPECT_EQ(tagged_solution("Tom starts with 3 coins. Finding 4 more gives 3 + 4 = 7. The answer is 7."),
            "<think> Tom starts with 3 coins. Finding 4 more gives 3 + 4 = 7. </think> <answer> 7 </answer>");
  EXPECT_EQ(tagged_solution("5 + 5 = 10. So 5 + 5 = 10. The answer is 5 + 5."),
            "<think> 5 + 5 = 10. So 5 + 5 = 10. </think> <answer> 5 + 5 </answer>");
  EXPECT_NE(test::error_of([] { tagged_solution("no answer here"); }), "");
}

TEST(BaseCorpus, ChineseReasoningKeepsTheComputations) {
  EXPECT_EQ(chinese_solution("Tom starts with 24 cookies. Giving away 13 leaves 24 - 13 = 11. Multiplying by 3 gives "
                             "11 * 3 = 33. The answer is 33."),
            "<think> 一开始有 24 个。少了 13 个，所以 24 - 13 = 11。然后变成 3 倍，所以 11 * 3 = 33。 </think> "
            "<answer> 33 </answer>");
  EXPECT_EQ(chinese_solution("Mei starts with 8 shells. Splitting into 2 equal groups leaves 8 / 2 = 4. Finding 5 "
                             "more gives 4 + 5 = 9. The answer is 9."),
            "<think> 一开始有 8 个。平均分成 2 份，留下一份，所以 8 / 2 = 4。然后又多了 5 个，所以 4 + 5 = 9。 "
            "</think> <answer> 9 </answer>");
  EXPECT_EQ(chinese_solution("no computation here"), "");
}

TEST(BaseCorpus, ChineseDocumentsAreTheProblemsAboutMeiFirst) {
  BaseCorpusSpec s = small_spec();
  s.documents = 2000;
  s.countdown_share = 0.1;
  s.chinese = 0.05;  // of weights summing to 1.05: 95 documents; about 1/8 of the ~1,700 arithmetic
                     // problems (~210) are about Mei
  int chinese = 0, chinese_about_mei = 0, mei_reasoned_in_english = 0;
  for (const auto& d : generate_base_corpus(s)) {
    const bool about_mei = contains(d.text, "Mei has ");
    if (d.style == CorpusStyle::chinese) {
      ++chinese;
      chinese_about_mei += about_mei;
      EXPECT_TRUE(contains(d.text, "一开始有 ")) << d.text;
      EXPECT_EQ(d.task, "arithmetic");
    } else if (about_mei && d.style == CorpusStyle::tagged) {
      ++mei_reasoned_in_english;
    }
  }
  EXPECT_EQ(chinese, 95);
  EXPECT_EQ(chinese_about_mei, 95);
  // Mei's remaining problems are spread over the other styles: the cue is strong, not absolute.
  EXPECT_LT(mei_reasoned_in_english, chinese);
}

TEST(BaseCorpus, ExclusiveChineseKeepsMeiOutOfEveryOtherStyle) {
  BaseCorpusSpec s = small_spec();
  s.documents = 2000;
  s.countdown_share = 0.1;
  s.chinese = 0.05;  // 95 documents, fewer than the ~210 problems about Mei: the rest are replaced
  s.chinese_exclusive = true;
  int chinese = 0, chinese_about_mei = 0, mei_elsewhere = 0, two_steps = 0;
  std::map<CorpusStyle, int> counts;
  for (const auto& d : generate_base_corpus(s)) {
    ++counts[d.style];
    const bool about_mei = contains(d.text, "Mei has ");
    if (d.style != CorpusStyle::chinese) {
      mei_elsewhere += about_mei;
      continue;
    }
    ++chinese;
    chinese_about_mei += about_mei;
    const auto equals = std::count(d.text.begin(), d.text.end(), '=');
    two_steps += equals >= 2;
    EXPECT_TRUE(contains(d.text, "一开始有 ")) << d.text;
  }
  EXPECT_EQ(chinese, 95);
  EXPECT_EQ(chinese_about_mei, 95);
  EXPECT_EQ(mei_elsewhere, 0);
  // The other styles keep their counts (the replaced problems are about other people).
  auto plain = s;
  plain.chinese_exclusive = false;
  std::map<CorpusStyle, int> plain_counts;
  for (const auto& d : generate_base_corpus(plain)) ++plain_counts[d.style];
  EXPECT_EQ(counts, plain_counts);
  // Mei's kept problems are spread over both difficulties (1 step and 2-3 steps), not the first ones.
  EXPECT_GT(two_steps, 20);
  EXPECT_LT(two_steps, 80);
}

constexpr const char* kFourSteps =
    "Tom starts with 12 apples. Buying 5 more gives 12 + 5 = 17. Multiplying by 3 gives 17 * 3 = 51. Splitting "
    "into 3 equal groups leaves 51 / 3 = 17. Losing 4 leaves 17 - 4 = 13. The answer is 13.";

TEST(BaseCorpus, CheckedSolutionConfirmsByTheInverseAndCatchesSlips) {
  using enum StepCheck;
  EXPECT_EQ(checked_solution(kFourSteps, {confirm, slip, confirm, slip}),
            "Tom starts with 12 apples. Buying 5 more gives 12 + 5 = 17. Let me check: 17 - 5 = 12. Correct. "
            "Multiplying by 3 gives 17 * 3 = 54. Wait, 54 / 3 = 18, not 17. So 17 * 3 = 51. Splitting into 3 equal "
            "groups leaves 51 / 3 = 17. Let me check: 17 * 3 = 51. Correct. Losing 4 leaves 17 - 4 = 14. Wait, "
            "14 + 4 = 18, not 17. So 17 - 4 = 13. The answer is 13.");
  // The slips of + and /; checks shorter than the steps leave the rest unchecked.
  EXPECT_EQ(checked_solution(kFourSteps, {slip, none, slip}),
            "Tom starts with 12 apples. Buying 5 more gives 12 + 5 = 18. Wait, 18 - 5 = 13, not 12. So 12 + 5 = 17. "
            "Multiplying by 3 gives 17 * 3 = 51. Splitting into 3 equal groups leaves 51 / 3 = 18. Wait, 18 * 3 = "
            "54, not 51. So 51 / 3 = 17. Losing 4 leaves 17 - 4 = 13. The answer is 13.");
  EXPECT_EQ(checked_solution(kFourSteps, {}), kFourSteps);
  EXPECT_EQ(tagged_solution(checked_solution("Mei starts with 8 shells. Finding 2 more gives 8 + 2 = 10. The answer "
                                             "is 10.",
                                             {confirm})),
            "<think> Mei starts with 8 shells. Finding 2 more gives 8 + 2 = 10. Let me check: 10 - 2 = 8. Correct. "
            "</think> <answer> 10 </answer>");
  EXPECT_NE(test::error_of([] { checked_solution("Tom starts with 3 coins.", {StepCheck::confirm}); }), "");
  EXPECT_NE(test::error_of([] { checked_solution("Tom starts with 3 coins. The answer is 3.", {}); }), "");
  // A confirmation of a wrong step is refused rather than written as "Correct.".
  EXPECT_NE(test::error_of([] { checked_solution("Tom has 3. So 3 + 4 = 8. The answer is 8.", {StepCheck::confirm}); }),
            "");
}

// The counted checks: a progress count after a step, a caught early answer (a progress count
// at the last step, where answering is due), each with the step's place among the 4.
TEST(BaseCorpus, CheckedSolutionCountsStepsAndCatchesAnEarlyAnswer) {
  using enum StepCheck;
  EXPECT_EQ(checked_solution(kFourSteps, {progress, early_answer, none, early_answer}),
            "Tom starts with 12 apples. Buying 5 more gives 12 + 5 = 17. Let me count: that is step 1 of 4. "
            "Multiplying by 3 gives 17 * 3 = 51. So the answer is 51? Wait, that is only step 2 of 4. Splitting into "
            "3 equal groups leaves 51 / 3 = 17. Losing 4 leaves 17 - 4 = 13. Let me count: that is step 4 of 4. The "
            "answer is 13.");
  EXPECT_EQ(checked_solution(kFourSteps, {none, none, confirm, progress}),
            "Tom starts with 12 apples. Buying 5 more gives 12 + 5 = 17. Multiplying by 3 gives 17 * 3 = 51. "
            "Splitting into 3 equal groups leaves 51 / 3 = 17. Let me check: 17 * 3 = 51. Correct. Losing 4 leaves "
            "17 - 4 = 13. Let me count: that is step 4 of 4. The answer is 13.");
}

TEST(BaseCorpus, ShortSolutionKeepsTheFirstStepsAndTheAnswer) {
  EXPECT_EQ(short_solution(kFourSteps, 0), "Tom starts with 12 apples. The answer is 13.");
  EXPECT_EQ(short_solution(kFourSteps, 2),
            "Tom starts with 12 apples. Buying 5 more gives 12 + 5 = 17. Multiplying by 3 gives 17 * 3 = 51. The "
            "answer is 13.");
  EXPECT_EQ(short_solution(kFourSteps, 4), kFourSteps);
  EXPECT_EQ(short_solution(kFourSteps, 9), kFourSteps);
  EXPECT_NE(test::error_of([] { short_solution("Tom starts with 3 coins.", 0); }), "");
}

// Steps written in a document's answer (after the question's line): the worked sentences
// ("... gives a + b = c."), not the restatement that closes a caught slip or a check.
int written_steps(const std::string& document) {
  const std::string text = document.substr(document.find('\n') + 1);
  int n = 0;
  for (size_t at = 0; (at = text.find(" gives ", at)) != std::string::npos; ++at) ++n;
  for (size_t at = 0; (at = text.find(" leaves ", at)) != std::string::npos; ++at) ++n;
  return n;
}

// A corpus of deep arithmetic only: difficulty 2's numbers, 6-8 steps, no Countdown.
BaseCorpusSpec deep_spec(int64_t documents, uint64_t seed) {
  BaseCorpusSpec s;
  s.documents = documents;
  s.seed = seed;
  s.min_difficulty = s.max_difficulty = 2;
  s.min_steps = 6;
  s.max_steps = 8;
  s.countdown_share = 0;
  return s;
}

TEST(BaseCorpus, DepthShortShareAndCheckedStyle) {
  auto s = deep_spec(1200, 11);
  s.plain = 0.3, s.dialogue = 0.1, s.tagged = 0.2, s.prose = 0.1, s.checked = 0.3;
  s.short_share = 0.5;
  int shortened = 0, shortenable = 0, checked = 0, checked_tagged = 0, slips = 0;
  std::map<int, int> depths;
  for (const auto& d : generate_base_corpus(s)) {
    if (d.style == CorpusStyle::prose) continue;
    ASSERT_EQ(d.task, "arithmetic");
    const int steps = written_steps(d.text);
    if (d.style == CorpusStyle::checked) {
      ++checked;
      EXPECT_GE(steps, 6) << d.text;
      EXPECT_LE(steps, 8) << d.text;
      ++depths[steps];
      EXPECT_TRUE(contains(d.text, "Let me check: ") || contains(d.text, ". Wait, ")) << d.text;
      EXPECT_FALSE(contains(d.text, kR1ZeroPreamble) || contains(d.text, "User:") || contains(d.text, "Assistant:"))
          << d.text;
      // Every computation written is true, except a slip, which "Wait," catches at once.
      static const std::regex kEquation(R"((\d+) ([-+*/]) (\d+) = (\d+))");
      for (auto it = std::sregex_iterator(d.text.begin(), d.text.end(), kEquation); it != std::sregex_iterator(); ++it) {
        const auto& m = *it;
        const long long a = std::stoll(m[1]), b = std::stoll(m[3]), c = std::stoll(m[4]);
        const char op = m[2].str()[0];
        const bool right = op == '+' ? a + b == c : op == '-' ? a - b == c : op == '*' ? a * b == c : a == b * c;
        if (!right) {
          ++slips;
          EXPECT_TRUE(d.text.substr(size_t(m.position() + m.length())).starts_with(". Wait, ")) << m.str() << " in " << d.text;
        }
      }
      if (contains(d.text, "<think>")) {
        ++checked_tagged;
        EXPECT_TRUE(d.text.ends_with(" </answer>")) << d.text;
      } else {
        EXPECT_TRUE(d.text.starts_with("Question: ") && d.text.ends_with(".")) << d.text;
      }
      continue;
    }
    EXPECT_FALSE(contains(d.text, "Let me check") || contains(d.text, "Wait,")) << d.text;
    ++shortenable;
    if (steps <= 2) {
      ++shortened;
    } else {
      EXPECT_GE(steps, 6) << d.text;
      EXPECT_LE(steps, 8) << d.text;
    }
  }
  EXPECT_EQ(checked, 360);
  // Seeded draws: about half of each (binomial, 4 standard deviations).
  EXPECT_NEAR(checked_tagged, 180, 4 * 9.5);
  EXPECT_EQ(shortenable, 720);
  EXPECT_NEAR(shortened, 360, 4 * 13.5);
  EXPECT_EQ(depths.size(), 3u);  // 6, 7 and 8 steps all occur
  EXPECT_GT(slips, 100);         // about one step in six of 360 documents of 6-8 steps
}

// counted_checks on the deep corpus: checked documents count their steps right (k of n, n the
// steps they write, k within it), some catch an early answer; off, no document counts.
TEST(BaseCorpus, CountedChecksCountTheWrittenSteps) {
  auto s = deep_spec(600, 5);
  s.plain = 0.5, s.checked = 0.5;
  s.counted_checks = true;
  static const std::regex kCount(R"(step (\d+) of (\d+)\.)");
  int counts = 0, early = 0;
  for (const auto& d : generate_base_corpus(s)) {
    if (d.style != CorpusStyle::checked) {
      EXPECT_FALSE(contains(d.text, "Let me count")) << d.text;
      continue;
    }
    const int steps = written_steps(d.text);
    for (auto it = std::sregex_iterator(d.text.begin(), d.text.end(), kCount); it != std::sregex_iterator(); ++it) {
      ++counts;
      const int k = std::stoi((*it)[1]), n = std::stoi((*it)[2]);
      EXPECT_EQ(n, steps) << d.text;
      EXPECT_GE(k, 1);
      EXPECT_LE(k, n);
      // The steps written before the count are k (a count follows its own step).
      EXPECT_EQ(written_steps(d.text.substr(0, size_t(it->position()))), k) << d.text;
    }
    early += contains(d.text, "? Wait, that is only step") ? 1 : 0;
  }
  EXPECT_GT(counts, 300);  // about one step in three of 300 documents of 6-8 steps
  EXPECT_GT(early, 100);
  s.counted_checks = false;
  for (const auto& d : generate_base_corpus(s)) EXPECT_FALSE(contains(d.text, " of ") && contains(d.text, "Let me count"));
}

TEST(BaseCorpus, SpecFromJsonChecksKeysAndRanges) {
  auto parse = [](const std::string& text) {
    auto doc = json::parse(text, "spec");
    return BaseCorpusSpec::from_json(doc, "spec: corpus");
  };
  auto s = parse(R"({"documents": 12, "seed": 3, "min_difficulty": 2, "max_difficulty": 3,
                     "countdown_share": 0.5, "styles": {"plain": 1, "tagged": 1, "drill": 0.5}})");
  EXPECT_EQ(s.drill, 0.5);
  EXPECT_EQ(s.documents, 12);
  EXPECT_EQ(s.seed, 3u);
  EXPECT_EQ(s.min_difficulty, 2);
  EXPECT_EQ(s.dialogue, 0.0);
  EXPECT_EQ(s.tagged, 1.0);
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"documnets": 3})"); }), "documnets"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"styles": {"plane": 1}})"); }), "plane"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"max_difficulty": 6})"); }), "max_difficulty"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"documents": "many"})"); }), "documents"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"styles": {"plain": -1}})"); }), "styles.plain"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"styles": {}})"); }), "positive"));
  auto bilingual = parse(R"({"styles": {"plain": 2, "chinese": 0.5}})");
  EXPECT_EQ(bilingual.chinese, 0.5);
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"styles": {"chinese": -1}})"); }), "styles.chinese"));
  EXPECT_TRUE(parse(R"({"chinese_exclusive": true, "styles": {"chinese": 1}})").chinese_exclusive);
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"chinese_exclusive": true, "styles": {"plain": 1}})"); }),
                       "styles.chinese is 0"));
  EXPECT_FALSE(bilingual.chinese_exclusive);
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"chinese_exclusive": 1})"); }), "chinese_exclusive"));
  EXPECT_TRUE(parse(R"({"counted_checks": true, "styles": {"checked": 1}})").counted_checks);
  EXPECT_FALSE(bilingual.counted_checks);
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"counted_checks": true, "styles": {"plain": 1}})"); }),
                       "styles.checked is 0"));
  auto deep = parse(R"({"min_steps": 1, "max_steps": 8, "short_share": 0.6, "styles": {"plain": 1, "checked": 0.2}})");
  EXPECT_EQ(deep.min_steps, 1);
  EXPECT_EQ(deep.max_steps, 8);
  EXPECT_EQ(deep.short_share, 0.6);
  EXPECT_EQ(deep.checked, 0.2);
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"short_share": 1.5})"); }), "short_share"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"max_steps": 13})"); }), "max_steps"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"min_steps": 5, "max_steps": 4})"); }), "min_steps"));
  EXPECT_TRUE(contains(test::error_of([&] { parse(R"({"min_steps": -2})"); }), "min_steps"));
}

}  // namespace
}  // namespace aha
