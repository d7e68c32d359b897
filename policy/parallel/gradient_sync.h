// Data-parallel gradient reduction overlapped with the backward pass, as DDP's reducer does it:
// parameters are packed into buckets of about bucket_megabytes in reverse order of
// registration (roughly the order backward produces their gradients); a post-hook on each
// parameter's gradient accumulator marks it ready, and when all of a bucket's gradients are
// ready the bucket is flattened and its all-reduce launched asynchronously while backward goes
// on. Buckets are launched strictly in index order on every rank, so the collectives match.
//
// Use with gradient accumulation: arm() before the last micro-batch's backward (the earlier
// micro-batches only accumulate locally), then finish() after it: finish() launches buckets
// whose parameters got no gradient in that backward (their accumulated gradient, or zeros),
// waits for every bucket and writes the reduced values back into each parameter's .grad.
//
// ZeRO-2 (reduce_to_shard): instead of all-reducing a bucket, its gradient is reduced (summed)
// only to the ranks whose shard (shard_layout.h) overlaps it, one reduce per such rank, still
// launched from backward; finish() then leaves no parameter gradient at all (each is reset)
// and hands this rank's range of the reduced gradient over through take_shard_grad(). Local
// gradients are still accumulated whole during backward; only what outlives it is a shard.
//
// Reduction: `sum` (the loss was already normalised over the global batch, as the GRPO trainer
// does) or `average` (divide by the world size, as for a per-rank mean loss).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "policy/parallel/communicator.h"
#include "policy/parallel/shard_layout.h"

namespace aha::parallel {

enum class GradientReduction { sum, average };

class GradientSync {
 public:
  GradientSync(std::shared_ptr<Communicator> comm, std::vector<torch::Tensor> params, GradientReduction reduction,
               int64_t bucket_bytes);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  void arm();    // the next backward's finished gradients are reduced as they come
  void finish(const std::string& what = "all-reduce of gradients");  // see above
  bool armed() const { return armed_; }

  // ZeRO-2 from now on; `layout` must describe the parameters given above, in that order, over
  // the communicator's world. Throws aha::Error when it does not.
  void reduce_to_shard(const ShardLayout& layout);
  // The reduced gradient of this rank's range [range size] from the last finish() (ZeRO-2),
  // moved out (undefined afterwards).
  torch::Tensor take_shard_grad();

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  // How many buckets were launched from inside backward in the last armed pass (overlap).
  int64_t launched_during_backward() const { return launched_in_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    size_t ready = 0;
    torch::Tensor flat;  // on the communicator's device; parameters in increasing index order
    c10::intrusive_ptr<c10d::Work> work;              // all-reduce
    std::vector<c10::intrusive_ptr<c10d::Work>> reduces;  // ZeRO-2: one per owning rank
  };
  void on_ready(size_t param);  // from the autograd engine's thread
  void launch_ready_in_order();
  void launch(Bucket& b);

  std::shared_ptr<Communicator> comm_;
  std::vector<torch::Tensor> params_;
  GradientReduction reduction_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> param_ready_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive for the hooks
  std::vector<uintptr_t> hook_keys_;
  std::mutex mutex_;
  bool armed_ = false, in_finish_ = false;
  size_t next_launch_ = 0;
  int64_t launched_in_backward_ = 0;
  std::unique_ptr<ShardLayout> shards_;  // ZeRO-2 when set
  torch::Tensor shard_grad_;
};

}  // namespace aha::parallel
