// Killing `aha` mid-run for the kill -9 tests: start it as a child process, wait until a
// condition on its files holds, SIGKILL it; and the check that an SFT export holds every
// prompt exactly once.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/files.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace aha::test {

inline size_t count_lines(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return 0;
  std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Starts `aha words...` (stdout and stderr discarded), waits until ready() holds, and kills it
// with SIGKILL. Returns true when it was killed that way; false when it ended on its own first
// (the test then tested nothing and should say so).
inline bool kill_aha_when(const std::vector<std::string>& words, const std::function<bool()>& ready) {
  pid_t child = fork();
  if (child < 0) return false;
  if (child == 0) {
    std::vector<std::string> argv_words = {std::string(AHA_BINARY_DIR) + "/aha"};
    argv_words.insert(argv_words.end(), words.begin(), words.end());
    std::vector<char*> argv;
    for (auto& w : argv_words) argv.push_back(w.data());
    argv.push_back(nullptr);
    if (!std::freopen("/dev/null", "w", stderr) || !std::freopen("/dev/null", "w", stdout)) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // The bound only keeps a broken build from hanging the suite.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  int status = 0;
  while (!ready() && std::chrono::steady_clock::now() < give_up) {
    if (waitpid(child, &status, WNOHANG) == child) return false;  // ended on its own
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Every prompt index 0..n-1 exactly once in an SFT export (and every line whole JSON).
inline void expect_each_prompt_once(const std::filesystem::path& out, int n) {
  std::multiset<int> indices;
  for (const auto& line : read_nonempty_lines(out)) {
    auto d = json::parse(line, out.string());  // a torn line would fail here
    indices.insert(d["provenance"]["prompt_index"].GetInt());
  }
  EXPECT_EQ(indices.size(), static_cast<size_t>(n));                             // no duplicate ...
  for (int i = 0; i < n; ++i) EXPECT_EQ(indices.count(i), 1u) << "prompt " << i;  // ... none missing
}

}  // namespace aha::test
