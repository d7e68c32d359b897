// SandboxPool: results in submission order, and never more programs at once than its
// concurrency (checked from the programs' own start and end times).
#include <sched.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "sandbox/sandbox.h"

namespace aha::sandbox {
namespace {

TEST(SandboxPool, DefaultConcurrencyIsTheUsableCpus) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  SandboxPool pool;
  EXPECT_EQ(pool.concurrency(), static_cast<size_t>(CPU_COUNT(&set)));
  EXPECT_EQ(SandboxPool(3).concurrency(), 3u);
}

TEST(SandboxPool, EachSandboxIsPinnedToOneUsableCpu) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  SandboxPool pool;
  std::vector<SandboxRequest> requests(4);
  for (auto& r : requests)
    r.program = "import os\nif os.fork() == 0:\n    print(sorted(os.sched_getaffinity(0)), flush=True)\n    os._exit(0)\nos.wait()\n";
  for (const SandboxResult& r : pool.run_all(requests)) {
    ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
    // "[n]\n": one CPU, inherited by the program's child, and one this process may use.
    ASSERT_EQ(r.stdout_text.front(), '[');
    ASSERT_EQ(r.stdout_text.find(','), std::string::npos) << r.stdout_text;
    EXPECT_TRUE(CPU_ISSET(std::stoi(r.stdout_text.substr(1)), &set)) << r.stdout_text;
  }
  SandboxRequest own;
  own.program = "import os\nprint(sorted(os.sched_getaffinity(0)))\n";
  own.pin_cpu = 0;
  if (CPU_ISSET(0, &set)) {
    EXPECT_EQ(run_sandboxed(own).stdout_text, "[0]\n");
  }
  own.pin_cpu = -2;
  EXPECT_THROW(run_sandboxed(own), Error);
}

TEST(SandboxPool, ResultsComeBackInSubmissionOrder) {
  SandboxPool pool(2);
  std::vector<SandboxRequest> requests;
  for (int i = 0; i < 6; ++i) {
    SandboxRequest r;
    r.program = "import sys\nprint(" + std::to_string(i) + " * 11)\nsys.exit(" + std::to_string(i % 2) + ")\n";
    requests.push_back(r);
  }
  std::vector<SandboxResult> results = pool.run_all(requests);
  ASSERT_EQ(results.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(results[i].stdout_text, std::to_string(i * 11) + "\n");
    EXPECT_EQ(results[i].status, i % 2 ? SandboxStatus::runtime_error : SandboxStatus::ok);
  }
}

TEST(SandboxPool, NeverRunsMoreThanItsConcurrencyAtOnce) {
  SandboxPool pool(2);
  std::vector<std::future<SandboxResult>> futures;
  for (int i = 0; i < 6; ++i) {
    SandboxRequest r;
    r.program = "import time\nprint(time.time())\ntime.sleep(0.3)\nprint(time.time())\n";
    futures.push_back(pool.submit(r));
  }
  // Each program's [start, end] lies within its sandbox's lifetime, so at no instant may
  // more than two of these intervals overlap.
  std::vector<std::pair<double, int>> events;
  for (auto& f : futures) {
    SandboxResult r = f.get();
    ASSERT_EQ(r.status, SandboxStatus::ok) << r.to_json();
    std::istringstream lines(r.stdout_text);
    double start = 0, end = 0;
    lines >> start >> end;
    ASSERT_LT(start, end);
    events.push_back({start, +1});
    events.push_back({end, -1});
  }
  std::sort(events.begin(), events.end());  // an end before a start at the same instant
  int running = 0, most = 0;
  for (const auto& [time, delta] : events) most = std::max(most, running += delta);
  EXPECT_LE(most, 2);
  EXPECT_GE(most, 1);
}

}  // namespace
}  // namespace aha::sandbox
