// countdown: 1 when the completion's answer is an arithmetic expression that reaches the
// example's target from its numbers (reward/countdown_check.h has the rules), else 0.
//
// The example: metadata {"numbers": [..], "target": n} as datasets/synthetic_tasks.h writes
// it (the target may instead come from the gold, which must then be an integer; when both are
// there they must agree). An example whose metadata names another "task" scores 0 ("not a
// countdown task"), so that one reward list can serve a mixed batch; a Countdown example
// without numbers is an error.
//
// The answer: the content of the last terminated <answer>...</answer> (nothing else is
// guessed: without one the score is 0), trimmed. One trailing "= n" is allowed when n is the
// target ("50 + 25 + 3 = 78"); any other '=' makes the answer a syntax error.
#include <cctype>

#include "core/error.h"
#include "core/json.h"
#include "reward/builtin_rewards.h"
#include "reward/countdown_check.h"

namespace aha::reward {
namespace {

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::optional<std::string_view> last_answer_tag(std::string_view text) {
  size_t open = text.rfind("<answer>");
  if (open == std::string_view::npos) return std::nullopt;
  size_t close = text.find("</answer>", open + 8);
  if (close == std::string_view::npos) return std::nullopt;
  return trim(text.substr(open + 8, close - open - 8));
}

std::optional<int64_t> parse_integer(std::string_view text) {
  text = trim(text);
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

struct Problem {
  std::vector<int64_t> numbers;
  int64_t target = 0;
};

// The numbers and target of a Countdown example; nullopt for an example of another task.
std::optional<Problem> problem_of(const RewardExample& example) {
  require(!example.metadata_json.empty(),
          "countdown: the example has no metadata (a Countdown example carries {\"numbers\": [...], \"target\": n})");
  auto doc = json::parse(example.metadata_json, "countdown: the example's metadata");
  require(doc.IsObject(), "countdown: the example's metadata is not a JSON object");
  json::ObjectReader meta(doc, "countdown: the example's metadata");
  if (meta.has("task") && meta.get_string("task") != "countdown") return std::nullopt;
  require(meta.has("numbers"), meta.context() + " has no 'numbers' list");
  Problem p;
  p.numbers = json::int_or_int_list(meta.get("numbers"), meta.context() + ": 'numbers'");
  require(!p.numbers.empty(), meta.context() + ": 'numbers' is empty");
  std::optional<int64_t> gold = parse_integer(example.gold);
  if (meta.has("target")) {
    p.target = meta.get_int("target");
    require(!gold || *gold == p.target, meta.context() + ": 'target' " + std::to_string(p.target) +
                                            " disagrees with the gold '" + clip_for_diagnostic(example.gold) + "'");
  } else {
    require(gold.has_value(), "countdown: no 'target' in the metadata and the gold '" +
                                  clip_for_diagnostic(example.gold) + "' is not an integer");
    p.target = *gold;
  }
  return p;
}

class CountdownReward : public Reward {
 public:
  explicit CountdownReward(CountdownRules rules) : rules_(rules) {}

  RewardOutput score(const RewardExample& example, const Completion& completion) const override {
    RewardOutput out;
    std::optional<Problem> problem = problem_of(example);
    if (!problem) {
      out.diagnostic = "not a countdown task";
      return out;
    }
    std::optional<std::string_view> answer = last_answer_tag(completion.text);
    if (!answer) {
      out.diagnostic = "no <answer> tag";
      return out;
    }
    std::string_view expression = *answer;
    if (size_t equals = expression.rfind('='); equals != std::string_view::npos) {
      std::optional<int64_t> stated = parse_integer(expression.substr(equals + 1));
      if (!stated || *stated != problem->target) {
        out.diagnostic = "the answer '" + clip_for_diagnostic(*answer) + "' does not end in '= " +
                         std::to_string(problem->target) + "'";
        return out;
      }
      expression = trim(expression.substr(0, equals));
    }
    CountdownCheck check = check_countdown_expression(expression, problem->numbers, problem->target, rules_);
    out.value = check.correct() ? 1.0 : 0.0;
    out.diagnostic = std::string(countdown_verdict_name(check.verdict)) + ": '" + clip_for_diagnostic(expression) + "'";
    if (!check.detail.empty()) out.diagnostic += " (" + check.detail + ")";
    return out;
  }

 private:
  CountdownRules rules_;
};

}  // namespace

std::unique_ptr<Reward> make_countdown_reward(const json::ObjectReader& options) {
  options.reject_unknown({"use_all_numbers", "integer_intermediates"});
  CountdownRules rules;
  rules.use_all_numbers = options.get_bool("use_all_numbers", false);
  rules.integer_intermediates = options.get_bool("integer_intermediates", false);
  return std::make_unique<CountdownReward>(rules);
}

}  // namespace aha::reward
