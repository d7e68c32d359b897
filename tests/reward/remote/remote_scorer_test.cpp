// The client side: a batch spread over two servers still completes, each item scored exactly
// once, when one server dies mid-batch; every server down is an error naming them, never
// zeros; a server with other rewards, or none listening, fails the health check by name.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>

#include "reward/remote/remote_scorer.h"
#include "reward/reward_registry.h"
#include "tests/reward/remote/test_server.h"

namespace aha::reward::remote {
namespace {

using namespace testing;

// Scores "item N" as N and counts, per item, how often this server scored it; `on_call`
// (kill) runs at the call numbered kill_at (1-based), e.g. to kill the server.
struct CountingReward : Reward {
  std::string server;
  size_t kill_at = 0;
  std::function<void()> kill;
  mutable std::mutex mutex;
  mutable std::map<int, int> counts;
  mutable size_t calls = 0;

  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    const int item = std::stoi(completion.text.substr(5));
    std::function<void()> now;
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++counts[item];
      if (++calls == kill_at) now = kill;
    }
    if (now) now();
    RewardOutput out;
    out.value = item;
    out.diagnostic = server;
    return out;
  }
};

std::vector<RewardSpec> counting_specs() {
  RewardSpec spec;
  spec.name = "count";
  spec.kind = "count";  // not a registered kind: the servers are given the reward itself
  return {spec};
}

std::unique_ptr<Scorer> counting_scorer(std::shared_ptr<CountingReward> reward) {
  return std::make_unique<RewardRunner>(counting_specs(), std::vector<std::shared_ptr<const Reward>>{reward}, 1);
}

std::vector<ScoringInput> numbered_batch(int n) {
  std::vector<ScoringInput> batch(n);
  for (int i = 0; i < n; ++i) batch[i].completion.text = "item " + std::to_string(i);
  return batch;
}

// Runs a 40-item batch over servers a and b, a killed at its call number kill_at; checks that
// every item was taken once, from one server, and that b scored each item it returned once.
void check_kill(size_t kill_at) {
  auto a = std::make_shared<CountingReward>(), b = std::make_shared<CountingReward>();
  a->server = "a";
  b->server = "b";
  RunningServer server_a(quick_options(), counting_scorer(a));
  RunningServer server_b(quick_options(), counting_scorer(b));
  a->kill_at = kill_at;
  a->kill = [&] { server_a.server().abort(); };

  RemoteScoringOptions options;
  options.servers = {server_a.address(), server_b.address()};
  options.timeout_seconds = 30;
  options.chunk_size = 4;
  RemoteScorer remote(counting_specs(), options);
  const int n = 40;
  const auto results = remote.score(numbered_batch(n));
  ASSERT_EQ(results.size(), static_cast<size_t>(n));
  size_t from_a = 0, from_b = 0;
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("item " + std::to_string(i));
    EXPECT_EQ(results[i].total, i);  // its own result, in input order
    const std::string& from = results[i].diagnostics.at("count");
    if (from == "a") {
      ++from_a;
      EXPECT_EQ(b->counts.count(i), 0u);  // taken from a: b never scored it
    } else {
      ASSERT_EQ(from, "b");
      ++from_b;
      EXPECT_EQ(b->counts.at(i), 1);  // scored once on b
    }
  }
  EXPECT_EQ(from_a + from_b, static_cast<size_t>(n));
  const auto stats = remote.last_stats();
  EXPECT_EQ(stats.items_by_server, (std::vector<size_t>{from_a, from_b}));
  EXPECT_GE(stats.chunks_retried, 1u);  // a's chunk in flight went to b
  std::lock_guard<std::mutex> lock(a->mutex);
  EXPECT_GE(a->calls, kill_at);
}

TEST(RemoteScorer, FinishesTheBatchWhenAServerDiesAtItsFirstCall) {
  check_kill(1);
}

TEST(RemoteScorer, FinishesTheBatchWhenAServerDiesMidBatch) {
  check_kill(6);  // a takes at least two chunks of 4 at the start: it gets this far
}

TEST(RemoteScorer, EveryServerDownIsAnErrorNamingThem) {
  auto a = std::make_shared<CountingReward>();
  a->server = "a";
  RunningServer server_a(quick_options(), counting_scorer(a));
  a->kill_at = 1;
  a->kill = [&] { server_a.server().abort(); };
  RemoteScoringOptions options;
  options.servers = {server_a.address()};
  options.timeout_seconds = 30;
  RemoteScorer remote(counting_specs(), options);
  try {
    remote.score(numbered_batch(5));
    ADD_FAILURE() << "scored with every server down";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("every reward server is down"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(server_a.address()), std::string::npos) << e.what();
  }
}

TEST(RemoteScorer, HealthCheckNamesAServerThatIsNotThere) {
  uint16_t free_port;
  {
    RunningServer gone(quick_options(), parse_reward_specs("math_accuracy"));
    free_port = gone.port();
  }
  RunningServer there(quick_options(), parse_reward_specs("math_accuracy"));
  RemoteScoringOptions options;
  const std::string dead = "127.0.0.1:" + std::to_string(free_port);
  options.servers = {there.address(), dead};
  try {
    RemoteScorer remote(parse_reward_specs("math_accuracy"), options);
    ADD_FAILURE() << "a server nobody listens on passed the health check";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("health check"), std::string::npos) << what;
    EXPECT_NE(what.find(dead), std::string::npos) << what;
    EXPECT_EQ(what.find(there.address() + ":"), std::string::npos) << what;  // the good one is not blamed
  }
}

TEST(RemoteScorer, HealthCheckRefusesAServerWithOtherRewards) {
  RunningServer server(quick_options(), parse_reward_specs("math_accuracy:1,format:0.5"));
  RemoteScoringOptions options;
  options.servers = {server.address()};
  try {
    RemoteScorer remote(parse_reward_specs("math_accuracy:1,format:1"), options);
    ADD_FAILURE() << "a server with other rewards passed the health check";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight 1 here, 0.5 there"), std::string::npos) << e.what();
  }
}

TEST(RemoteScorer, ScoresLocallyBesideTheServers) {
  const auto specs = parse_reward_specs("math_accuracy:1,format:0.5");
  RunningServer server(quick_options(), specs);
  RemoteScoringOptions options;
  options.servers = {server.address()};
  options.chunk_size = 1;
  RemoteScorer remote(specs, options, std::make_unique<RewardRunner>(specs, 1));
  auto batch = math_batch();
  const auto there = remote.score(batch);
  RewardRunner local(specs, 1);
  const auto here = local.score(batch);
  ASSERT_EQ(there.size(), here.size());
  for (size_t i = 0; i < here.size(); ++i) {
    EXPECT_EQ(there[i].total, here[i].total) << i;
    EXPECT_EQ(there[i].components, here[i].components) << i;
  }
  const auto stats = remote.last_stats();
  EXPECT_EQ(stats.items_by_server[0] + stats.items_local, batch.size());
}

TEST(RemoteScorer, ReadsServerAddresses) {
  auto v4 = parse_server_address("10.0.0.5:7000", "x");
  EXPECT_EQ(v4.host, "10.0.0.5");
  EXPECT_EQ(v4.port, 7000);
  auto v6 = parse_server_address("[::1]:80", "x");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 80);
  for (const char* bad : {"10.0.0.5", "10.0.0.5:", ":7000", "h:70000", "h:7x", "::1:80", "[::1]80"})
    EXPECT_THROW(parse_server_address(bad, "reward.servers.0"), Error) << bad;
}

}  // namespace
}  // namespace aha::reward::remote
