// Scoring batches of completions with a weighted list of rewards on a thread pool, each reward
// call with a timeout.
//
// Contract:
// - total = sum over rewards of weight x value. Every reward's value is kept as a component
//   under its name, and its own sub-components as "<name>.<component>"; every diagnostic is
//   kept under the reward's name.
// - An exception from a reward, or a call that outlives the reward's timeout_seconds, gives
//   that sample 0 for that reward; the reason goes to `errors` (and `diagnostics`), and the
//   batch goes on.
// - Timeouts: a C++ thread cannot be killed, so an in-process reward call runs under a
//   DeadlineScope (reward/deadline.h) set to its start + timeout_seconds: the built-in
//   rewards check it in their loops and stop there, so the work really ends and the thread
//   is free again. The runner also stops waiting at the deadline and records the timeout. A
//   C++ reward of your own must likewise call check_deadline() in long loops (or be bounded):
//   one that ignores it keeps its pool thread, and the runner's destructor waits for it.
//   Rewards that can really hang (kinds "process", "plugin", "code") run their work out of
//   process and kill that process at their timeout, so the runner waits for them to return:
//   their own message is the precise one, and time spent queueing for one of a plug-in's
//   processes is not counted as hanging.
// - Threads: threads == 0 means one per CPU; any count is capped at kMaxThreads (the most
//   that can be busy: a plug-in has at most 256 processes; built-in rewards are CPU-bound, so
//   more threads than CPUs only queue). A thread the system refuses to start is an
//   aha::Error from the constructor.
// - The wait for a call starts when a pool thread picks it up, not when it is queued.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reward/reward.h"
#include "reward/reward_registry.h"
#include "reward/scorer.h"

namespace aha {
class ThreadPool;
}

namespace aha::reward {

class RewardRunner : public Scorer {
 public:
  static constexpr size_t kMaxThreads = 256;

  // Creates every reward (throwing aha::Error for a bad spec). threads == 0: one per CPU.
  explicit RewardRunner(const std::vector<RewardSpec>& specs, size_t threads = 0);
  // With rewards built elsewhere (e.g. C++ rewards of a recipe or a test): rewards[i] is
  // scored under specs[i]'s name, weight and timeout; specs[i].kind only says whether the
  // runner enforces the timeout (in-process kinds) or the reward does (see above).
  RewardRunner(const std::vector<RewardSpec>& specs, std::vector<std::shared_ptr<const Reward>> rewards,
               size_t threads = 0);
  ~RewardRunner() override;
  RewardRunner(const RewardRunner&) = delete;
  RewardRunner& operator=(const RewardRunner&) = delete;

  // Scores every input with every reward; results in input order. Safe to call from several
  // threads at once (the reward server does): the calls share the pool.
  std::vector<ScoredSample> score(std::vector<ScoringInput> inputs) override;

  const std::vector<RewardSpec>& specs() const override { return specs_; }
  size_t threads() const;  // after the cap

 private:
  std::vector<RewardSpec> specs_;
  std::vector<std::shared_ptr<const Reward>> rewards_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace aha::reward
