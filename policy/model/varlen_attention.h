// Causal self-attention over sequences of different lengths packed along one token axis, with
// cumulative sequence lengths instead of a [T, T] mask: flash attention's variable-length kernel
// through LibTorch (at::_flash_attention_forward; LibTorch's autograd runs
// _flash_attention_backward with the same cumulative lengths), as torch.nn.attention.varlen_attn
// and transformers' flash_attention_2 packed path call it. The learner uses it for packed
// micro-batches (policy/learner/grpo_packing.h): attention costs sum_i L_i^2, not (sum_i L_i)^2,
// and no mask is ever materialised.
//
// Contract:
// - A packed layout is [B, T] rows with segment_ids (1, 2, ... per sequence within a row, 0 for
//   padding, as Transformer::hidden_states takes them). Every maximal run of equal segment ids
//   within a row (a padding run too) is one sequence of the B*T tokens flattened row-major.
//   varlen_layout() lists their boundaries (one host copy of segment_ids; call it once per
//   forward, not per layer).
// - varlen_causal_attention(q, k, v, layout, scale): q [N, Hq, D], k and v [N, Hkv, D] with
//   N = B*T and Hq a multiple of Hkv (grouped-query attention without repeating k and v).
//   Returns [N, Hq, D]: token i attends to the tokens j <= i of its own sequence, softmax of
//   scale * q.k. Differentiable in q, k and v. Float32 inputs under CUDA autocast are cast to the
//   autocast dtype first (autocast casts SDPA the same way); otherwise inputs must be fp16/bf16.
//   The result is in that half dtype. Outputs of padding runs are well defined but meaningless.
// - varlen_attention_supported(device, dtype, head_dim): whether the kernel runs for a model of
//   that device, weight dtype and head size: CUDA, bf16/fp16 weights or float32 weights under
//   CUDA autocast to a half type, head_dim a multiple of 8 up to 256. Where it does not, callers
//   use the block-diagonal mask (Transformer::hidden_states does; the CPU always does).
// - varlen_masked_attention(...) is the reference with the same arguments on any device: the
//   block-diagonal causal mask and scaled_dot_product_attention in float32 (the result is
//   float32 [N, Hq, D]); it materialises an [N, N] mask, so it is for tests and small inputs.
#pragma once
#include <torch/types.h>

namespace aha {

struct VarlenLayout {
  torch::Tensor cu_seqlens;  // [S + 1] int32 on the device: sequence starts in the flat tokens, then N
  int64_t max_seqlen = 0;    // the longest sequence (padding runs included)
  int64_t tokens = 0;        // N = B * T
  bool defined() const { return cu_seqlens.defined(); }
};

// Throws aha::Error when segment_ids is not [B, T] int or is empty.
VarlenLayout varlen_layout(const torch::Tensor& segment_ids, torch::Device device);

bool varlen_attention_supported(torch::Device device, torch::ScalarType dtype, int64_t head_dim);

// Throws aha::Error naming the tensor whose shape, device or dtype does not fit.
torch::Tensor varlen_causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const VarlenLayout& layout, double scale);

torch::Tensor varlen_masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const VarlenLayout& layout, double scale);

}  // namespace aha
