// The reward server as clients meet it: the same scores as scoring here, and a clear error
// (with the server still serving) for malformed, oversized, unauthenticated, slow and many
// concurrent requests. Servers run on threads on ephemeral loopback ports.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "core/json.h"
#include "reward/remote/remote_scorer.h"
#include "reward/remote/wire_format.h"
#include "reward/reward_registry.h"
#include "reward/scored_jsonl.h"
#include "sandbox/sandbox.h"
#include "tests/reward/remote/test_server.h"

namespace aha::reward::remote {
namespace {

using namespace testing;

void expect_same(const std::vector<ScoredSample>& local, const std::vector<ScoredSample>& remote) {
  ASSERT_EQ(local.size(), remote.size());
  for (size_t i = 0; i < local.size(); ++i) {
    SCOPED_TRACE("item " + std::to_string(i));
    EXPECT_EQ(local[i].total, remote[i].total);  // bit for bit
    EXPECT_EQ(local[i].components, remote[i].components);
    EXPECT_EQ(local[i].diagnostics, remote[i].diagnostics);
    EXPECT_EQ(local[i].errors, remote[i].errors);
  }
}

RemoteScoringOptions client_of(const std::vector<std::string>& servers) {
  RemoteScoringOptions o;
  o.servers = servers;
  o.timeout_seconds = 30;
  return o;
}

TEST(RewardServer, ScoresMathAndFormatAsRewardRunnerDoes) {
  const auto specs = parse_reward_specs("math_accuracy:1,format:0.5");
  RunningServer server(quick_options(), specs);
  auto batch = math_batch();
  RewardRunner local(specs, 2);
  const auto here = local.score(batch);
  RemoteScoringOptions options = client_of({server.address()});
  options.chunk_size = 3;  // several requests, the last one short
  RemoteScorer remote(specs, options);
  const auto there = remote.score(batch);
  expect_same(here, there);
  // Not all zeros: the hand-known answers.
  EXPECT_EQ(there[0].components.at("math_accuracy"), 1.0);
  EXPECT_EQ(there[1].components.at("math_accuracy"), 0.0);
  EXPECT_EQ(remote.last_stats().items_by_server, std::vector<size_t>{batch.size()});
}

bool sandbox_usable(std::string* why) {
  sandbox::SandboxRequest request;
  request.program = "print(1)";
  auto result = sandbox::run_sandboxed(request);
  if (result.status != sandbox::SandboxStatus::ok) *why = result.message + " " + result.stderr_text;
  return result.status == sandbox::SandboxStatus::ok;
}

TEST(RewardServer, ScoresCodeAsRewardRunnerDoes) {
  std::string why;
  if (!sandbox_usable(&why)) GTEST_SKIP() << "sandbox cannot run python3: " << why;
  const auto specs = parse_reward_specs(R"([{"name": "code", "kind": "code", "timeout_seconds": 10}])");
  RunningServer server(quick_options(), specs);
  std::vector<ScoringInput> batch;
  for (const char* body : {"    return a + b\n", "    return a - b\n", "    raise ValueError('no')\n"}) {
    ScoringInput in;
    in.example.task = TaskKind::code;
    in.example.tests = {"assert add(1, 2) == 3", "assert add(-1, 1) == 0"};
    in.example.test_setup = "import math\n";
    in.completion.text = std::string("```python\ndef add(a, b):\n") + body + "```";
    batch.push_back(in);
  }
  RewardRunner local(specs, 2);
  const auto here = local.score(batch);
  RemoteScorer remote(specs, client_of({server.address()}));
  const auto there = remote.score(batch);
  expect_same(here, there);
  EXPECT_EQ(there[0].components.at("code"), 1.0);
  EXPECT_LT(there[1].components.at("code"), 1.0);
}

TEST(RewardServer, HealthNamesTheRewards) {
  RunningServer server(quick_options(), parse_reward_specs("math_accuracy:1,format:0.5"));
  const auto reply = raw_exchange(server.port(), http_request("GET", "/health", ""));
  ASSERT_EQ(status_of(reply), 200) << reply;
  const auto specs = parse_health(body_of(reply), "health");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "math_accuracy");
  EXPECT_EQ(specs[1].weight, 0.5);
}

TEST(RewardServer, MalformedAndIncompleteRequestsGet400NamingTheFault) {
  RunningServer server(quick_options(), parse_reward_specs("math_accuracy"));
  auto bad = raw_exchange(server.port(), http_request("POST", "/score", "{\"items\": [ {\"completion\": "));
  EXPECT_EQ(status_of(bad), 400) << bad;
  EXPECT_NE(body_of(bad).find("the request body"), std::string::npos) << bad;
  auto missing = raw_exchange(server.port(),
                              http_request("POST", "/score", R"({"items": [{"completion": "4", "gold": "4"}, {"gold": "4"}]})"));
  EXPECT_EQ(status_of(missing), 400) << missing;
  EXPECT_NE(body_of(missing).find("items[1]"), std::string::npos) << missing;
  EXPECT_NE(body_of(missing).find("completion"), std::string::npos) << missing;
  auto not_a_list = raw_exchange(server.port(), http_request("POST", "/score", R"({"items": 3})"));
  EXPECT_EQ(status_of(not_a_list), 400) << not_a_list;
  EXPECT_NE(body_of(not_a_list).find("'items'"), std::string::npos) << not_a_list;
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("POST", "/score", "{}", "Content-Type: text/plain\r\n"))), 415);
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/score", ""))), 405);
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/nothing", ""))), 404);
  // Other rewards than the server's: refused, not scored with the wrong ones.
  auto other = raw_exchange(server.port(), http_request("POST", "/score",
                                                        R"({"rewards": [{"name": "format"}], "items": []})"));
  EXPECT_EQ(status_of(other), 409) << other;
  // And it still serves.
  auto good = raw_exchange(server.port(), http_request("POST", "/score", R"({"items": [{"completion": "\\boxed{4}", "gold": "4"}]})"));
  ASSERT_EQ(status_of(good), 200) << good;
  EXPECT_EQ(parse_score_reply(body_of(good), 1, "reply")[0].total, 1.0);
}

TEST(RewardServer, OversizedRequestsGet413AndTheClientSplitsItsChunks) {
  auto options = quick_options();
  options.max_request_bytes = 2000;
  const auto specs = parse_reward_specs("math_accuracy");
  RunningServer server(options, specs);
  // The header alone says it is too large: refused before the body is sent.
  const std::string header = "POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: 5000\r\n\r\n";
  auto reply = raw_exchange(server.port(), header);
  EXPECT_EQ(status_of(reply), 413) << reply;
  EXPECT_NE(body_of(reply).find("2000"), std::string::npos) << reply;
  // The whole body sent anyway: still a 413, not a reset.
  reply = raw_exchange(server.port(), header + std::string(5000, ' '));
  EXPECT_EQ(status_of(reply), 413) << reply;
  // A client whose chunks are too large halves them until they fit.
  std::vector<ScoringInput> batch;
  for (int i = 0; i < 12; ++i) batch.push_back(math_item("\\boxed{" + std::to_string(i) + "}" + std::string(300, ' '), "3"));
  RemoteScoringOptions client = client_of({server.address()});
  client.chunk_size = 12;
  RemoteScorer remote(specs, client);
  const auto there = remote.score(batch);
  RewardRunner local(specs, 1);
  expect_same(local.score(batch), there);
  EXPECT_EQ(there[3].total, 1.0);
}

TEST(RewardServer, WithATokenEveryRequestMustCarryIt) {
  auto options = quick_options();
  options.token = "s3cret";
  const auto specs = parse_reward_specs("math_accuracy");
  RunningServer server(options, specs);
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/health", ""))), 401);
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/health", "", "Authorization: Bearer s3creT\r\n"))), 401);
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("POST", "/score", R"({"items": []})",
                                                                "Content-Type: application/json\r\nAuthorization: Bearer nope\r\n"))),
            401);
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/health", "", "Authorization: Bearer s3cret\r\n"))), 200);
  auto client = client_of({server.address()});
  client.token = "wrong";
  try {
    RemoteScorer remote(specs, client);
    ADD_FAILURE() << "a wrong token passed the health check";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(server.address()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token"), std::string::npos) << e.what();
  }
  client.token = "s3cret";
  RemoteScorer remote(specs, client);
  EXPECT_EQ(remote.score({math_item("\\boxed{2}", "2")})[0].total, 1.0);
}

TEST(RewardServer, RefusesANonLoopbackAddressWithoutAToken) {
  auto options = quick_options();
  options.host = "0.0.0.0";
  try {
    RewardServer server(options, parse_reward_specs("math_accuracy"));
    ADD_FAILURE() << "bound 0.0.0.0 without a token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--token"), std::string::npos) << e.what();
  }
}

TEST(RewardServer, CutsOffASlowClientAndServesOthersMeanwhile) {
  RunningServer server(quick_options(), parse_reward_specs("math_accuracy"));  // 1.5 s to send a request
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket slow(io);
  slow.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  asio::write(slow, asio::buffer(std::string("POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")));
  // Another client is answered while the slow one hangs.
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/health", ""))), 200);
  // The server ends the slow connection on its own (a receive timeout far beyond the
  // server's deadline only keeps a broken server from hanging the test).
  timeval limit{20, 0};
  ASSERT_EQ(setsockopt(slow.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0);
  char byte;
  boost::system::error_code ec;
  slow.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  EXPECT_EQ(status_of(raw_exchange(server.port(), http_request("GET", "/health", ""))), 200);
}

TEST(RewardServer, AnswersAHundredConcurrentClients) {
  auto options = quick_options();
  options.read_timeout_seconds = 30;  // 100 clients on a loaded CI machine
  const auto specs = parse_reward_specs("math_accuracy");
  RunningServer server(options, specs);
  constexpr int kClients = 100;
  std::vector<int> status(kClients, 0);
  std::vector<double> total(kClients, -1);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // Client c's item is right when c is even.
      const std::string body = R"({"items": [{"completion": "\\boxed{)" + std::to_string(c) + R"(}", "gold": ")" +
                               std::to_string(c % 2 == 0 ? c : c + 1) + "\"}]}";
      const auto reply = raw_exchange(server.port(), http_request("POST", "/score", body));
      status[c] = status_of(reply);
      if (status[c] == 200) total[c] = parse_score_reply(body_of(reply), 1, "reply")[0].total;
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(status[c], 200) << "client " << c;
    EXPECT_EQ(total[c], c % 2 == 0 ? 1.0 : 0.0) << "client " << c;
  }
}

TEST(RewardServer, MoreConnectionsThanAllowedGet503) {
  auto options = quick_options();
  options.max_connections = 1;
  options.read_timeout_seconds = 5;
  RunningServer server(options, parse_reward_specs("math_accuracy"));
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket first(io);
  first.connect({asio::ip::make_address("127.0.0.1"), server.port()});
  asio::write(first, asio::buffer(std::string("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")));  // unfinished
  // The server counts `first` once it has accepted it; a /health round trip on `first`
  // cannot be used (it is half-sent), so retry the second connection until it is refused.
  int refused = 0;
  for (int attempt = 0; attempt < 50 && refused != 503; ++attempt) {
    refused = status_of(raw_exchange(server.port(), http_request("GET", "/health", "")));
    if (refused != 503) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(refused, 503);
}

}  // namespace
}  // namespace aha::reward::remote
