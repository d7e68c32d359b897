#include "policy/model/device_memory.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

namespace aha {

std::optional<int64_t> available_device_bytes(torch::Device device) {
#ifdef AHA_WITH_CUDA
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::cuda::current_device();  // "cuda" = current
    c10::cuda::CUDAGuard guard(index);
    size_t free_bytes = 0, total_bytes = 0;
    C10_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<int64_t>(free_bytes) + stats.reserved_bytes[aggregate].current -
           stats.allocated_bytes[aggregate].current;
  }
#endif
  (void)device;
  return std::nullopt;
}

}  // namespace aha
