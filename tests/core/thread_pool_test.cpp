#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

TEST(ThreadPool, RunsAllTasksAndDeliversExceptions) {
  aha::ThreadPool pool(3);
  std::atomic<int> sum{0};
  std::vector<std::future<int>> results;
  for (int i = 1; i <= 100; ++i) results.push_back(pool.submit([i, &sum] { sum += i; return i * i; }));
  long squares = 0;
  for (auto& f : results) squares += f.get();
  EXPECT_EQ(sum.load(), 5050);
  EXPECT_EQ(squares, 338350);
  auto bad = pool.submit([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_THROW(bad.get(), std::runtime_error);
}
