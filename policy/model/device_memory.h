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

}  // namespace aha
