// The throughput loop the reward benchmarks share: how many items a second a piece of work
// handles, timed over at least one second.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <iostream>

namespace aha::bench {

// Calls `work` (which handles `batch` items and returns anything that depends on its result)
// until at least a second has passed; items/s.
inline double items_per_second(size_t batch, const std::function<size_t()>& work) {
  size_t items = 0, guard = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    guard += work();
    items += batch;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < 1.0);
  if (guard == static_cast<size_t>(-1)) std::cout << "";  // keep the work observable
  return static_cast<double>(items) / elapsed;
}

}  // namespace aha::bench
