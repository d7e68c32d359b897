// SandboxPool: at most `concurrency` sandboxes at a time, one per core by default.
#include <sched.h>

#include <thread>

#include "core/thread_pool.h"
#include "sandbox/sandbox.h"

namespace aha::sandbox {
namespace {

size_t usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

struct SandboxPool::Impl {
  explicit Impl(size_t n) : threads(n) {}
  ThreadPool threads;
};

SandboxPool::SandboxPool(size_t concurrency)
    : impl_(std::make_unique<Impl>(concurrency ? concurrency : usable_cpus())) {}

SandboxPool::~SandboxPool() = default;

size_t SandboxPool::concurrency() const { return impl_->threads.size(); }

std::future<SandboxResult> SandboxPool::submit(SandboxRequest request) {
  return impl_->threads.submit([request = std::move(request)] { return run_sandboxed(request); });
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
