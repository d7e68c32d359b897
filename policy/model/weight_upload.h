// Copying checkpoint tensors from safetensors files into model weights.
//
// Into CPU weights this is a copy_ from the memory-mapped file. Into CUDA weights, copying
// from the mapping would take every page fault on one thread and go through a slow pageable
// transfer, so on CUDA each file's data section is read with parallel pread calls into a ring
// of pinned buffers while the copy engine uploads the previous buffer into one device buffer;
// the weights are then filled from it on the device (converting dtype there if needed). The
// device buffer is as large as the file's data and is freed before returning.
#pragma once
#include <torch/types.h>

#include <vector>

#include "policy/model/safetensors.h"

namespace aha {

struct WeightCopy {
  torch::Tensor destination;      // a model weight
  const SafetensorsFile* file;    // where its values are
  const SafetensorsEntry* entry;  // same shape as destination (checked by the caller)
};

// Returns when every copy has finished.
void upload_weights(const std::vector<WeightCopy>& copies);

}  // namespace aha
