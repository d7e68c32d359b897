// The reward interface: what one reward sees (an example and one completion) and what it
// returns (a value, named components, a short diagnostic).
//
// Contract:
// - RewardExample is a plain value the datasets/ folder converts its examples to; reward/
//   depends on nothing but core and sandbox.
// - Reward::score() is called from several threads at once and must be thread-safe. It may
//   throw (aha::Error or anything else): the runner (reward/reward_runner.h) turns that into a
//   0 for this reward with the message recorded, and the run goes on.
// - A reward that can hang or crash (plug-ins, code execution) runs its work out of process
//   and enforces its own timeout by killing that process; in-process rewards must be bounded
//   (linear in their input) and call check_deadline() (reward/deadline.h) in long loops, so
//   that their work ends at the timeout the runner gives them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace aha::reward {

enum class TaskKind { math, code, custom };

const char* to_string(TaskKind kind);
// "math", "code" or "custom"; throws aha::Error naming `what` for anything else.
TaskKind parse_task_kind(const std::string& text, const std::string& what);

// One example as rewards see it.
struct RewardExample {
  std::string prompt;
  // Math: the gold answer, or a worked solution ending in "#### n" (GSM8K) or holding a
  // \boxed{} (MATH); see reward/math_answer.h. Code: unused (the tests decide).
  std::string gold;
  TaskKind task = TaskKind::math;
  std::string metadata_json;  // a JSON object as text, or empty
  // Code tasks: HumanEval gives one element defining check(candidate) (with entry_point set);
  // MBPP gives one assert statement per element.
  std::vector<std::string> tests;
  std::string test_setup;  // code run before the candidate, e.g. MBPP's test_imports
  std::string entry_point;
};

// One completion to score.
struct Completion {
  std::string text;
  int64_t num_tokens = -1;  // -1 when unknown (the length reward in token units needs it)
};

struct RewardOutput {
  double value = 0;
  // Optional sub-scores, logged as "<reward name>.<component>".
  std::map<std::string, double> components;
  std::string diagnostic;  // short: the extracted answer, what failed, ...
};

class Reward {
 public:
  virtual ~Reward() = default;
  virtual RewardOutput score(const RewardExample& example, const Completion& completion) const = 0;
};

}  // namespace aha::reward
