#include "policy/model/device_memory.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

#include <unistd.h>

#include <fstream>
#include <string>

namespace aha {

std::optional<int64_t> available_device_bytes(torch::Device device) {
#ifdef AHA_WITH_CUDA
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::cuda::current_device();  // "cuda" = current
    c10::cuda::CUDAGuard guard(index);
    size_t free_bytes = 0, total_bytes = 0;
    C10_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    // Before the process's first CUDA allocation the caching allocator is not initialised and
    // its statistics throw ("Invalid device argument"); it then holds nothing, so the driver's
    // free memory is the whole answer.
    int64_t cached_unused = 0;
    try {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
      const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
      cached_unused = stats.reserved_bytes[aggregate].current - stats.allocated_bytes[aggregate].current;
    } catch (const c10::Error&) {
      cached_unused = 0;
    }
    return static_cast<int64_t>(free_bytes) + cached_unused;
  }
#endif
  (void)device;
  return std::nullopt;
}

std::optional<int64_t> available_host_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    int64_t kib = 0;
    if (key == "MemAvailable:" && meminfo >> kib) return kib * 1024;
    meminfo.ignore(1 << 16, '\n');
  }
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return int64_t(pages) * page;
  return std::nullopt;
}

std::optional<int64_t> allocatable_bytes(torch::Device device) {
  return device.is_cpu() ? available_host_bytes() : available_device_bytes(device);
}

}  // namespace aha
