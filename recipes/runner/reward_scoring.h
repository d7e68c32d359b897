// The scorer a recipe's run scores its completions with, from the recipe's "reward" section:
// a RewardRunner on this process's threads, or a RemoteScorer over the listed reward servers
// (with this process's threads beside them when "local" is true). Both give the same
// ScoredSample for the same rewards (reward/scorer.h), so the stage runner does not care.
//
// Contract: throws aha::Error for a bad reward spec, or naming each server that fails its
// health check (unreachable, wrong token, other rewards), before any work.
#pragma once
#include <memory>

#include "recipes/runner/recipe.h"
#include "reward/scorer.h"

namespace aha::recipes {

std::unique_ptr<reward::Scorer> make_reward_scorer(const Recipe& recipe);

}  // namespace aha::recipes
