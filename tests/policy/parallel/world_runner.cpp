#include "tests/policy/parallel/world_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>

#include "core/files.h"
#include "policy/parallel/store_host.h"

extern char** environ;

namespace aha::parallel::testing {

std::vector<RankOutcome> run_world(const std::string& scenario, int world_size,
                                   const std::map<std::string, std::string>& env,
                                   const std::map<int, std::map<std::string, std::string>>& rank_env,
                                   int limit_seconds, bool end_when_rank0_exits) {
  namespace fs = std::filesystem;
  StoreHost store;  // the launcher's store, as torchrun's agent serves it
  const fs::path dir = fs::temp_directory_path() / ("aha-world-" + std::to_string(::getpid()) + "-" + scenario);
  fs::create_directories(dir);
  std::vector<pid_t> pids(world_size, -1);
  for (int r = 0; r < world_size; ++r) {
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    vars["RANK"] = std::to_string(r);
    vars["LOCAL_RANK"] = std::to_string(r);
    vars["WORLD_SIZE"] = std::to_string(world_size);
    vars["LOCAL_WORLD_SIZE"] = std::to_string(world_size);
    vars["MASTER_ADDR"] = "127.0.0.1";
    vars["MASTER_PORT"] = std::to_string(store.port());
    vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
    vars["AHA_PARALLEL_WORKER"] = scenario;
    for (const auto& [k, v] : env) vars[k] = v;
    if (rank_env.count(r))
      for (const auto& [k, v] : rank_env.at(r)) vars[k] = v;
    std::vector<std::string> strings;
    for (const auto& [k, v] : vars) strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string exe = fs::read_symlink("/proc/self/exe").string();
    std::vector<char*> argv = {exe.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string err = (dir / ("rank" + std::to_string(r) + ".err")).string();
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pids[r], exe.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) ADD_FAILURE() << "cannot start rank " << r;
  }
  std::vector<RankOutcome> out(world_size);
  std::vector<bool> done(world_size, false);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limit_seconds);
  int remaining = world_size;
  while (remaining > 0) {
    for (int r = 0; r < world_size; ++r) {
      if (done[r] || pids[r] < 0) {
        if (!done[r]) done[r] = true, --remaining;
        continue;
      }
      int status = 0;
      if (::waitpid(pids[r], &status, WNOHANG) == pids[r]) {
        done[r] = true;
        --remaining;
        if (WIFEXITED(status)) out[r].exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) out[r].signal = WTERMSIG(status);
      }
    }
    if (end_when_rank0_exits && done[0] && remaining > 0) {
      for (int r = 1; r < world_size; ++r)
        if (!done[r]) {
          ::kill(pids[r], SIGKILL);
          ::waitpid(pids[r], nullptr, 0);
          done[r] = true;
          --remaining;
        }
    }
    if (remaining > 0 && std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < world_size; ++r)
        if (!done[r]) {
          ADD_FAILURE() << "rank " << r << " of scenario " << scenario << " still ran after " << limit_seconds << " s";
          ::kill(pids[r], SIGKILL);
          ::waitpid(pids[r], nullptr, 0);
          done[r] = true;
          --remaining;
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int r = 0; r < world_size; ++r) {
    std::ifstream in(dir / ("rank" + std::to_string(r) + ".err"));
    out[r].stderr_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  remove_tree(dir);
  return out;
}

bool RankFiles::has(const std::string& suffix) const { return std::filesystem::exists(base + suffix); }

bool run_world_reading(const std::string& scenario, int world_size, std::map<std::string, std::string> env,
                       const std::function<void(int rank, const RankFiles& files)>& read) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("aha-results-" + std::to_string(::getpid()) + "-" + scenario);
  remove_tree(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "out").string();
  env["AHA_PARALLEL_OUT"] = out;
  const auto ranks = run_world(scenario, world_size, env);
  bool ok = true;
  for (int r = 0; r < world_size; ++r) {
    EXPECT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].stderr_text;
    ok = ok && ranks[r].exit_code == 0;
  }
  if (ok)
    for (int r = 0; r < world_size; ++r) read(r, RankFiles{out + ".rank" + std::to_string(r)});
  remove_tree(dir);
  return ok;
}

}  // namespace aha::parallel::testing
