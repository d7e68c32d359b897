#include "sandbox/host_isolation.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace aha::sandbox {
namespace {

std::mutex mutex;
bool probed = false;
HostIsolation state;

int exit_at_once(void*) { return 0; }

// 0 when a child can be cloned with `flags`, else the errno.
int try_clone(int flags) {
  constexpr size_t kStack = 64 * 1024;
  void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return errno;
  pid_t pid = clone(exit_at_once, static_cast<char*>(stack) + kStack, flags | SIGCHLD, nullptr);
  int error = pid < 0 ? errno : 0;
  if (pid > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  munmap(stack, kStack);
  return error;
}

void probe() {
  state.root = geteuid() == 0;
  for (int flag : sandbox_namespace_flags()) {
    // Unprivileged, the other namespaces come only inside a new user namespace.
    const int with = flag == CLONE_NEWUSER ? 0 : (state.clone_flags & CLONE_NEWUSER);
    if (int error = try_clone(flag | with)) {
      state.missing.push_back(std::string(namespace_layer_name(flag)) + ": clone refused it (" +
                              std::strerror(error) + ")");
    } else {
      state.clone_flags |= flag;
    }
  }
  // Namespaces that work alone may still fail together (limits on nesting, counts).
  for (int flag : sandbox_namespace_flags()) {
    if (!(state.clone_flags & flag) || try_clone(state.clone_flags) == 0) break;
    state.clone_flags &= ~flag;
    state.missing.push_back(std::string(namespace_layer_name(flag)) +
                            ": refused together with the other namespaces");
  }
  // A mount namespace needs privilege over it: root, or the user namespace.
  if ((state.clone_flags & CLONE_NEWNS) && !state.root && !(state.clone_flags & CLONE_NEWUSER)) {
    state.clone_flags &= ~CLONE_NEWNS;
    state.missing.push_back("mount_namespace: needs root or a user namespace");
  }
}

}  // namespace

const std::vector<int>& sandbox_namespace_flags() {
  static const std::vector<int> flags = {CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWIPC,
                                         CLONE_NEWUTS,  CLONE_NEWPID, CLONE_NEWNS};
  return flags;
}

const char* namespace_layer_name(int clone_flag) {
  switch (clone_flag) {
    case CLONE_NEWUSER: return "user_namespace";
    case CLONE_NEWPID: return "pid_namespace";
    case CLONE_NEWNS: return "mount_namespace";
    case CLONE_NEWNET: return "network_namespace";
    case CLONE_NEWIPC: return "ipc_namespace";
    case CLONE_NEWUTS: return "uts_namespace";
  }
  return "seccomp";
}

HostIsolation host_isolation() {
  std::lock_guard<std::mutex> lock(mutex);
  if (!probed) {
    probe();
    probed = true;
  }
  return state;
}

void disable_layer(int clone_flag, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex);
  const bool active = clone_flag ? (state.clone_flags & clone_flag) != 0 : state.seccomp;
  if (!active) return;
  if (clone_flag) {
    state.clone_flags &= ~clone_flag;
  } else {
    state.seccomp = false;
  }
  state.missing.push_back(std::string(namespace_layer_name(clone_flag)) + ": " + reason);
}

}  // namespace aha::sandbox
