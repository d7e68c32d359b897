#include "recipes/runner/reward_scoring.h"

#include <cstdlib>

#include "reward/remote/remote_scorer.h"
#include "reward/reward_runner.h"

namespace aha::recipes {

std::unique_ptr<reward::Scorer> make_reward_scorer(const Recipe& recipe) {
  const RewardScoringSection& s = recipe.reward_scoring;
  const auto threads = static_cast<size_t>(s.threads);
  if (s.servers.empty()) return std::make_unique<reward::RewardRunner>(recipe.rewards, threads);
  reward::remote::RemoteScoringOptions options;
  options.servers = s.servers;
  options.token = s.server_token;
  if (options.token.empty())
    if (const char* env = std::getenv("AHA_REWARD_SERVER_TOKEN")) options.token = env;
  options.timeout_seconds = s.server_timeout_seconds;
  options.max_inflight_per_server = static_cast<size_t>(s.max_inflight_per_server);
  options.chunk_size = static_cast<size_t>(s.chunk_size);
  std::unique_ptr<reward::Scorer> local;
  if (s.local) local = std::make_unique<reward::RewardRunner>(recipe.rewards, threads);
  try {
    return std::make_unique<reward::remote::RemoteScorer>(recipe.rewards, options, std::move(local));
  } catch (const Error& e) {
    throw Error("recipe " + recipe.file.string() + ": reward.servers: " + e.what());
  }
}

}  // namespace aha::recipes
