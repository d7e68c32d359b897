// A fixed-size thread pool for CPU work that runs beside the GPU (tokenising, rewards).
//
// submit() returns a std::future; an exception thrown by the task is delivered through it.
// The destructor finishes queued tasks and joins. A thread the system refuses to start makes
// the constructor throw aha::Error (after joining the ones it started). Not for tensor math:
// LibTorch has its own.
#pragma once
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <type_traits>
#include <vector>

namespace aha {

class ThreadPool {
 public:
  // threads == 0 means one per hardware thread.
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }

  template <typename F>
  auto submit(F&& task) -> std::future<std::invoke_result_t<F>> {
    using Result = std::invoke_result_t<F>;
    auto packaged = std::make_shared<std::packaged_task<Result()>>(std::forward<F>(task));
    auto future = packaged->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.emplace([packaged] { (*packaged)(); });
    }
    ready_.notify_one();
    return future;
  }

 private:
  void work();
  void stop_and_join();
  std::vector<std::thread> workers_;
  std::queue<std::function<void()>> queue_;
  std::mutex mutex_;
  std::condition_variable ready_;
  bool stopping_ = false;
};

}  // namespace aha
