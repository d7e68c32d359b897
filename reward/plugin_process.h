// One long-lived plug-in process spoken to in JSON Lines over a socket pair (its stdin and
// stdout); stderr is inherited so that a plug-in's own messages reach the user.
//
// Contract: every call has a deadline. A plug-in that does not answer in time, exits, or
// answers with something that is not one line is killed (SIGKILL to its process group) and
// reaped, and the call throws aha::Error saying which of these happened; the object is then
// dead() and the owner starts a new one. Writing never raises SIGPIPE (MSG_NOSIGNAL). Not
// thread-safe: one caller at a time (reward/process_reward.cpp keeps a pool).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace aha::reward {

class PluginProcess {
 public:
  // Starts argv (argv[0] looked up on PATH). Throws aha::Error when it cannot be started.
  explicit PluginProcess(const std::vector<std::string>& argv);
  ~PluginProcess();
  PluginProcess(const PluginProcess&) = delete;
  PluginProcess& operator=(const PluginProcess&) = delete;

  // Sends one line (a newline is added) and returns the reply line without its newline.
  std::string exchange(const std::string& line, double timeout_seconds);
  bool dead() const { return pid_ <= 0; }
  // True when the process wrote something nobody asked for (or exited) since the last reply:
  // it is out of step and should be replaced before the next request.
  bool out_of_step();
  void kill_now();  // kill and reap; dead() afterwards

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string describe_exit(int status) const;

  std::string name_;  // argv joined, for messages
  pid_t pid_ = -1;
  int socket_ = -1;
  std::string buffer_;  // bytes read past the last line
};

}  // namespace aha::reward
