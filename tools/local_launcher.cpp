#include "tools/local_launcher.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "policy/parallel/world.h"

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
  const auto args = own_arguments();
  const int port = parallel::free_local_port();
  struct sigaction sa {};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("--nproc-per-node: cannot start rank " + std::to_string(r));
    if (pid == 0) {
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "aha train: cannot start rank %d: %s\n", r, std::strerror(errno));
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
