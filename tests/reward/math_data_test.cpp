// The math verifier on real data (the shipped data/): MATH-500 answers extracted from solutions,
// GSM8K answers in other notations. 
#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

namespace aha::reward {
namespace {

// The data sets the project ships (data/README.md), so these run on every machine.
const std::filesystem::path kData = AHA_SOURCE_DIR "/data";

const auto& read_lines = aha::test::read_nonempty_lines;

TEST(MathData, Math500BoxedSolutionAnswersEqualAnswerField) {
  auto path = kData / "math500/test.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 500u);
  int equal = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto doc = json::parse(lines[i], "math500 line " + std::to_string(i + 1));
    std::string solution = doc["solution"].GetString(), answer = doc["answer"].GetString();
    std::string boxed = extract_gold_answer(solution);
    if (math_answers_equivalent(boxed, answer))
      ++equal;
    else
      ADD_FAILURE() << "line " << i + 1 << ": boxed '" << boxed << "' vs answer '" << answer << "'";
  }
  std::cout << "MATH-500: " << equal << "/500 boxed solution answers judged equal to the answer field\n";
}

TEST(MathData, Math500AnswersRefuseTheirNeighbours) {
  // Each record's answer against the next record's: equal only where the two answers really are.
  auto path = kData / "math500/test.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
  auto lines = read_lines(path);
  std::vector<std::string> answers;
  for (auto& line : lines) answers.push_back(json::parse(line, "math500")["answer"].GetString());
  // Hand-checked: the only neighbouring pair of different texts with equal meaning.
  const std::vector<std::string> expected_equal = {"5 | x=5"};
  std::vector<std::string> judged_equal;
  for (size_t i = 0; i + 1 < answers.size(); ++i) {
    if (answers[i] == answers[i + 1]) continue;
    if (math_answers_equivalent(answers[i], answers[i + 1]))
      judged_equal.push_back(answers[i] + " | " + answers[i + 1]);
  }
  EXPECT_EQ(judged_equal, expected_equal);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// Removes spaces except between two letters ("\\cot x" keeps its space: "\\cotx" is another
// command).
std::string without_spaces_between_symbols(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool between_letters = i > 0 && i + 1 < s.size() && std::isalpha(static_cast<unsigned char>(s[i - 1])) &&
                           std::isalpha(static_cast<unsigned char>(s[i + 1]));
    if (s[i] != ' ' || between_letters) out += s[i];
  }
  return out;
}

TEST(MathData, Math500AnswersSurviveRewritingAndRefuseChanges) {
  // The answer field against rewritten forms of itself (all equal), and against changed
  // values (never equal). MATH-500's boxed answers are identical to its answer fields, so
  // this is the part that exercises normalisation on real answers.
  auto path = kData / "math500/test.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
  for (auto& line : read_lines(path)) {
    std::string answer = json::parse(line, "math500")["answer"].GetString();
    const std::string rewritten[] = {
        replace_all(answer, "\\frac", "\\dfrac"),
        "$\\displaystyle " + answer + "$",
        without_spaces_between_symbols(answer),
        replace_all(replace_all(answer, "(", "\\left("), ")", "\\right)"),
        answer + ".",
    };
    for (auto& r : rewritten)
      EXPECT_TRUE(math_answers_equivalent(r, answer)) << "'" << r << "' vs '" << answer << "'";
    EXPECT_FALSE(math_answers_equivalent(answer + "+1", answer)) << answer;
    if (answer != "0") {
      EXPECT_FALSE(math_answers_equivalent("-(" + answer + ")", answer)) << answer;
    }
    EXPECT_FALSE(math_answers_equivalent(answer + ", " + answer + "+1", answer)) << answer;
  }
}

std::string with_thousands_separators(std::string number) {
  std::erase(number, ',');
  size_t start = number[0] == '-' ? 1 : 0;
  size_t dot = number.find('.');
  size_t int_end = dot == std::string::npos ? number.size() : dot;
  std::string out = number.substr(int_end);
  for (size_t k = 0; k < int_end - start; ++k) {
    if (k > 0 && k % 3 == 0) out.insert(out.begin(), ',');
    out.insert(out.begin(), number[int_end - 1 - k]);
  }
  return number.substr(0, start) + out;
}

TEST(MathData, Gsm8kAnswersEqualThemselvesInOtherNotations) {
  auto path = kData / "gsm8k/test.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1319u);
  int grouped = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto doc = json::parse(lines[i], "gsm8k line " + std::to_string(i + 1));
    std::string gold = extract_gold_answer(doc["answer"].GetString());
    ASSERT_FALSE(gold.empty()) << "line " << i + 1;
    std::string completion = "So the answer is \\boxed{" + gold + "}.";
    auto answer = extract_final_answer(completion);
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(*answer, gold);
    EXPECT_TRUE(math_answers_equivalent(*answer, gold)) << "line " << i + 1 << ": " << gold;
    std::string separated = with_thousands_separators(gold);
    if (separated != gold) ++grouped;
    EXPECT_TRUE(math_answers_equivalent(separated, gold))
        << "line " << i + 1 << ": " << separated << " vs " << gold;
    // Off by one and the wrong sign are refused.
    EXPECT_FALSE(math_answers_equivalent(gold + "+1", gold)) << gold;
    if (gold != "0") {
      EXPECT_FALSE(math_answers_equivalent("-(" + gold + ")", gold)) << gold;
    }
  }
  EXPECT_GT(grouped, 100);  // the separator case was really exercised
}

TEST(MathData, LenientExtractionReadsWholeSolutionsAndProseAnswers) {
  // Lenient mode on both sides: the gold is the whole worked solution (MATH's `solution`,
  // GSM8K's `answer` with its working), the prediction an unboxed sentence. Every record's
  // answer is found and judged equal; the next record's answer is judged equal only where the
  // two answers are equal in strict mode too (lenient reading adds no false accepts).
  struct Source {
    const char* file;
    const char* gold_field;
    const char* answer_field;  // nullptr: the gold's "####" part
  };
  for (Source source : {Source{"math500/test.jsonl", "solution", "answer"}, Source{"gsm8k/test.jsonl", "answer", nullptr}}) {
    auto path = kData / source.file;
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (the shipped data set is missing)";
    std::vector<std::string> golds, answers;
    for (auto& line : read_lines(path)) {
      auto doc = json::parse(line, source.file);
      golds.push_back(doc[source.gold_field].GetString());
      answers.push_back(source.answer_field ? doc[source.answer_field].GetString() : extract_gold_answer(golds.back()));
    }
    int equal = 0;
    for (size_t i = 0; i < golds.size(); ++i) {
      const std::string gold = extract_gold_answer(golds[i], ExtractionMode::lenient);
      for (const std::string& said : {"So the final answer is $" + answers[i] + "$. Done.",
                                      "Adding it all up we get $" + answers[i] + "$"}) {
        auto answer = extract_final_answer(said, ExtractionMode::lenient);
        ASSERT_TRUE(answer.has_value()) << said;
        if (math_answers_equivalent(*answer, gold))
          ++equal;
        else
          ADD_FAILURE() << source.file << " record " << i + 1 << ": '" << *answer << "' vs gold '" << gold << "'";
      }
      const std::string& next = answers[(i + 1) % answers.size()];
      auto answer = extract_final_answer("So the final answer is $" + next + "$.", ExtractionMode::lenient);
      EXPECT_EQ(answer && math_answers_equivalent(*answer, gold),
                math_answers_equivalent(next, extract_gold_answer(golds[i])))
          << source.file << " record " << i + 1 << ": next answer '" << next << "' vs gold '" << gold << "'";
    }
    std::cout << source.file << ": " << equal << "/" << 2 * golds.size()
              << " prose answers judged equal to the gold read from the whole solution\n";
  }
}

}  // namespace
}  // namespace aha::reward
