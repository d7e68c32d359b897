// Helpers for the sandbox suites: a request carrying a unique marker in its argv, and a scan
// of the host's processes for that marker (every process the program forks keeps its argv),
// so that a test can assert that nothing it started survives the run.
#pragma once
#include <unistd.h>

#include <atomic>
#include <string>

#include "sandbox/sandbox.h"
#include "tests/test_util.h"

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

using aha::test::processes_with_marker;

}  // namespace aha::sandbox::testing
