// The routed experts of a mixture-of-experts layer: given tokens, the experts a router chose for
// each and their weights, run every chosen expert's SwiGLU MLP and add the results back weighted.
// Routing (which experts, with what weights: Qwen3's softmax top-k in moe_routing.h, or
// DeepSeek-V3's sigmoid grouped top-k) is the caller's; so are shared experts, which are plain
// dense MLPs. This file only computes
//
//   out[n] = sum_j weights[n, j] * down_e (silu(gate_e x[n]) * up_e x[n]),   e = experts[n, j]
//
// Interface (all tensors on one device):
//   x        [N, H]     the tokens (model dtype)
//   experts  [N, k]     int64 expert ids in [0, E); repeats within a row are allowed
//   weights  [N, k]     floating; the product is in the wider of its and x's dtype, then cast to
//                       x's (transformers: Qwen3-MoE's are x's dtype, DeepSeek-V3's float32)
//   gate_up  [E, 2I, H] each expert's gate rows then up rows (transformers 5's fused layout)
//   down     [E, H, I]
//   returns  [N, H] in x's dtype, differentiable in x, weights, gate_up and down
//
// How: the N*k (token, expert) pairs are sorted by expert (token permutation), so that each
// expert's tokens form one contiguous slice of a [N*k, H] copy of x; each slice goes through its
// expert's two products; the outputs are scaled by their weights and scatter-added (index_add)
// back to their tokens. The products are either a loop over the experts that received tokens
// (the CPU path, and CUDA outside bf16: it reads the per-expert counts on the host) or one
// grouped GEMM per projection (at::_grouped_mm with the slices' end offsets: no host sync, so a
// CUDA graph can capture it), chosen by ExpertKernel.
#pragma once
#include <torch/types.h>

namespace aha {

enum class ExpertKernel {
  automatic,  // grouped where grouped_experts_apply() says so, the loop elsewhere
  loop,       // one pair of products per expert that received tokens
  grouped,    // at::_grouped_mm (LibTorch also runs it on the CPU: tests use that to compare)
};

torch::Tensor routed_experts(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                             const torch::Tensor& gate_up, const torch::Tensor& down,
                             ExpertKernel kernel = ExpertKernel::automatic);

// The token permutation of a routed layer: its N*k (token, slot) pairs, pair p = token * k +
// slot, sorted by expert (stably, so each expert's tokens stay in token order). Both moves are
// gathers, forward and backward, so nothing is summed with atomics (which in bf16 would round
// once per addend, in whatever order the threads meet, and which serialise on a token's k rows).
struct TokenPermutation {
  int64_t k = 0;
  torch::Tensor order;        // [N*k] the pair at each sorted position
  torch::Tensor position_of;  // [N*k] the sorted position of each pair (order's inverse)
  torch::Tensor token_of;     // [N*k] the token at each sorted position

  // experts [N, k] int64 (the ids chosen for each token).
  static TokenPermutation of(const torch::Tensor& experts);
  // x [N, H] -> [N*k, H]: each sorted position's token row. Its gradient sums a token's k rows.
  torch::Tensor dispatch(const torch::Tensor& x) const;
  // rows [N*k, H] in sorted order -> [N, H]: each token's k rows summed (accumulated in float32
  // and rounded once to rows' dtype). Its gradient copies a token's row to each of its k.
  torch::Tensor combine(const torch::Tensor& rows) const;
};

// The routed experts computed elsewhere than in this process alone: expert parallelism
// (policy/learner/expert_parallel.h), where each rank holds a contiguous slice of a layer's
// experts and tokens travel to their experts' owners and back. The transformer calls it instead
// of routed_experts() when one is set (Transformer::set_expert_dispatch). Same contract as
// routed_experts(), except that gate_up and down hold only this rank's experts while the ids in
// `experts` stay global, and that every rank must call it for the same layers in the same order
// (it is collective).
class ExpertDispatch {
 public:
  virtual ~ExpertDispatch() = default;
  virtual torch::Tensor routed_experts(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                                       const torch::Tensor& gate_up, const torch::Tensor& down) const = 0;
};

// Whether ExpertKernel::automatic takes the grouped GEMM for these tensors: CUDA, bfloat16,
// compute capability 9.0 or newer (where LibTorch's grouped GEMM runs), and H and I multiples of
// 8 (its 16-byte row alignment). The rollout engine asks this before capturing CUDA graphs.
bool grouped_experts_apply(torch::Device device, torch::ScalarType dtype, int64_t hidden, int64_t intermediate);

}  // namespace aha
