// SandboxPool: at most `concurrency` sandboxes at a time, one per core by default, each
// pinned to a core of its own.
#include <sched.h>

#include <mutex>
#include <thread>

#include "core/thread_pool.h"
#include "sandbox/sandbox.h"

namespace aha::sandbox {
namespace {

std::vector<int> usable_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

}  // namespace

struct SandboxPool::Impl {
  Impl(size_t n, std::vector<int> cpus) : cpus(std::move(cpus)), threads(n) {
    for (size_t slot = 0; slot < n; ++slot) free_slots.push_back(slot);
  }

  // A worker's slot while it runs a sandbox: slot i pins to cpus[i % cpus.size()]. At most
  // `concurrency` tasks run at once, so a slot is always free.
  size_t take_slot() {
    std::lock_guard<std::mutex> lock(mutex);
    size_t slot = free_slots.back();
    free_slots.pop_back();
    return slot;
  }
  void give_slot(size_t slot) {
    std::lock_guard<std::mutex> lock(mutex);
    free_slots.push_back(slot);
  }

  const std::vector<int> cpus;
  std::mutex mutex;
  std::vector<size_t> free_slots;
  ThreadPool threads;  // last: its destructor joins before the slots go
};

SandboxPool::SandboxPool(size_t concurrency) {
  std::vector<int> cpus = usable_cpus();
  const size_t n = concurrency ? concurrency : std::max<size_t>(1, cpus.size());
  impl_ = std::make_unique<Impl>(n, std::move(cpus));
}

SandboxPool::~SandboxPool() = default;

size_t SandboxPool::concurrency() const { return impl_->threads.size(); }

std::future<SandboxResult> SandboxPool::submit(SandboxRequest request) {
  Impl* impl = impl_.get();
  return impl->threads.submit([impl, request = std::move(request)]() mutable {
    const size_t slot = impl->take_slot();
    if (request.pin_cpu < 0 && !impl->cpus.empty()) request.pin_cpu = impl->cpus[slot % impl->cpus.size()];
    struct Release {
      Impl* impl;
      size_t slot;
      ~Release() { impl->give_slot(slot); }
    } release{impl, slot};
    return run_sandboxed(request);
  });
}

std::vector<SandboxResult> SandboxPool::run_all(std::vector<SandboxRequest> requests) {
  std::vector<std::future<SandboxResult>> futures;
  futures.reserve(requests.size());
  for (auto& r : requests) futures.push_back(submit(std::move(r)));
  std::vector<SandboxResult> results;
  results.reserve(futures.size());
  for (auto& f : futures) results.push_back(f.get());
  return results;
}

}  // namespace aha::sandbox
