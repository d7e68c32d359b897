// Expert parallelism over the data-parallel world (recipe parallel.expert_parallel): each rank
// holds only a contiguous slice of every MoE layer's routed experts (n_routed_experts / world,
// rank r the experts [r E/W, (r+1) E/W)); everything else (attention, router, shared experts,
// dense layers, norms, embeddings) stays replicated and is all-reduced as under plain data
// parallelism.
//
// In each MoE layer every rank routes its own tokens, then (ExpertParallel::routed_experts):
//   1. the (token, expert) pairs are sorted by expert, as moe.h's token permutation does;
//   2. the per-expert counts are exchanged (an all-to-all of [E] int64), so each rank knows how
//      many rows it will receive from each rank for each of its experts;
//   3. the rows go to their experts' owners (all-to-all of the hidden states);
//   4. the owner runs its experts on them through moe.h's routed_experts (grouped GEMM where it
//      applies) with weight 1;
//   5. the outputs come back by the reverse all-to-all and are combined with the routing
//      weights exactly as routed_experts combines them.
// Both all-to-alls are autograd functions whose backward is the reverse all-to-all, so backward
// brings every rank's gradient for an expert to its owner. The owner's expert gradient is then
// already the sum over the world's tokens: with the GRPO trainer's loss, normalised over the
// global mini-batch, that is exactly plain data parallelism's all-reduced (summed) gradient, so
// expert parameters are left out of the all-reduce and need no scaling (a per-rank mean loss,
// GradientReduction::average, would divide them by the world size: expert_gradient_scale()).
//
// Every forward of a model with the dispatch set is collective: every rank must run the same
// MoE layers the same number of times (the trainer's equal rows per rank guarantee it).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/learner/optimizer.h"
#include "policy/model/moe.h"
#include "policy/model/transformer.h"
#include "policy/parallel/communicator.h"

namespace aha::policy {

// Whether a parameter name (Transformer::named_parameters) is a stacked routed-expert tensor.
bool is_routed_expert_parameter(const std::string& name);

// Throws aha::Error unless `config` can be split over `world_size` ranks (an MoE model whose
// n_routed_experts is divisible by the world size), naming what is wrong.
void check_expert_parallel(const ModelConfig& config, int world_size);

class ExpertParallel : public ExpertDispatch {
 public:
  // Shards `model`'s routed experts to this rank's slice (every rank must hold the same whole
  // weights before: the trainer broadcasts rank 0's first; experts that already hold the rank's
  // slice, as ZeRO-3's sharded load leaves them, are kept) and sets itself as the model's
  // dispatch. The expert parameter tensors keep their identity (optimizer groups and
  // gradient hooks stay valid); only their size changes.
  ExpertParallel(std::shared_ptr<parallel::Communicator> comm, Transformer& model);
  ~ExpertParallel() override;

  torch::Tensor routed_experts(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                               const torch::Tensor& gate_up, const torch::Tensor& down) const override;

  int64_t experts_per_rank() const { return local_; }
  int64_t first_expert() const { return local_ * comm_->rank(); }
  // This rank's expert parameters (local, never all-reduced) and the others (replicated, with
  // their names, in the model's order).
  const std::vector<torch::Tensor>& expert_parameters() const { return expert_params_; }
  std::vector<std::pair<std::string, torch::Tensor>> replicated_parameters() const;

  // Collective: the whole model's weights into `to` (same config; any dtype, e.g. the rollout
  // copy in the compute dtype): replicated tensors copied, each layer's experts all-gathered in
  // `to`'s dtype. Buffers (the routing bias) copied too.
  void gather_into(Transformer& to) const;
  // Collective: only `to`'s routed experts, all-gathered in its dtype (ZeRO-3 with expert
  // parallelism: fully_sharded.h's copy_into fills the rest).
  void gather_experts_into(Transformer& to) const;
  // Collective, for checkpoints: the model's expert tensors whole again (all-gathered; the
  // dispatch is removed), and with `optimizer` their AdamW moments (and, fp32_master, their
  // float32 masters) too, so that the checkpoint
  // is the one plain data parallelism writes (the Hugging Face model once, whole optimizer
  // state), until scatter_back() slices them all again. Resuming loads whole between the two.
  // (Not for a zero3 checkpoint's model, which streams the experts one matrix at a time:
  // fully_sharded.h's stream_checkpoint.)
  void gather_whole(Optimizer* optimizer = nullptr);
  void scatter_back(Optimizer* optimizer = nullptr);

 private:
  std::shared_ptr<parallel::Communicator> comm_;
  Transformer& model_;
  int64_t experts_ = 0, local_ = 0;
  std::vector<torch::Tensor> expert_params_;
};

}  // namespace aha::policy
