// Hostile completions against the built-in rewards (issue 23, findings 5 and 6): nested
// braces, boxes and signs finish in time linear in their length (bounded here by a generous
// "well within 60 s" for work that takes milliseconds, never a tight timing), nesting past
// the stated cap is refused with a reason, a reward call that passes its timeout really stops
// (its thread is gone afterwards), and thread counts are capped with a clear error when the
// system refuses a thread.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "reward/deadline.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"
#include "reward/latex_normalizer.h"
#include "reward/math_expression.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"

namespace aha::reward {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Far above what linear work on these inputs needs (milliseconds), far below what the
// quadratic or exponential versions took (hours): a bound, not a timing.
constexpr auto kGenerous = 60s;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string repeat(const std::string& piece, size_t n) {
  std::string out;
  out.reserve(piece.size() * n);
  for (size_t i = 0; i < n; ++i) out += piece;
  return out;
}

size_t thread_count() {
  size_t n = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

template <typename Predicate>
bool eventually(Predicate done, std::chrono::seconds limit = kGenerous) {
  const auto until = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

RewardSpec math_spec(double timeout_seconds) {
  RewardSpec spec;
  spec.name = "acc";
  spec.kind = "math_accuracy";
  spec.timeout_seconds = timeout_seconds;
  return spec;
}

RewardOutput score_math(const std::string& completion, const std::string& gold) {
  auto reward = create_reward(math_spec(10));
  RewardExample example;
  example.gold = gold;
  Completion c;
  c.text = completion;
  return reward->score(example, c);
}

TEST(HostileMath, MegabyteOfNestedBracesScoresPromptly) {
  // The finding's input: 1 MB of {{{{...}}}} inside the answer. Wrapping braces are
  // unwrapped (in one pass), so the answer is the 1 it wraps.
  const size_t depth = 500000;
  const std::string braces = repeat("{", depth) + "1" + repeat("}", depth);
  auto start = Clock::now();
  RewardOutput boxed = score_math("so \\boxed{" + braces + "}", "1");
  RewardOutput tagged = score_math("<answer>" + braces + "</answer>", "#### 1");
  RewardOutput wrong = score_math("<answer>" + braces + "</answer>", "2");
  EXPECT_LT(seconds_since(start), kGenerous.count());
  EXPECT_EQ(boxed.value, 1.0);
  EXPECT_EQ(tagged.value, 1.0);
  EXPECT_EQ(wrong.value, 0.0);
}

TEST(HostileMath, NestingPastTheCapIsRefusedWithTheReason) {
  auto nested = [](int depth, const std::string& core) {
    return repeat("(", depth) + core + repeat(")", depth);
  };
  // At the cap the answer is compared (and equal); one level more is refused, saying why.
  MathVerdict at_cap = check_math_answer(nested(kMaxAnswerNesting, "1+1"), nested(kMaxAnswerNesting, "2"));
  EXPECT_TRUE(at_cap.equal);
  EXPECT_EQ(at_cap.refusal, "");
  MathVerdict deeper =
      check_math_answer(nested(kMaxAnswerNesting + 1, "1+1"), nested(kMaxAnswerNesting + 1, "2"));
  EXPECT_FALSE(deeper.equal);
  EXPECT_NE(deeper.refusal.find("nest deeper than 64 levels"), std::string::npos) << deeper.refusal;
  // Through the reward: a score of 0 with the reason in the diagnostic.
  RewardOutput out = score_math("\\boxed{" + nested(100, "2") + "}", nested(100, "2") + "+0");
  EXPECT_EQ(out.value, 0.0);
  EXPECT_NE(out.diagnostic.find("refused: the answer's brackets nest deeper than 64"), std::string::npos)
      << out.diagnostic;
  // A megabyte of unclosed brackets against a gold of the same size: refused, not parsed.
  const std::string open(1 << 20, '(');
  auto start = Clock::now();
  EXPECT_NE(check_math_answer(open + "1", open + "2").refusal, "");
  EXPECT_LT(seconds_since(start), kGenerous.count());
}

TEST(HostileMath, NestedBoxesAreReadInOnePass) {
  // Each box's argument used to be scanned to its end: quadratic in the nesting.
  const size_t depth = 200000;
  const std::string boxes = repeat("\\boxed{", depth) + "7" + repeat("}", depth);
  auto start = Clock::now();
  EXPECT_EQ(extract_last_boxed(boxes), "7");  // the last box to open is the innermost
  EXPECT_EQ(extract_final_answer(boxes), "7");
  EXPECT_EQ(extract_gold_answer(boxes), "7");
  EXPECT_EQ(extract_final_answer(repeat("\\boxed{", depth)), std::nullopt);  // none terminated
  EXPECT_LT(seconds_since(start), kGenerous.count());
  // Same answers as reading every box.
  EXPECT_EQ(extract_boxed("\\boxed{1} and \\fbox{\\{2\\}} and \\boxed 3"),
            (std::vector<std::string>{"1", "\\{2\\}", "3"}));
  EXPECT_EQ(extract_last_boxed("\\boxed{1} and \\boxed{2"), "1");
}

TEST(HostileMath, ParserStopsAtItsNestingCapWithoutExhaustingTheStack) {
  auto start = Clock::now();
  // Each of these used to recurse once per character (a stack overflow at ~1 MB).
  EXPECT_EQ(MathExpression::parse(std::string(1 << 20, '-') + "1"), std::nullopt);
  EXPECT_EQ(MathExpression::parse(repeat("\\sqrt", 200000) + "4"), std::nullopt);
  EXPECT_EQ(MathExpression::parse("2^" + std::string(1 << 20, '-') + "1"), std::nullopt);
  EXPECT_EQ(MathExpression::parse(repeat("|", 1 << 20)), std::nullopt);
  // Mixed numbers used to be tried and retried at every level: 2^depth parses.
  const int levels = 40;
  const std::string mixed = repeat("1\\frac{", levels) + "1" + repeat("}{2}", levels);
  EXPECT_NE(MathExpression::parse(mixed), std::nullopt);
  // A long word is a product of variables, read once (and over the node cap here).
  EXPECT_EQ(MathExpression::parse(std::string(1 << 20, 'x')), std::nullopt);
  EXPECT_LT(seconds_since(start), kGenerous.count());
  // Mixed numbers still read as before.
  Rational value;
  ASSERT_EQ(MathExpression::parse("1\\frac{4}{5}")->exact_value(value), MathExpression::Exactness::exact);
  EXPECT_EQ(value, (Rational{9, 5}));
  ASSERT_EQ(MathExpression::parse("2\\frac{x}{2}")->variables().size(), 1u);
}

TEST(HostileMath, NormaliserIsLinearInRepeatedCommands) {
  // Every one of these rescanned or copied the text once per occurrence.
  const size_t n = 200000;
  auto start = Clock::now();
  EXPECT_EQ(normalise_latex("12" + repeat("\\text{ cm}", n)).text, "12");
  EXPECT_EQ(normalise_latex(repeat("\\text{", n) + "5" + repeat("}", n)).text, "5");
  EXPECT_EQ(normalise_latex(repeat("\\left(", n) + "5" + repeat("\\right)", n)).text,
            repeat("(", n) + "5" + repeat(")", n));
  EXPECT_EQ(normalise_latex(repeat("1_{2}", n)).text, repeat("1_2", n));
  EXPECT_EQ(normalise_latex(repeat("\\dfrac", n)).text, repeat("\\frac", n));
  EXPECT_LT(seconds_since(start), kGenerous.count());
  // The unit and text rules themselves, unchanged.
  EXPECT_EQ(normalise_latex("5.4 \\text{ cents}").text, "5.4");
  EXPECT_EQ(normalise_latex("\\text{cm}").text, "cm");  // nothing precedes it: it is the answer
  EXPECT_EQ(normalise_latex("3 \\text{a \\text{b}}").text, "3 a b");  // not a unit: unwrapped
  EXPECT_EQ(normalise_latex("\\textbf{\\mbox{x}}").text, "x");
  EXPECT_EQ(normalise_latex("{ {5} }").text, "5");
  EXPECT_EQ(normalise_latex("{5}{6}").text, "{5}{6}");
}

TEST(HostileMath, CollectionsPastTheElementCapAreRefusedWithTheReason) {
  std::string many, more;
  for (size_t i = 0; i <= kMaxAnswerElements; ++i) many += (i ? ", " : "") + std::to_string(i);
  more = many + ", 9999";
  MathVerdict verdict = check_math_answer(more, many);
  EXPECT_FALSE(verdict.equal);
  EXPECT_NE(verdict.refusal.find("more than 256"), std::string::npos) << verdict.refusal;
  // At the cap, compared as usual.
  std::string at_cap;
  for (size_t i = 1; i <= kMaxAnswerElements; ++i) at_cap += (i > 1 ? ", " : "") + std::to_string(i);
  EXPECT_TRUE(check_math_answer(at_cap, at_cap + " ").equal);
}

TEST(HostileMath, LenientExtractionIsLinearAndTowersAreRefusedQuickly) {
  const size_t n = 200000;
  auto start = Clock::now();
  auto lenient = [](const std::string& text) { return extract_final_answer(text, ExtractionMode::lenient); };
  // Each of these would be quadratic with a fresh search per opening delimiter.
  EXPECT_EQ(lenient(repeat("\\(\n", n) + "\\)"), std::nullopt);
  EXPECT_EQ(lenient(repeat("$\n", n)), std::nullopt);
  EXPECT_EQ(lenient(repeat("\\[", n)), std::nullopt);
  EXPECT_EQ(lenient(repeat("\\$", n)), std::nullopt);
  EXPECT_EQ(lenient(repeat("final answer is ", n)), std::nullopt);
  EXPECT_EQ(lenient(repeat("$x$ so ", n) + "$7$"), "7");
  EXPECT_EQ(lenient(repeat("\\boxed{1} and ", n)).value_or("").size(), 3 * n - 2);  // "1, 1, ..."
  EXPECT_TRUE(lenient(std::string(1 << 20, '9')) == std::string(1 << 20, '9'));
  EXPECT_EQ(extract_gold_answer(repeat("$x$ and ", n), ExtractionMode::lenient).size(), 3 * n - 2);
  // Exponent towers: no exact value, no hang, simply unequal.
  for (const char* tower : {"10^{10^{10}}", "2^{2^{2^{2^{2^{2}}}}}", "0.1^{-10^{9}}", "1.5e99999999"}) {
    EXPECT_FALSE(math_answers_equivalent(tower, "1")) << tower;
    EXPECT_FALSE(math_answers_equivalent(tower, std::string(tower) + "+1")) << tower;
  }
  EXPECT_FALSE(math_answers_equivalent(repeat("10^{", 60) + "1" + repeat("}", 60), "1"));
  EXPECT_LT(seconds_since(start), kGenerous.count());
}

TEST(RewardDeadline, ChecksOnlyInsideAScopeAndNestsInward) {
  EXPECT_NO_THROW(check_deadline());  // no scope: a reward called directly is not limited
  {
    DeadlineScope far(Clock::now() + 1h);
    EXPECT_NO_THROW(check_deadline());
    {
      DeadlineScope past(Clock::now() - 1s);
      EXPECT_THROW(check_deadline(), DeadlineExceeded);
      DeadlineScope later(Clock::now() + 2h);  // never extends the enclosing deadline
      EXPECT_THROW(check_deadline(), DeadlineExceeded);
    }
    EXPECT_NO_THROW(check_deadline());
  }
  EXPECT_NO_THROW(check_deadline());
}

TEST(RewardDeadline, BuiltInMathRewardChecksItsDeadline) {
  // Under a deadline already passed, the math reward stops at its first check.
  auto reward = create_reward(math_spec(10));
  RewardExample example;
  example.gold = "1";
  Completion c;
  c.text = "\\boxed{" + repeat("{", 1000) + "1" + repeat("}", 1000) + "}";
  DeadlineScope past(Clock::now() - 1s);
  EXPECT_THROW(reward->score(example, c), DeadlineExceeded);
}

TEST(RewardDeadline, TimedOutCallStopsAndItsThreadEnds) {
  // A set of 250 sets of 250 numbers against the same sets in reverse order: within the
  // element cap (kMaxAnswerElements), but the unordered comparison of unordered collections
  // costs millions of element comparisons (many seconds), so the 1 s timeout has to end it.
  const int n = 250;
  auto inner = [&](int i) {
    std::string set = "\\{";
    for (int k = 1; k <= n; ++k) set += (k > 1 ? ", " : "") + std::to_string(i * 1000 + k);
    return set + "\\}";
  };
  std::string gold = "\\{", answer = "\\{";
  for (int i = 1; i <= n; ++i) gold += (i > 1 ? ", " : "") + inner(i);
  for (int i = n; i >= 1; --i) answer += inner(i) + (i > 1 ? ", " : "");
  gold += "\\}", answer += "\\}";
  std::vector<ScoringInput> inputs(1);
  inputs[0].example.gold = gold;
  inputs[0].completion.text = "\\boxed{" + answer + "}";

  const size_t baseline = thread_count();
  auto scored = std::make_shared<std::promise<std::vector<ScoredSample>>>();
  auto runner_gone = std::make_shared<std::atomic<bool>>(false);
  auto result = scored->get_future();
  std::thread([scored, runner_gone, inputs]() mutable {
    {
      RewardRunner runner({math_spec(1.0)}, 1);
      scored->set_value(runner.score(std::move(inputs)));
    }  // the destructor joins the pool thread: it returns once the call has really stopped
    runner_gone->store(true);
  }).detach();
  ASSERT_EQ(result.wait_for(kGenerous), std::future_status::ready) << "score() did not return";
  auto samples = result.get();
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].errors.at("acc"), "timed out after 1 s");
  EXPECT_EQ(samples[0].total, 0.0);
  EXPECT_TRUE(eventually([&] { return runner_gone->load(); })) << "the timed-out call kept computing";
  EXPECT_TRUE(eventually([&] { return thread_count() == baseline; }))
      << thread_count() << " threads, " << baseline << " before";
}

TEST(RewardRunnerThreads, CountsAreCapped) {
  EXPECT_EQ(RewardRunner({math_spec(1)}, 3).threads(), 3u);
  EXPECT_EQ(RewardRunner({math_spec(1)}, 100000).threads(), RewardRunner::kMaxThreads);
  EXPECT_GE(RewardRunner({math_spec(1)}, 0).threads(), 1u);
}

// With the address space capped just above what the process uses, thread stacks cannot be
// mapped: the runner must throw aha::Error (exit 3 here), not terminate or hang (alarm()
// ends a hang).
[[noreturn]] void start_threads_under_an_address_space_cap() {
  alarm(60);
  size_t pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%zu", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  const rlim_t cap = pages * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (48u << 20);
  const rlimit limit{cap, cap};
  setrlimit(RLIMIT_AS, &limit);
  try {
    RewardRunner runner({math_spec(1)}, RewardRunner::kMaxThreads);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(3);
  }
  std::_Exit(0);
}

TEST(RewardRunnerThreadsDeathTest, RefusedThreadIsAClearError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(start_threads_under_an_address_space_cap(), ::testing::ExitedWithCode(3),
              "thread pool: could not start thread [0-9]+ of 256");
}

}  // namespace
}  // namespace aha::reward
