// Plug-in rewards: the example C shared object and the example Python process, and plug-ins
// that crash, hang, print garbage or refuse their options, each contained to one sample.
#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <cstdlib>

#include "core/error.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"

namespace aha::reward {
namespace {

const std::string kPythonExample = AHA_SOURCE_DIR "/reward/plugins/example_reward.py";
const std::string kPythonMisbehaving = AHA_SOURCE_DIR "/tests/reward/misbehaving_plugin.py";

bool have_python() { return std::system("python3 -c pass > /dev/null 2>&1") == 0; }

std::vector<ScoringInput> inputs_of(const std::vector<std::string>& texts, const std::string& gold = "") {
  std::vector<ScoringInput> inputs;
  for (auto& t : texts) {
    ScoringInput in;
    in.example.gold = gold;
    in.completion.text = t;
    inputs.push_back(in);
  }
  return inputs;
}

std::vector<RewardSpec> one(const std::string& kind, const std::string& options, double timeout = 10) {
  RewardSpec spec;
  spec.name = "p";
  spec.kind = kind;
  spec.options_json = options;
  spec.timeout_seconds = timeout;
  return {spec};
}

using aha::test::error_of;

TEST(SharedObjectPlugin, ExampleScoresThroughTheHost) {
  RewardRunner runner(one("plugin", std::string("{\"path\": \"") + AHA_EXAMPLE_PLUGIN +
                                        "\", \"options\": {\"max_chars\": 20}}"),
                      2);
  auto results =
      runner.score(inputs_of({"work\nso it is 42", "it is 41\n", "a much longer text ending in 42"}, "42"));
  EXPECT_EQ(results[0].total, 1.0);
  EXPECT_EQ(results[0].components.at("p.contains_gold"), 1.0);
  EXPECT_EQ(results[0].components.at("p.short"), 1.0);
  EXPECT_EQ(results[0].diagnostics.at("p"), "last line contains the gold");
  EXPECT_EQ(results[1].total, 0.0);
  EXPECT_TRUE(results[1].errors.empty());
  EXPECT_EQ(results[2].components.at("p.short"), 0.0);
  EXPECT_EQ(results[2].total, 1.0);
}

TEST(SharedObjectPlugin, ExampleRefusesBadOptions) {
  std::string message = error_of([] {
    RewardRunner runner(one("plugin", std::string("{\"path\": \"") + AHA_EXAMPLE_PLUGIN +
                                          "\", \"options\": {\"max_chars\": -3}}"));
  });
  EXPECT_NE(message.find("max_chars"), std::string::npos) << message;
  EXPECT_NE(
      error_of([] { RewardRunner runner(one("plugin", "{\"path\": \"/no/such.so\"}")); }).find("/no/such.so"),
      std::string::npos);
  EXPECT_NE(error_of([] {
              RewardRunner runner(
                  one("plugin", std::string("{\"path\": \"") + AHA_SOURCE_DIR "/ARCHITECTURE.md\"}"));
            }).find("dlopen failed"),
            std::string::npos);
}

TEST(SharedObjectPlugin, CrashHangAndGarbageAreContained) {
  RewardRunner runner(one("plugin", std::string("{\"path\": \"") + AHA_MISBEHAVING_PLUGIN + "\"}", 1.0), 1);
  auto results = runner.score(inputs_of({"abc", "crash", "abcd", "hang", "fail", "nan", "print", "ab"}));
  EXPECT_EQ(results[0].total, 3.0);
  EXPECT_EQ(results[1].total, 0.0);
  // Killed by SIGSEGV; under a sanitizer the host exits with an error status instead.
  const std::string& crash = results[1].errors.at("p");
  EXPECT_TRUE(crash.find("killed by signal") != std::string::npos ||
              crash.find("exited with status") != std::string::npos)
      << crash;
  EXPECT_EQ(results[2].total, 4.0);  // a fresh host after the crash
  EXPECT_NE(results[3].errors.at("p").find("did not answer within"), std::string::npos)
      << results[3].errors.at("p");
  EXPECT_NE(results[4].errors.at("p").find("failing as asked"), std::string::npos)
      << results[4].errors.at("p");
  EXPECT_NE(results[5].errors.at("p").find("non-finite"), std::string::npos) << results[5].errors.at("p");
  EXPECT_EQ(results[6].total, 5.0);  // its printf went to stderr, not into the protocol
  EXPECT_EQ(results[7].total, 2.0);
  EXPECT_NE(error_of([] {
              RewardRunner r(one("plugin", std::string("{\"path\": \"") + AHA_MISBEHAVING_PLUGIN +
                                               "\", \"options\": {\"refuse\": true}}"));
            }).find("refusing as asked"),
            std::string::npos);
}

TEST(ProcessPlugin, PythonExampleScores) {
  if (!have_python()) GTEST_SKIP() << "no python3 on PATH";
  RewardRunner runner(
      one("process", "{\"command\": [\"python3\", \"" + kPythonExample +
                         "\"], \"processes\": 2, \"options\": {\"keywords\": [\"check\", \"Therefore\"]}}"),
      2);
  auto results = runner.score(inputs_of({"therefore 4; let me check", "so 4", "CHECK it"}));
  EXPECT_EQ(results[0].total, 1.0);
  EXPECT_EQ(results[0].components.at("p.found"), 2.0);
  EXPECT_EQ(results[0].components.at("p.words"), 5.0);
  EXPECT_EQ(results[1].total, 0.0);
  EXPECT_EQ(results[1].diagnostics.at("p"), "missing: check, Therefore");
  EXPECT_EQ(results[2].total, 0.5);
  std::string message = error_of([&] {
    RewardRunner r(
        one("process", "{\"command\": [\"python3\", \"" + kPythonExample + "\"], \"options\": {\"kw\": 1}}"));
  });
  EXPECT_NE(message.find("refused its options"), std::string::npos) << message;
}

TEST(ProcessPlugin, MisbehaviourIsContained) {
  // A 3 s timeout: restarting the plug-in after "crash" starts a new python3, which takes over a
  // second on a loaded machine with many site packages (seen on the GPU machine).
  if (!have_python()) GTEST_SKIP() << "no python3 on PATH";
  RewardRunner runner(one("process", "{\"command\": [\"python3\", \"" + kPythonMisbehaving + "\"]}", 3.0), 1);
  auto results = runner.score(
      inputs_of({"abc", "crash", "abcd", "hang", "garbage", "wrong_id", "nan", "error", "print", "ab"}));
  EXPECT_EQ(results[0].total, 3.0);
  EXPECT_NE(results[1].errors.at("p").find("closed its output"), std::string::npos)
      << results[1].errors.at("p");
  EXPECT_NE(results[1].errors.at("p").find("exited with status 3"), std::string::npos)
      << results[1].errors.at("p");
  EXPECT_EQ(results[2].total, 4.0);
  EXPECT_NE(results[3].errors.at("p").find("did not answer within"), std::string::npos)
      << results[3].errors.at("p");
  EXPECT_NE(results[4].errors.at("p").find("not a JSON object"), std::string::npos)
      << results[4].errors.at("p");
  EXPECT_NE(results[5].errors.at("p").find("id"), std::string::npos) << results[5].errors.at("p");
  EXPECT_NE(results[6].errors.at("p").find("finite number"), std::string::npos) << results[6].errors.at("p");
  EXPECT_EQ(results[7].errors.at("p"), "plug-in error: cannot score this");
  EXPECT_NE(results[8].errors.at("p").find("more than one line"), std::string::npos)
      << results[8].errors.at("p");
  EXPECT_EQ(results[9].total, 2.0);
}

TEST(ProcessPlugin, QueueingForTheProcessIsNotATimeout) {
  // Six 0.3 s calls on six threads share one process with a 1 s timeout: they queue for 1.8 s
  // in all, yet each call's own exchange is well within its timeout.
  if (!have_python()) GTEST_SKIP() << "no python3 on PATH";
  RewardRunner runner(one("process", "{\"command\": [\"python3\", \"" + kPythonMisbehaving + "\"]}", 1.0), 6);
  auto results = runner.score(inputs_of(std::vector<std::string>(6, "slow")));
  for (auto& r : results) {
    EXPECT_EQ(r.total, 1.0);
    EXPECT_TRUE(r.errors.empty()) << r.errors.begin()->second;
  }
}

TEST(ProcessPlugin, BadCommandsFailAtCreation) {
  EXPECT_NE(error_of([] {
              RewardRunner r(one("process", "{\"command\": [\"/no/such/program\"]}"));
            }).find("/no/such/program"),
            std::string::npos);
  EXPECT_NE(error_of([] { RewardRunner r(one("process", "{\"command\": []}")); }).find("non-empty list"),
            std::string::npos);
  EXPECT_NE(error_of([] { RewardRunner r(one("process", "{\"command\": [\"true\"]}")); }).find("handshake"),
            std::string::npos);
}

}  // namespace
}  // namespace aha::reward
