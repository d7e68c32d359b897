// Whether a model's weights are created with their memory or without: ZeRO-3's sharded load
// (policy/learner/fully_sharded.h) makes the Transformer's parameters with their shape, dtype
// and device but no memory, as FullyShardedParameters keeps them between uses, so that the
// whole model never exists on one device.
#pragma once
#include <torch/types.h>

namespace aha {

enum class WeightMemory { allocated, none };

// An uninitialised weight; WeightMemory::none: a zero-byte storage of the device's allocator
// (the one that later gives it memory) under the weight's sizes, the state in which
// FullyShardedParameters frees a parameter. Such a tensor must not be read or viewed until
// its storage is allocated.
inline torch::Tensor new_weight(at::IntArrayRef sizes, const torch::TensorOptions& options, WeightMemory memory) {
  if (memory == WeightMemory::allocated) return torch::empty(sizes, options);
  auto t = torch::empty({0}, options);
  t.unsafeGetTensorImpl()->set_sizes_contiguous(sizes);
  return t;
}

}  // namespace aha
