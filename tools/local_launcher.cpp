#include "tools/local_launcher.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "policy/parallel/store_host.h"

extern char** environ;

namespace aha {
namespace {

volatile sig_atomic_t g_signal = 0;
void remember_signal(int sig) { g_signal = sig; }

// This process's arguments without --nproc-per-node N / --nproc-per-node=N.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t pos = 0; pos < all.size();) {
    const size_t end = all.find('\0', pos);
    args.push_back(all.substr(pos, end - pos));
    pos = end == std::string::npos ? all.size() : end + 1;
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc-per-node") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc-per-node=", 0) == 0) continue;
    kept.push_back(args[i]);
  }
  return kept;
}

// Rank r's environment: this process's, with torchrun's variables for rank r of `nproc` meeting
// at the store on `port`.
std::vector<std::string> rank_environment(int r, int nproc, int port) {
  const std::map<std::string, std::string> set = {
      {"RANK", std::to_string(r)},          {"LOCAL_RANK", std::to_string(r)},
      {"WORLD_SIZE", std::to_string(nproc)}, {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
      {"MASTER_ADDR", "127.0.0.1"},          {"MASTER_PORT", std::to_string(port)},
      {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    if (!set.count(kv.substr(0, kv.find('=')))) env.push_back(kv);
  }
  for (const auto& [name, value] : set) env.push_back(name + "=" + value);
  return env;
}

int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string status_text(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(status_code(status));
}

}  // namespace

int launch_local_ranks(int nproc) {
  require(nproc >= 1, "--nproc-per-node must be >= 1");
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"})
    if (std::getenv(v))
      throw Error(std::string("--nproc-per-node starts the ranks itself, but ") + v +
                  " is already set (a launcher such as torchrun started this process): leave --nproc-per-node out");
  auto args = own_arguments();
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const parallel::StoreHost store;  // the ranks' rendezvous, served here as torchrun's agent does
  struct sigaction sa {};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    // The store's threads run on in this process, so between fork and exec the child makes only
    // async-signal-safe calls (POSIX's rule after a multithreaded fork): all it needs is made here.
    auto env = rank_environment(r, nproc, store.port());
    std::vector<char*> envp;
    for (auto& kv : env) envp.push_back(kv.data());
    envp.push_back(nullptr);
    const std::string failed =
        "aha train: cannot start rank " + std::to_string(r) + " (exec of /proc/self/exe failed)\n";
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("--nproc-per-node: cannot start rank " + std::to_string(r));
    if (pid == 0) {
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      ::execve("/proc/self/exe", argv.data(), envp.data());
      [[maybe_unused]] const auto written = ::write(STDERR_FILENO, failed.data(), failed.size());
      ::_exit(127);
    }
    pids.push_back(pid);
  }

  int result = 0, running = nproc;
  bool stopping = false;
  bool terminated = false;
  std::chrono::steady_clock::time_point term_at, kill_at;
  auto stop_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  while (running > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      --running;
      int rank = -1;
      for (int r = 0; r < nproc; ++r)
        if (pids[r] == done) rank = r, pids[r] = -1;
      const int code = status_code(status);
      if (code != 0 && result == 0) {
        result = code;
        if (!stopping && running > 0)
          std::fprintf(stderr, "aha train: rank %d %s; stopping the other ranks\n", rank, status_text(status).c_str());
      }
      if (code != 0 && !stopping) {
        // The others usually stop by themselves at once (a broken collective, the heartbeat),
        // with their own account of it; SIGTERM only those that have not after a few seconds.
        stopping = true;
        term_at = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        kill_at = term_at + std::chrono::seconds(15);
      }
      continue;
    }
    if (g_signal != 0 && !stopping) {
      stopping = true;
      if (result == 0) result = 128 + g_signal;
      stop_all(g_signal == SIGINT ? SIGINT : SIGTERM);
      term_at = std::chrono::steady_clock::now();
      kill_at = term_at + std::chrono::seconds(15);
    }
    if (stopping && !terminated && std::chrono::steady_clock::now() > term_at) {
      terminated = true;
      stop_all(SIGTERM);
    }
    if (stopping && std::chrono::steady_clock::now() > kill_at) stop_all(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

}  // namespace aha
