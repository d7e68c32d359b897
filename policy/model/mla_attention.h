// Multi-head latent attention (MLA), DeepSeek-V3's attention, as transformers' DeepseekV3Attention
// computes it, plus the decode form DeepSeek designed it for: attention over the compressed
// latent cache with kv_b_proj's up-projections absorbed into the query and the output.
//
// Shapes (nh heads, dn = qk_nope_head_dim, dr = qk_rope_head_dim, dv = v_head_dim,
// r = kv_lora_rank):
//   q      = q_proj(x), or q_b_proj(RMSNorm(q_a_proj(x)))         [B, nh, T, dn + dr]
//   latent = RMSNorm(kv_a_proj_with_mqa(x)[:r])                     [B, 1, T, r]
//   k_rope = rope(kv_a_proj_with_mqa(x)[r:])                        [B, 1, T, dr] (one for all heads)
//   k = [kv_b_proj(latent)[:, h, :dn], k_rope], v = kv_b_proj(latent)[:, h, dn:]
// The rotary dims are interleaved pairs in DeepSeek's weights (rope_interleave): they are
// de-interleaved before the rotation, which gives transformers' apply_rotary_pos_emb_interleave
// bit for bit; queries and keys share that layout, so the cache holds rotated keys in it.
//
// The cache (KVCache of transformer.h) for an MLA model holds per layer keys = latent
// [B, 1, capacity, r] and values = k_rope [B, 1, capacity, dr]: r + dr values per token and layer.
// Since q.k_nope = (W_uk^T q_nope).latent, and the value is W_uv latent, attention over the
// latents with the absorbed query [W_uk^T q_nope, q_rope] gives the same result as the expanded
// keys and values, without ever expanding the cache.
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/model/model_config.h"
#include "policy/model/varlen_attention.h"
#include "policy/model/weight_memory.h"

namespace aha {

struct MlaWeights {
  torch::Tensor q_proj;                          // [nh (dn + dr), H] when q_lora_rank is 0
  torch::Tensor q_a_proj, q_a_bias, q_a_norm;    // [q_lora_rank, H], [q_lora_rank] (bias: attention_bias)
  torch::Tensor q_b_proj;                        // [nh (dn + dr), q_lora_rank]
  torch::Tensor kv_a_proj, kv_a_bias, kv_a_norm;  // [r + dr, H], [r + dr], [r]
  torch::Tensor kv_b_proj;                       // [nh (dn + dv), r]
  torch::Tensor o_proj, o_bias;                  // [H, nh dv], [H]
};

// Uninitialised weights of `options` for one layer of config c (without memory: weight_memory.h).
MlaWeights allocate_mla_weights(const ModelConfig& c, const torch::TensorOptions& options,
                                WeightMemory memory = WeightMemory::allocated);

// The layer's tensors with their checkpoint names (prefix "model.layers.<i>.self_attn."), in
// transformers' order; undefined ones are skipped.
void append_mla_parameters(const MlaWeights& w, const std::string& prefix,
                           std::vector<std::pair<std::string, torch::Tensor>>& out);

// The full forward over a sequence (training, teacher forcing), x [B, T, H] -> [B, T, H].
// cos/sin: rope_cos_sin tables [B, 1, T, dr]; mask: [B, 1, T, T] bool (true: may attend) or
// undefined for plain causal attention. varlen: packed sequences through the variable-length
// flash kernel instead of a mask (varlen_attention.h; the caller checks mla_varlen_head_dim(c)
// with varlen_attention_supported): the query/key and value head sizes differ in MLA (192 and
// 128 in DeepSeek-V3), so both are zero-padded to one size, which leaves q.k and the values'
// columns unchanged, and the output is cut back to v_head_dim.
torch::Tensor mla_attention(const ModelConfig& c, const MlaWeights& w, const torch::Tensor& x,
                            const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& mask,
                            const VarlenLayout* varlen = nullptr);

// The head size the variable-length kernel sees for MLA: max(qk_nope + qk_rope, v_head_dim),
// rounded up to a multiple of 8.
int64_t mla_varlen_head_dim(const ModelConfig& c);

// The cached forward over new tokens x [B, S, H] at cache slots `slots` [S]: writes their
// latents and rotated rope keys into cache_latent [B, 1, cap, r] and cache_rope [B, 1, cap, dr],
// then attends over slots [0, L) with the absorbed query. mask: [B, 1, S, L] additive (0/-inf).
torch::Tensor mla_cached_attention(const ModelConfig& c, const MlaWeights& w, const torch::Tensor& x,
                                   const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& slots,
                                   const torch::Tensor& mask, torch::Tensor& cache_latent, torch::Tensor& cache_rope);

}  // namespace aha
