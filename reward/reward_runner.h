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
// - Timeouts: a C++ thread cannot be killed, so for an in-process reward the runner stops
//   waiting for a late call and records the timeout; the call keeps its pool thread until it
//   returns, holding its own copies of the inputs. In-process rewards are bounded by design
//   (the math verifier caps answer size and nesting). Rewards that can really hang (kinds
//   "process", "plugin", "code") run their work out of process and kill that process at
//   their timeout, so the runner waits for them to return: their own message is the precise
//   one, and time spent queueing for one of a plug-in's processes is not counted as hanging.
// - The wait for a call starts when a pool thread picks it up, not when it is queued.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reward/reward.h"
#include "reward/reward_registry.h"

namespace aha {
class ThreadPool;
}

namespace aha::reward {

struct ScoringInput {
  RewardExample example;
  Completion completion;
};

struct ScoredSample {
  double total = 0;
  std::map<std::string, double> components;
  std::map<std::string, std::string> diagnostics;
  std::map<std::string, std::string> errors;  // reward name -> why it scored 0 (timeout, exception)
};

class RewardRunner {
 public:
  // Creates every reward (throwing aha::Error for a bad spec). threads == 0: one per CPU.
  explicit RewardRunner(const std::vector<RewardSpec>& specs, size_t threads = 0);
  // With rewards built elsewhere (e.g. C++ rewards of a recipe or a test): rewards[i] is
  // scored under specs[i]'s name, weight and timeout; specs[i].kind only says whether the
  // runner enforces the timeout (in-process kinds) or the reward does (see above).
  RewardRunner(const std::vector<RewardSpec>& specs, std::vector<std::shared_ptr<const Reward>> rewards,
               size_t threads = 0);
  ~RewardRunner();
  RewardRunner(const RewardRunner&) = delete;
  RewardRunner& operator=(const RewardRunner&) = delete;

  // Scores every input with every reward; results in input order.
  std::vector<ScoredSample> score(std::vector<ScoringInput> inputs);

  const std::vector<RewardSpec>& specs() const { return specs_; }

 private:
  std::vector<RewardSpec> specs_;
  std::vector<std::shared_ptr<const Reward>> rewards_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace aha::reward
