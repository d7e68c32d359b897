// Helpers for the sandbox suites: a request carrying a unique marker in its argv, and a scan
// of the host's processes for that marker (every process the program forks keeps its argv),
// so that a test can assert that nothing it started survives the run.
#pragma once
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace aha::sandbox::testing {

inline std::string unique_marker() {
  static std::atomic<int> counter{0};
  return "aha-sandbox-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// A Python request whose processes all carry `marker` as their last argument.
inline SandboxRequest marked_request(const std::string& program, const std::string& marker) {
  SandboxRequest r;
  r.program = program;
  r.args = {marker};
  return r;
}

// Host pids whose command line contains `marker`.
inline std::vector<int> processes_with_marker(const std::string& marker) {
  std::vector<int> found;
  DIR* proc = opendir("/proc");
  if (!proc) return found;
  while (dirent* entry = readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + name + "/cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(marker) != std::string::npos) found.push_back(std::stoi(name));
  }
  closedir(proc);
  return found;
}

}  // namespace aha::sandbox::testing
