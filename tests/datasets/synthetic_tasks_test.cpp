// Synthetic tasks: golds checked independently (re-evaluating each problem's operations and
// the worked solution's equations; Countdown answers through the countdown reward), determinism, and
// the train / held-out split.
#include "datasets/synthetic_tasks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "datasets/countdown.h"
#include "reward/reward_registry.h"

namespace aha {
namespace {

rapidjson::Document metadata(const Example& ex) { return json::parse(ex.metadata, "metadata of " + ex.id); }

// Evaluates a key such as "12+7-5*2/3" strictly left to right.
int64_t evaluate_key(const std::string& key) {
  std::regex term(R"(([+\-*/])(\d+))");
  size_t first = key.find_first_not_of("0123456789");
  int64_t value = std::stoll(key.substr(0, first));
  if (first == std::string::npos) return value;
  std::string rest = key.substr(first);
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), term); it != std::sregex_iterator(); ++it) {
    int64_t k = std::stoll((*it)[2]);
    switch ((*it)[1].str()[0]) {
      case '+': value += k; break;
      case '-': value -= k; break;
      case '*': value *= k; break;
      default: EXPECT_EQ(value % k, 0) << key; value /= k;
    }
  }
  return value;
}

TEST(Arithmetic, GoldsAndWorkedSolutionsAreRight) {
  for (int difficulty = 1; difficulty <= 5; ++difficulty) {
    ArithmeticConfig config = ArithmeticConfig::for_difficulty(difficulty);
    auto examples = generate_arithmetic(200, 11, config, Split::train);
    ASSERT_EQ(examples.size(), 200u);
    for (const auto& ex : examples) {
      auto meta = metadata(ex);
      json::ObjectReader m(meta, ex.id);
      int64_t gold = std::stoll(ex.gold);
      EXPECT_EQ(evaluate_key(m.get_string("key")), gold) << m.get_string("key");
      EXPECT_GE(gold, 0);
      EXPECT_LE(gold, config.value_max);
      int64_t steps = m.get_int("steps");
      EXPECT_GE(steps, config.min_steps);
      EXPECT_LE(steps, config.max_steps);
      // Every "a op b = c" of the solution is correct, chains from the previous result, and the
      // last one gives the gold.
      std::string solution = m.get_string("solution");
      std::regex equation(R"((\d+) ([+\-*/]) (\d+) = (\d+))");
      int64_t previous = -1, count = 0;
      for (auto it = std::sregex_iterator(solution.begin(), solution.end(), equation); it != std::sregex_iterator();
           ++it) {
        int64_t a = std::stoll((*it)[1]), b = std::stoll((*it)[3]), c = std::stoll((*it)[4]);
        char op = (*it)[2].str()[0];
        int64_t expected = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
        if (op == '/') {
          EXPECT_EQ(a % b, 0) << solution;
        }
        EXPECT_EQ(c, expected) << solution;
        if (previous >= 0) {
          EXPECT_EQ(a, previous) << solution;
        }
        previous = c;
        ++count;
      }
      EXPECT_EQ(count, steps) << solution;
      EXPECT_EQ(previous, gold) << solution;
      EXPECT_TRUE(solution.ends_with("The answer is " + ex.gold + ".")) << solution;
      EXPECT_TRUE(ex.prompt.ends_with(" have now?")) << ex.prompt;
      EXPECT_EQ(ex.kind, TaskKind::math);
    }
  }
}

TEST(Arithmetic, DifficultyOneReadsAsInTheExamples) {
  auto ex = generate_arithmetic(50, 5, ArithmeticConfig::for_difficulty(1), Split::train);
  std::regex shape(R"([A-Z][a-z]+ has \d+ [a-z]+\. [^.]+\. How many [a-z]+ does (he|she) have now\?)");
  for (const auto& e : ex) EXPECT_TRUE(std::regex_match(e.prompt, shape)) << e.prompt;
}

TEST(Arithmetic, SameSeedSameProblemsOtherSeedOthers) {
  auto config = ArithmeticConfig::for_difficulty(3);
  auto a = generate_arithmetic(30, 1, config, Split::train);
  auto b = generate_arithmetic(30, 1, config, Split::train);
  auto c = generate_arithmetic(30, 2, config, Split::train);
  size_t same_as_other_seed = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt, b[i].prompt);
    EXPECT_EQ(a[i].metadata, b[i].metadata);
    same_as_other_seed += a[i].prompt == c[i].prompt;
  }
  EXPECT_LT(same_as_other_seed, 3u);
}

TEST(Countdown, InstancesAreSolvableAndWithinTheConfiguration) {
  auto countdown_reward =
      reward::create_reward({"countdown", "countdown", 1.0, 10.0, R"({"use_all_numbers": true})"});
  for (int difficulty = 1; difficulty <= 5; ++difficulty) {
    CountdownConfig config = CountdownConfig::for_difficulty(difficulty);
    auto examples = generate_countdown(40, 3, config, Split::train);
    ASSERT_EQ(examples.size(), 40u);
    for (const auto& ex : examples) {
      auto meta = metadata(ex);
      json::ObjectReader m(meta, ex.id);
      std::vector<int64_t> numbers;
      for (const auto& v : m.get("numbers").GetArray()) numbers.push_back(v.GetInt64());
      int64_t target = m.get_int("target");
      EXPECT_EQ(ex.gold, std::to_string(target));
      EXPECT_GE(static_cast<int>(numbers.size()), config.min_numbers);
      EXPECT_LE(static_cast<int>(numbers.size()), config.max_numbers);
      for (int64_t n : numbers) {
        EXPECT_GE(n, config.number_min);
        EXPECT_LE(n, config.number_max);
        EXPECT_NE(n, target);
      }
      EXPECT_GE(target, config.target_min);
      EXPECT_LE(target, config.target_max);
      std::string expression = m.get_string("expression");
      // The generated example, as the recipes hand it to rewards, passes the countdown reward
      // with its own expression (every number used, as generated) and fails with a wrong one.
      reward::RewardExample as_reward_sees_it;
      as_reward_sees_it.gold = ex.gold;
      as_reward_sees_it.task = reward::TaskKind::custom;
      as_reward_sees_it.metadata_json = ex.metadata;
      auto scored = countdown_reward->score(as_reward_sees_it, {"<think>...</think><answer>" + expression + "</answer>"});
      EXPECT_EQ(scored.value, 1.0) << expression << ": " << scored.diagnostic;
      EXPECT_EQ(countdown_reward->score(as_reward_sees_it, {"<answer>" + expression + " + 0</answer>"}).value, 0.0);
      // Every number is used (use_all_numbers): the literals are the numbers, in some order.
      std::vector<int64_t> literals;
      std::regex literal(R"(\d+)");
      for (auto it = std::sregex_iterator(expression.begin(), expression.end(), literal); it != std::sregex_iterator();
           ++it)
        literals.push_back(std::stoll(it->str()));
      std::vector<int64_t> sorted_numbers = numbers;
      std::sort(sorted_numbers.begin(), sorted_numbers.end());
      std::sort(literals.begin(), literals.end());
      EXPECT_EQ(literals, sorted_numbers) << expression;
      EXPECT_EQ(ex.kind, TaskKind::custom);
      EXPECT_NE(ex.prompt.find("equals " + ex.gold + "."), std::string::npos) << ex.prompt;
    }
  }
}

TEST(Split, HeldOutProblemsNeverAppearInTraining) {
  auto arithmetic_config = ArithmeticConfig::for_difficulty(1);  // ~2000 problems: seeds overlap
  std::set<std::string> train_keys, heldout_keys;
  for (uint64_t seed : {1, 2, 3}) {
    for (const auto& e : generate_arithmetic(300, seed, arithmetic_config, Split::train))
      train_keys.insert(json::ObjectReader(metadata(e), e.id).get_string("key"));
    for (const auto& e : generate_arithmetic(30, seed, arithmetic_config, Split::heldout))
      heldout_keys.insert(json::ObjectReader(metadata(e), e.id).get_string("key"));
  }
  EXPECT_GT(train_keys.size(), 300u);
  EXPECT_GE(heldout_keys.size(), 30u);
  for (const auto& k : heldout_keys) {
    EXPECT_FALSE(train_keys.count(k)) << k;
    EXPECT_TRUE(is_heldout_key(k)) << k;
  }
  for (const auto& k : train_keys) EXPECT_FALSE(is_heldout_key(k)) << k;

  std::set<std::string> countdown_train, countdown_heldout;
  auto cc = CountdownConfig::for_difficulty(1);
  for (const auto& e : generate_countdown(400, 9, cc, Split::train)) countdown_train.insert(e.prompt);
  for (const auto& e : generate_countdown(40, 9, cc, Split::heldout)) countdown_heldout.insert(e.prompt);
  for (const auto& p : countdown_heldout) EXPECT_FALSE(countdown_train.count(p)) << p;
  EXPECT_EQ(countdown_heldout.size(), 40u);  // unique within a call
}

TEST(Split, ImpossibleRequestsFailInsteadOfLooping) {
  ArithmeticConfig tiny;
  tiny.min_steps = tiny.max_steps = 1;
  tiny.start_min = tiny.start_max = 2;
  tiny.operand_max = 1;
  tiny.factor_max = tiny.divisor_max = 0;  // only "2+1" and "2-1" exist
  EXPECT_THROW(generate_arithmetic(5, 1, tiny, Split::train), Error);
  CountdownConfig unreachable;
  unreachable.min_numbers = unreachable.max_numbers = 2;
  unreachable.number_min = unreachable.number_max = 1;
  unreachable.target_min = 50;  // 1 and 1 make at most 2
  EXPECT_THROW(generate_countdown(1, 1, unreachable, Split::train), Error);
  EXPECT_THROW(ArithmeticConfig::for_difficulty(0), Error);
  EXPECT_THROW(CountdownConfig::for_difficulty(6), Error);
  EXPECT_THROW(parse_split("test"), Error);
}

TEST(Corpus, WorkedProblemsInPlainQuestionAnswerStyle) {
  std::string corpus = generate_pretraining_corpus(30, 4, 2, Split::train);
  EXPECT_EQ(corpus, generate_pretraining_corpus(30, 4, 2, Split::train));
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = corpus.find(what); at != std::string::npos; at = corpus.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("Question: "), 30u);
  EXPECT_EQ(count("\nAnswer: "), 30u);
  EXPECT_EQ(count("The answer is "), 30u);
  EXPECT_EQ(count("create an equation that equals"), 10u);  // one Countdown for two arithmetic
  EXPECT_EQ(corpus.find("<think>"), std::string::npos);     // not the R1-Zero template
  EXPECT_TRUE(corpus.ends_with(".\n\n"));
}

}  // namespace
}  // namespace aha
