// Where a benchmark's GPU time goes: runs a callable under LibTorch's Kineto profiler and prints
// (to `out`) the wall time, the time the GPU was busy (the union of its kernel and copy
// intervals: wall minus busy is the GPU waiting on the host), and the kernels that took the most
// time, summed by name. A profiling aid for the speed issues, not a figure of record: the
// profiler's own overhead lengthens the wall time a little.
//
//   print_kernel_profile("bf16 packed step", [&] { trainer.train_step(batch); }, std::cout);
//
// `run` must finish its GPU work before it returns (synchronize inside), so that every kernel
// falls inside the window. Kernel names are cut to 110 characters.
#pragma once
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace aha::bench {

inline void print_kernel_profile(const std::string& label, const std::function<void()>& run, std::ostream& out,
                                 size_t top = 30) {
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  const auto start = std::chrono::steady_clock::now();
  run();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const auto result = prof::disableProfiler();

  struct Total {
    double ms = 0;
    int64_t calls = 0;
  };
  std::map<std::string, Total> by_name;
  std::vector<std::pair<uint64_t, uint64_t>> intervals;
  double kernel_ms = 0;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA || e.durationNs() == 0) continue;
    auto& t = by_name[e.name().substr(0, 110)];
    t.ms += e.durationNs() / 1e6;
    ++t.calls;
    kernel_ms += e.durationNs() / 1e6;
    intervals.emplace_back(e.startNs(), e.endNs());
  }
  // The union of the device intervals: concurrent streams count once.
  std::sort(intervals.begin(), intervals.end());
  double busy_ms = 0;
  uint64_t open_start = 0, open_end = 0;
  for (const auto& [s, e] : intervals) {
    if (open_end == 0 || s > open_end) {
      busy_ms += (open_end - open_start) / 1e6;
      open_start = s, open_end = e;
    } else {
      open_end = std::max(open_end, e);
    }
  }
  busy_ms += (open_end - open_start) / 1e6;

  std::vector<std::pair<std::string, Total>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  out << "profile " << label << ": wall " << std::fixed << std::setprecision(1) << wall_ms << " ms, GPU busy "
      << busy_ms << " ms (" << std::setprecision(1) << 100.0 * busy_ms / wall_ms << "%), kernel sum " << kernel_ms
      << " ms over " << intervals.size() << " kernels and copies\n";
  for (size_t i = 0; i < rows.size() && i < top; ++i)
    out << "  " << std::setw(8) << std::setprecision(2) << rows[i].second.ms << " ms " << std::setw(6)
        << rows[i].second.calls << "x " << std::setw(5) << std::setprecision(1)
        << 100.0 * rows[i].second.ms / std::max(kernel_ms, 1e-9) << "%  " << rows[i].first << "\n";
  out << std::defaultfloat << std::flush;
}

}  // namespace aha::bench
