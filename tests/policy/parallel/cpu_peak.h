// The peak of the CPU memory LibTorch allocates while a function runs, counted by a CPU
// allocator of the test's own (zero3_load_test.cpp: the sharded load; zero3_save_test.cpp and
// its scenarios: the streamed checkpoint save).
#pragma once
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>

namespace aha::parallel::testing {

// Counts what the CPU allocator hands out while installed: live bytes and their peak.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}
  c10::DataPtr allocate(size_t n) override {
    auto* context = new Context{inner_->allocate(n), n, this};
    const int64_t live = live_ += static_cast<int64_t>(n);
    int64_t peak = peak_.load();
    while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
    }
    return {context->inner.get(), context, &release, context->inner.device()};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
  int64_t peak() const { return peak_; }
  int64_t live() const { return live_; }
  void reset_peak() { peak_ = live_.load(); }

 private:
  struct Context {
    c10::DataPtr inner;
    size_t bytes;
    CountingAllocator* owner;
  };
  static void release(void* p) {
    auto* context = static_cast<Context*>(p);
    context->owner->live_ -= static_cast<int64_t>(context->bytes);
    delete context;
  }
  c10::Allocator* inner_;
  std::atomic<int64_t> live_{0}, peak_{0};
};

inline CountingAllocator& counting_cpu_allocator() {
  static CountingAllocator counting(c10::GetCPUAllocator());  // outlives every tensor it allocates
  return counting;
}
inline bool& counting_for_good() {
  static bool installed = false;
  return installed;
}
constexpr uint8_t kCountingPriority = 100;  // above the default CPU allocator's registration

// Counts every CPU allocation from now on: tensors made later keep the counting allocator as
// theirs, so memory a storage allocates again later through it (ZeRO-3's parameters, gathered
// into the storage they were made with) is counted too, which peak_cpu_bytes alone misses for
// tensors made before it runs. For a scenario process, before its model is made.
inline void count_cpu_allocations() {
  if (counting_for_good()) return;
  (void)counting_cpu_allocator();
  c10::SetCPUAllocator(&counting_cpu_allocator(), kCountingPriority);
  counting_for_good() = true;
}

// The peak of the CPU memory allocated while `f` runs, above what was live when it started:
// what the CPU allocator hands out meanwhile (and, after count_cpu_allocations, what storages made
// since allocate through it).
inline int64_t peak_cpu_bytes(const std::function<void()>& f) {
  auto& counting = counting_cpu_allocator();
  counting.reset_peak();
  const int64_t before = counting.live();
  if (counting_for_good()) {
    f();
    return counting.peak() - before;
  }
  c10::Allocator* const inner = c10::GetCPUAllocator();
  c10::SetCPUAllocator(&counting, kCountingPriority);
  try {
    f();
  } catch (...) {
    c10::SetCPUAllocator(inner, kCountingPriority);
    throw;
  }
  c10::SetCPUAllocator(inner, kCountingPriority);
  return counting.peak() - before;
}

}  // namespace aha::parallel::testing
