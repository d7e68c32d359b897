// Rotary position embeddings (RoPE) as in Hugging Face transformers' Qwen2/Llama, with the
// default, linear, dynamic (NTK) and llama3 frequency scalings, and YaRN (DeepSeek-V3).
#pragma once
#include <torch/types.h>

#include "policy/model/model_config.h"

namespace aha {

// Inverse frequencies [head_dim / 2] (float32) for a call whose largest position is
// max_position. Only the dynamic scaling depends on max_position: beyond
// max_position_embeddings it raises the base (stateless form of transformers' update).
torch::Tensor rope_inv_freq(const ModelConfig& config, int64_t max_position, torch::Device device);

// cos and signed sin tables [B, 1, T, head_dim] in `dtype` for positions [B, T] (int64);
// computed in float32 and cast, as transformers does. The second table is transformers' sin
// with its first half negated (what apply_rope takes). Both are multiplied by
// attention_factor in float32 first when it is not 1 (YaRN's RopeScaling::attention_factor).
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                     torch::ScalarType dtype, double attention_factor = 1.0);

// x * cos + rotate_half(x) * sin (bit for bit), x [B, heads, T, head_dim], with the tables of
// rope_cos_sin. On CUDA (bf16, fp16 or float32, one dtype for all three) forward and backward
// are one kernel launch each (cuda_rope.h), with LibTorch's roundings; elsewhere LibTorch's ops.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin);
// Always LibTorch's ops: the reference that the CUDA kernel is tested against.
torch::Tensor apply_rope_unfused(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin);

}  // namespace aha
