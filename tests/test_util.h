// Helpers shared by the test suites.
#pragma once
#include <dirent.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"

namespace aha::test {

// The aha::Error message fn throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The non-empty lines of a text file (JSON Lines data sets).
inline std::vector<std::string> read_nonempty_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// A word quoted for the shell ('...').
inline std::string shell_quoted(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CommandOutcome {
  int exit_status = -1;  // -1 when it could not run or did not exit normally
  std::string out;       // stdout, and stderr too when asked for
};

// Runs the built `aha` binary with `arguments` (a shell command tail: quote words with
// shell_quoted where needed); stderr joins `out` with merge_stderr, else it is discarded.
// With timeout_seconds, coreutils' timeout ends a command that hangs (exit status 124), so a
// regression to a hang fails the test instead of stalling the suite.
// run_aha_in runs it with `working_dir` as the current directory (relative paths, runs/ ...).
inline CommandOutcome run_aha_in(const std::filesystem::path& working_dir, const std::string& arguments,
                                 bool merge_stderr, int timeout_seconds = 0) {
  const std::string cd = working_dir.empty() ? "" : "cd " + shell_quoted(working_dir.string()) + " && ";
  const std::string bounded = timeout_seconds > 0 ? "timeout -k 10 " + std::to_string(timeout_seconds) + " " : "";
  const std::string command =
      cd + bounded + std::string(AHA_BINARY_DIR) + "/aha " + arguments + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  CommandOutcome o;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return o;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) o.out.append(buffer, n);
  const int status = pclose(pipe);
  o.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

inline CommandOutcome run_aha(const std::string& arguments, bool merge_stderr, int timeout_seconds = 0) {
  return run_aha_in({}, arguments, merge_stderr, timeout_seconds);
}

// Host pids whose command line contains `marker` (e.g. a path under a test's folder): what a
// command left running.
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

}  // namespace aha::test
