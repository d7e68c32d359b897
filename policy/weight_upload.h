// Copying checkpoint tensors (CPU views of a memory-mapped file) into model weights.
//
// Into CPU weights this is copy_. Into CUDA weights, a plain copy_ from mapped memory is a
// slow pageable transfer that also takes every page fault on one thread, so on CUDA the bytes
// go through a ring of pinned staging buffers: all cores fault in and copy one chunk while
// the copy engine uploads the previous one. Dtype conversion, if any, happens on the GPU.
#pragma once
#include <torch/types.h>

#include <utility>
#include <vector>

namespace aha {

// Each pair is (destination weight, source CPU tensor of the same shape). Returns when every
// copy has finished.
void upload_weights(const std::vector<std::pair<torch::Tensor, torch::Tensor>>& copies);

}  // namespace aha
