// The parent's side of one sandboxed run: clones the sandbox's init with the chosen
// namespaces, writes the user namespace's id maps, feeds stdin, collects stdout/stderr up to
// their cap, enforces the wall-clock limit, kills the whole process tree at the end (the PID
// namespace's init and the process group) and reaps it. Knows nothing of statuses: it
// returns what happened and sandbox.cpp judges it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/child.h"

namespace aha::sandbox {

struct SupervisionInput {
  int clone_flags = 0;
  bool root = false;
  int program_host_uid = -1;  // owner for the stdio pipes (so /dev/stdin opens), -1: keep
  std::string_view stdin_data;  // must outlive supervise()
  double wall_seconds = 0;
  int64_t max_output_bytes = 0;
};

struct Supervision {
  enum class Stop { none, wall_timeout, output_limit };
  Stop stop = Stop::none;
  // The sandbox could not start: a parent-side failure (clone, id maps) with its message.
  std::string parent_failure;
  bool user_namespace_failed = false;  // parent_failure came from writing the id maps
  std::vector<ChildReport> reports;    // from the children, in order
  bool have_program_status = false;
  int program_status = 0;  // wait status of the program process
  int init_status = 0;     // wait status of the sandbox's init
  std::string stdout_text, stderr_text;
  bool stdout_truncated = false, stderr_truncated = false;
  bool stray_output_holder = false;  // a pipe stayed open after everything was killed
  double wall_seconds = 0;
  double cpu_seconds = 0;
};

Supervision supervise(ChildPlan& plan, const SupervisionInput& input);

}  // namespace aha::sandbox
