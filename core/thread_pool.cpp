#include "core/thread_pool.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace aha {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  try {
    workers_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  } catch (const std::exception& e) {
    // Out of threads or memory: the workers already started must be joined here (a joinable
    // std::thread left to its destructor would terminate the process).
    const size_t started = workers_.size();
    stop_and_join();
    throw Error("thread pool: could not start thread " + std::to_string(started + 1) + " of " +
                std::to_string(threads) + " (" + e.what() + "); ask for fewer threads");
  }
}

ThreadPool::~ThreadPool() { stop_and_join(); }

void ThreadPool::stop_and_join() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void ThreadPool::work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop();
    }
    task();  // packaged_task stores any exception in its future
  }
}

}  // namespace aha
