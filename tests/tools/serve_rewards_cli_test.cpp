// `aha serve rewards` as a process: it prints where it listens, scores as this process does,
// a server killed with SIGKILL leaves the batch to the other one (each item scored once),
// SIGTERM ends it cleanly, and a non-loopback address without a token is refused.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/files.h"
#include "reward/remote/remote_scorer.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"
#include "tests/test_util.h"

extern char** environ;

namespace aha {
namespace {

namespace fs = std::filesystem;

// A server process on a free port; its stdout and stderr go to `log`.
class ServerProcess {
 public:
  ServerProcess(const fs::path& log, const std::string& rewards) {
    const std::string aha = std::string(AHA_BINARY_DIR) + "/aha";
    std::vector<std::string> words{aha, "serve", "rewards", "--port", "0", "--threads", "1", "--rewards", rewards};
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    const int spawned = posix_spawn(&pid_, aha.c_str(), &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (spawned != 0) throw Error("cannot start " + aha);
    // Waits for the line that names the address (a server that never prints it fails the test
    // after a minute rather than hanging it).
    for (int i = 0; i < 600 && address_.empty(); ++i) {
      std::ifstream in(log);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const size_t at = text.find("http://");
      const size_t slash = at == std::string::npos ? at : text.find('/', at + 7);
      if (slash != std::string::npos) address_ = text.substr(at + 7, slash - at - 7);
      else std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& address() const { return address_; }
  // Sends `signal` and returns the exit status (-signal when killed by one).
  int stop(int signal) {
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  std::string address_;
};

std::vector<reward::ScoringInput> math_items(int n) {
  std::vector<reward::ScoringInput> items(n);
  for (int i = 0; i < n; ++i) {
    items[i].example.gold = std::to_string(i % 7);
    items[i].completion.text = "<think>t</think>\n<answer>\\boxed{" + std::to_string(i % 5) + "}</answer>";
  }
  return items;
}

TEST(ServeRewardsCli, AKilledServerLeavesTheBatchToTheOtherAndSigtermEndsCleanly) {
  const fs::path work = fs::path(AHA_BINARY_DIR) / "serve-rewards-cli";  // the servers' logs, kept for a look
  remove_tree(work);
  fs::create_directories(work);
  const std::string rewards = "math_accuracy:1,format:0.5";
  ServerProcess a(work / "a.log", rewards), b(work / "b.log", rewards);
  ASSERT_FALSE(a.address().empty()) << "server a printed no address";
  ASSERT_FALSE(b.address().empty()) << "server b printed no address";
  const auto specs = reward::parse_reward_specs(rewards);
  reward::remote::RemoteScoringOptions options;
  options.servers = {a.address(), b.address()};
  options.chunk_size = 5;
  options.timeout_seconds = 60;
  reward::remote::RemoteScorer remote(specs, options);  // both pass the health check
  EXPECT_EQ(a.stop(SIGKILL), -SIGKILL);                  // then a dies

  const auto items = math_items(40);
  const auto there = remote.score(items);
  reward::RewardRunner local(specs, 1);
  const auto here = local.score(items);
  ASSERT_EQ(there.size(), here.size());
  int right = 0;
  for (size_t i = 0; i < here.size(); ++i) {
    EXPECT_EQ(there[i].total, here[i].total) << i;
    EXPECT_EQ(there[i].components, here[i].components) << i;
    right += there[i].components.at("math_accuracy") == 1.0;
  }
  EXPECT_EQ(right, 10);  // i % 5 == i % 7 exactly when i % 35 < 5: i in 0..4 and 35..39
  const auto stats = remote.last_stats();
  EXPECT_EQ(stats.items_by_server, (std::vector<size_t>{0, 40}));  // all from b, each once
  EXPECT_GE(stats.chunks_retried, 1u);

  EXPECT_EQ(b.stop(SIGTERM), 0);
  try {
    remote.score(items);
    ADD_FAILURE() << "scored with both servers gone";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(a.address()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(b.address()), std::string::npos) << e.what();
  }
}

TEST(ServeRewardsCli, ANonLoopbackAddressNeedsAToken) {
  const auto refused = test::run_aha("serve rewards --host 0.0.0.0 --port 0 --rewards math_accuracy", true, 60);
  EXPECT_EQ(refused.exit_status, 1) << refused.out;
  EXPECT_NE(refused.out.find("--token"), std::string::npos) << refused.out;
  const auto no_rewards = test::run_aha("serve rewards --port 0", true, 60);
  EXPECT_EQ(no_rewards.exit_status, 2) << no_rewards.out;
  EXPECT_NE(no_rewards.out.find("--rewards"), std::string::npos) << no_rewards.out;
}

}  // namespace
}  // namespace aha
