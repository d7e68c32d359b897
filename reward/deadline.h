// The deadline of the reward call running on this thread, so that an in-process reward's work
// really ends at its timeout instead of running on after the runner stopped waiting.
//
// A C++ thread cannot be killed, so cancellation is cooperative: the runner opens a
// DeadlineScope around each in-process call (reward/reward_runner.h), and the long loops of
// the built-in rewards (LaTeX normalising, expression parsing, answer comparison) call
// check_deadline(), which throws DeadlineExceeded once the deadline has passed. Outside a
// scope (a reward called directly, a test, the evaluator) check_deadline() does nothing.
//
// The check reads the clock (a vDSO call, tens of nanoseconds), so it belongs at the top of
// passes and recursive steps, not inside per-character loops.
#pragma once
#include <chrono>

#include "core/error.h"

namespace aha::reward {

class DeadlineExceeded : public Error {
 public:
  DeadlineExceeded() : Error("the reward's work passed its deadline and was stopped") {}
};

class DeadlineScope {
 public:
  explicit DeadlineScope(std::chrono::steady_clock::time_point deadline);
  ~DeadlineScope();  // restores the enclosing scope's deadline (scopes may nest)
  DeadlineScope(const DeadlineScope&) = delete;
  DeadlineScope& operator=(const DeadlineScope&) = delete;

 private:
  bool had_previous_;
  std::chrono::steady_clock::time_point previous_;
};

// Throws DeadlineExceeded when this thread's call has passed its deadline.
void check_deadline();

}  // namespace aha::reward
