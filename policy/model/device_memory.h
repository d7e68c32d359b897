// How much memory a device can still give: what the driver has free plus what LibTorch's
// caching allocator holds without using it. For decisions made before a large allocation (the
// rollout memory plan, whether the learner keeps its logits for backward).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <optional>

namespace aha {

// Bytes available on a CUDA device; nullopt on the CPU (no limit known).
std::optional<int64_t> available_device_bytes(torch::Device device);

// Bytes the host can still give without swapping (MemAvailable in /proc/meminfo, else the
// free physical pages); nullopt when neither can be read.
std::optional<int64_t> available_host_bytes();

// What a large allocation on `device` may take: available_device_bytes on CUDA, the host's on
// the CPU. For checks that turn an impossible request into an error before it allocates.
std::optional<int64_t> allocatable_bytes(torch::Device device);

}  // namespace aha
