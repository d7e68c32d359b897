// The scoring interface a run talks to: a batch of (example, completion) items in, one
// ScoredSample per item out, in input order. RewardRunner (reward/reward_runner.h) scores on
// this process's threads; RemoteScorer (reward/remote/remote_scorer.h) on reward servers,
// with the same results for the same rewards, so a caller never knows which it has.
//
// Contract: score() returns exactly one ScoredSample per input, in input order, or throws
// aha::Error (it never fills in zeros for items it could not score); specs() are the rewards
// every sample is scored with.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "reward/reward.h"
#include "reward/reward_registry.h"

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

class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual std::vector<ScoredSample> score(std::vector<ScoringInput> inputs) = 0;
  virtual const std::vector<RewardSpec>& specs() const = 0;
};

}  // namespace aha::reward
