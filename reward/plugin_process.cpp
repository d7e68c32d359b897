#include "reward/plugin_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/error.h"

extern char** environ;

namespace aha::reward {
namespace {

constexpr size_t kMaxReplyBytes = 1 << 20;

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

PluginProcess::PluginProcess(const std::vector<std::string>& argv) {
  if (argv.empty()) throw Error("plug-in command is empty");
  for (auto& a : argv) name_ += (name_.empty() ? "" : " ") + a;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Error("plug-in '" + name_ + "': socketpair failed: " + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  // dup2 clears close-on-exec on the child's copies; the parent's end stays close-on-exec.
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  // Its own process group, so that killing the plug-in kills what it started too; default
  // signal handling even if ours differs.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw Error("plug-in '" + name_ + "': cannot start: " + std::strerror(rc));
  }
  pid_ = pid;
  socket_ = fds[0];
}

PluginProcess::~PluginProcess() { kill_now(); }

void PluginProcess::kill_now() {
  if (socket_ >= 0) close(socket_);
  socket_ = -1;
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

std::string PluginProcess::describe_exit(int status) const {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

void PluginProcess::fail(const std::string& what) {
  std::string message = "plug-in '" + name_ + "' " + what;
  // If it already ended, say how.
  if (pid_ > 0) {
    int status;
    usleep(1000);
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      message += " (it " + describe_exit(status) + ")";
      pid_ = -1;
    }
  }
  kill_now();
  throw Error(message);
}

bool PluginProcess::out_of_step() {
  if (dead() || !buffer_.empty()) return true;
  pollfd p{socket_, POLLIN, 0};
  return poll(&p, 1, 0) != 0;  // readable (data or end of file) or an error
}

std::string PluginProcess::exchange(const std::string& line, double timeout_seconds) {
  if (dead()) throw Error("plug-in '" + name_ + "' is not running");
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%g s", timeout_seconds);
  auto deadline = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_seconds * 1e6));
  std::string message = line + "\n";
  size_t sent = 0;
  while (sent < message.size()) {
    pollfd p{socket_, POLLOUT, 0};
    int ready = poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) fail(std::string("did not read its input within ") + seconds);
    ssize_t n = send(socket_, message.data() + sent, message.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail(std::string("closed its input (") + std::strerror(errno) + ")");
    }
    sent += static_cast<size_t>(n);
  }
  for (;;) {
    size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string reply = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (!buffer_.empty()) fail("wrote more than one line in reply");
      return reply;
    }
    if (buffer_.size() > kMaxReplyBytes) fail("wrote a reply line longer than 1 MiB");
    pollfd p{socket_, POLLIN, 0};
    int ready = poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) fail(std::string("did not answer within ") + seconds + " and was killed");
    char chunk[65536];
    ssize_t n = recv(socket_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) fail("closed its output without answering");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace aha::reward
