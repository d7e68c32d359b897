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
//
// Dtypes: a bucket holds parameters of one dtype (and one device) only; where the dtype changes
// along the reverse order a new bucket starts. So every gradient crosses the wire, and is summed,
// in its parameter's own dtype: a bf16 model's bf16 gradients in bf16, its float32 parameters'
// (DeepSeek-V3's router gate) in float32, never widened to the widest dtype. This is what DDP
// and FSDP do by default (reduce dtype = parameter dtype). Summing in bf16 rounds to bf16 (8
// significant bits) after each addition on the way through the ranks (Gloo does:
// gradient_sync_test.cpp shows it on 3 ranks; NCCL's rings keep their partial sums in the
// buffer's dtype too), so a sum over n ranks can differ from float32 summation rounded once by
// up to about (n - 1)/2 bf16 ulps; the local accumulation over micro-batches (.grad in bf16)
// rounds the same way. No option reduces bf16 gradients in float32 (it would move twice the
// bytes; FSDP's reduce_dtype or Megatron's grad_reduce_in_fp32 would be the model). ZeRO-2's shard
// (take_shard_grad) is assembled locally in the widest of the gradients' dtypes, where each
// reduced value is exact; only that rank-local buffer is wide, not what is sent.
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
  // Bytes this rank has given the gradient collectives so far: each launched bucket's gradients
  // in their dtype (the whole bucket for the all-reduce, each owner's part for ZeRO-2's reduces,
  // which add up to the same), so per armed pass the sum over the parameters of numel x their
  // element size.
  int64_t reduced_bytes() const { return reduced_bytes_; }
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
  int64_t reduced_bytes_ = 0;
  std::unique_ptr<ShardLayout> shards_;  // ZeRO-2 when set
  torch::Tensor shard_grad_;
};

}  // namespace aha::parallel
