// Weight sync from the learner to rollout workers (asynchronous GRPO's split layout, issue 17):
// the root rank's tensors reach every rank of a communicator by c10d broadcasts (Gloo on the
// CPU, NCCL on GPUs), after the policy version they make up.
//
// Contract:
// - Every rank calls sync_weights with tensors of the same shapes and dtypes in the same order
//   (the same model config's parameters and buffers); the root's values are written into the
//   others' tensors in place (under no-grad), bit for bit. The root's tensors are only read.
// - The version (the learner updates behind the weights) is broadcast first as one int64;
//   every rank returns it, so a worker knows which policy version it samples with.
// - Tensors go in buckets of at most bucket_bytes (plan_buckets): consecutive tensors on one
//   device packed as bytes into one flat buffer (any dtypes together), one broadcast per
//   bucket on the communicator's device; a tensor larger
//   than bucket_bytes is a bucket of its own. Fewer, larger messages reach the link's bandwidth;
//   bounded buckets bound the extra memory to one bucket (the flat buffer) per rank.
// - A broadcast that fails or times out throws aha::Error from the communicator, naming it.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "policy/parallel/communicator.h"

namespace aha::parallel {

// Indices of `tensors`, bucket by bucket, in order (see above). Throws aha::Error when
// bucket_bytes <= 0 or a tensor is undefined.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes);

struct WeightSyncResult {
  int64_t version = 0;  // the root's
  int64_t bytes = 0;    // tensor bytes broadcast (the version's 8 not counted)
  int64_t buckets = 0;
  double seconds = 0;   // on this rank, from the version's broadcast to the last bucket unpacked
};

// Broadcasts `version` and `tensors` from rank `root` (see above); the version argument is only
// read on the root.
WeightSyncResult sync_weights(Communicator& comm, const std::vector<torch::Tensor>& tensors, int64_t version,
                              int root, int64_t bucket_bytes);

}  // namespace aha::parallel
