#include "core/temporary_files.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "core/files.h"

namespace aha {
namespace {

// The registry is plain static memory that the signal handler reads without locks: a slot
// is claimed with a compare-and-swap (free -> filling), filled, then published (live); the
// handler only touches live slots of its own process (a forked child that is signalled before
// it execs must not remove its parent's files).
enum SlotState : int { kFree = 0, kFilling = 1, kLive = 2 };
constexpr int kSlots = 64;
struct Slot {
  std::atomic<int> state{kFree};
  pid_t owner = 0;
  char path[PATH_MAX] = {};
};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");
Slot g_slots[kSlots];

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temporaries_and_reraise(int sig) {
  const int saved_errno = errno;
  const pid_t self = ::getpid();
  for (auto& slot : g_slots)
    if (slot.state.load(std::memory_order_acquire) == kLive && slot.owner == self) ::unlink(slot.path);
  // Die of the signal as if there had been no handler: it is blocked while this runs and is
  // delivered with the default action as soon as the handler returns.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
  errno = saved_errno;
}

void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : kSignals) {
      struct sigaction current {};
      if (::sigaction(sig, nullptr, &current) != 0) continue;
      if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;  // not ours to replace
      struct sigaction action {};
      action.sa_handler = remove_temporaries_and_reraise;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESTART;
      ::sigaction(sig, &action, nullptr);
    }
  });
}

// The pid of a name "<file>.<tag>-<pid>-<counter>" (unique_sibling's format), or -1.
long pid_in_name(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string rest = name.substr(prefix.size());
  const size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || dash + 1 == rest.size() || dash > 9) return -1;
  for (size_t i = 0; i < rest.size(); ++i)
    if (i != dash && (rest[i] < '0' || rest[i] > '9')) return -1;
  return std::stol(rest.substr(0, dash));
}

// A zombie (killed, not yet reaped by its parent) answers kill(pid, 0) but writes nothing any
// more: its state in /proc/<pid>/stat, the letter after the ")" closing its name, is Z (or X).
bool process_exists(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return true;  // no /proc: trust kill
  const char state = text[close + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace

int track_temporary(const std::filesystem::path& path) {
  const std::string& text = path.native();
  if (text.size() >= PATH_MAX) return -1;
  install_handlers();
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acq_rel)) continue;
    g_slots[i].owner = ::getpid();
    std::memcpy(g_slots[i].path, text.c_str(), text.size() + 1);
    g_slots[i].state.store(kLive, std::memory_order_release);
    return i;
  }
  return -1;
}

void release_temporary(int slot) {
  if (slot < 0 || slot >= kSlots) return;
  g_slots[slot].state.store(kFree, std::memory_order_release);
}

size_t remove_stale_siblings(const std::filesystem::path& path, const std::string& tag) {
  std::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  const std::string prefix = path.filename().string() + "." + tag + "-";
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return 0;
  std::vector<std::string> stale;
  const long self = static_cast<long>(::getpid());
  while (const dirent* entry = ::readdir(dir)) {
    const long pid = pid_in_name(entry->d_name, prefix);
    if (pid > 0 && pid != self && !process_exists(pid)) stale.emplace_back(entry->d_name);
  }
  ::closedir(dir);
  size_t removed = 0;
  for (const auto& name : stale) {
    try {
      removed += remove_tree(folder / name) > 0 ? 1 : 0;
    } catch (const std::exception&) {
      // Best effort: a temporary we may not remove is left for its owner to deal with.
    }
  }
  return removed;
}

}  // namespace aha
