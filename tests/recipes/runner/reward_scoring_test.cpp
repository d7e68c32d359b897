// A recipe's "reward" section: parsed with errors naming the key, left out of the stored
// recipe, and turning the run's scorer into one over reward servers that scores as this
// process does; a server that is not there is named before any work.
#include "recipes/runner/reward_scoring.h"

#include <gtest/gtest.h>

#include "reward/reward_runner.h"
#include "tests/reward/remote/test_server.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

using test::error_of;

const char* kRecipe = R"({
  "name": "t",
  "model": {"path": "models/base"},
  "data": {"train": {"synthetic": "arithmetic", "n": 20, "seed": 1}},
  "rewards": [{"name": "accuracy", "kind": "math_accuracy"}, {"name": "format", "kind": "format", "weight": 0.5}]
})";

Recipe parse(const std::vector<std::string>& overrides = {}) {
  return parse_recipe(kRecipe, "recipes/test.json", overrides);
}

TEST(RewardScoring, ReadsTheRewardSectionAndLeavesItOutOfTheStoredRecipe) {
  const auto r = parse({R"(reward.servers=["127.0.0.1:7000", "[::1]:7001"])", "reward.server_timeout_seconds=5",
                        "reward.max_inflight_per_server=3", "reward.chunk_size=16", "reward.local=true"});
  EXPECT_EQ(r.reward_scoring.servers, (std::vector<std::string>{"127.0.0.1:7000", "[::1]:7001"}));
  EXPECT_EQ(r.reward_scoring.server_timeout_seconds, 5);
  EXPECT_EQ(r.reward_scoring.max_inflight_per_server, 3);
  EXPECT_EQ(r.reward_scoring.chunk_size, 16);
  EXPECT_TRUE(r.reward_scoring.local);
  EXPECT_EQ(r.canonical_json, parse().canonical_json);  // where, not what: not stored
  EXPECT_TRUE(parse().reward_scoring.servers.empty());
}

TEST(RewardScoring, BadRewardSectionsNameTheKey) {
  EXPECT_NE(error_of([] { parse({R"(reward.servers=["nohost"])"}); }).find("reward.servers.0"), std::string::npos);
  EXPECT_NE(error_of([] { parse({"reward.servers=\"127.0.0.1:7000\""}); }).find("'servers'"), std::string::npos);
  EXPECT_NE(error_of([] { parse({"reward.max_inflight_per_server=0"}); }).find("max_inflight_per_server"), std::string::npos);
  EXPECT_NE(error_of([] { parse({"reward.server_timeout_seconds=0"}); }).find("server_timeout_seconds"), std::string::npos);
  EXPECT_NE(error_of([] { parse({"reward.colour=1"}); }).find("colour"), std::string::npos);
}

TEST(RewardScoring, ServersScoreAsThisProcessDoes) {
  const auto recipe = parse();
  reward::remote::testing::RunningServer server(reward::remote::testing::quick_options(), recipe.rewards);
  const auto remote_recipe = parse({"reward.servers=[\"" + server.address() + "\"]", "reward.chunk_size=2"});
  auto remote = make_reward_scorer(remote_recipe);
  auto local = make_reward_scorer(recipe);
  EXPECT_NE(dynamic_cast<reward::RewardRunner*>(local.get()), nullptr);
  EXPECT_EQ(dynamic_cast<reward::RewardRunner*>(remote.get()), nullptr);
  const auto batch = reward::remote::testing::math_batch();
  const auto here = local->score(batch), there = remote->score(batch);
  ASSERT_EQ(here.size(), there.size());
  for (size_t i = 0; i < here.size(); ++i) {
    EXPECT_EQ(here[i].total, there[i].total) << i;
    EXPECT_EQ(here[i].components, there[i].components) << i;
    EXPECT_EQ(here[i].diagnostics, there[i].diagnostics) << i;
  }
  EXPECT_EQ(there[0].components.at("accuracy"), 1.0);
}

TEST(RewardScoring, AServerThatIsNotThereIsNamedBeforeAnyWork) {
  uint16_t port;
  {
    reward::remote::testing::RunningServer gone(reward::remote::testing::quick_options(), parse().rewards);
    port = gone.port();
  }
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const auto message = error_of([&] { make_reward_scorer(parse({"reward.servers=[\"" + address + "\"]"})); });
  EXPECT_NE(message.find("reward.servers"), std::string::npos) << message;
  EXPECT_NE(message.find(address), std::string::npos) << message;
}

}  // namespace
}  // namespace aha::recipes
