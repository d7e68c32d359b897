#include "policy/model/mla_attention.h"

#include <ATen/ops/_safe_softmax.h>

#include <algorithm>

#include "policy/model/rotary.h"
#include "policy/model/transformer.h"

namespace aha {
namespace {

// transformers builds q_a_layernorm and kv_a_layernorm with RMSNorm's default eps, not
// config.rms_norm_eps.
constexpr double kLatentNormEps = 1e-6;

// [B, heads, T, dr] rotated as transformers does for DeepSeek-V3: interleaved pairs
// (x0, x1), (x2, x3), ... become halves [x0, x2, ...; x1, x3, ...] and then rotate_half's rope.
torch::Tensor rope_part(const ModelConfig& c, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  if (!c.mla.rope_interleave) return apply_rope(x, cos, sin);
  auto halves = x.unflatten(-1, {x.size(-1) / 2, 2}).transpose(-1, -2).flatten(-2);
  return apply_rope(halves, cos, sin);
}

// [B, nh, T, dn + dr]
torch::Tensor queries(const ModelConfig& c, const MlaWeights& w, const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = c.mla.q_lora_rank > 0
               ? torch::linear(rms_norm(torch::linear(x, w.q_a_proj, w.q_a_bias), w.q_a_norm, kLatentNormEps), w.q_b_proj)
               : torch::linear(x, w.q_proj);
  return q.view({B, T, c.num_attention_heads, c.mla.qk_head_dim()}).transpose(1, 2);
}

// The latent [B, 1, T, r] (normalised) and the rope key [B, 1, T, dr] (not yet rotated).
std::pair<torch::Tensor, torch::Tensor> compressed_kv(const ModelConfig& c, const MlaWeights& w, const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), r = c.mla.kv_lora_rank, dr = c.mla.qk_rope_head_dim;
  auto ckv = torch::linear(x, w.kv_a_proj, w.kv_a_bias);  // [B, T, r + dr]
  auto latent = rms_norm(ckv.narrow(-1, 0, r), w.kv_a_norm, kLatentNormEps).view({B, 1, T, r});
  auto k_rope = ckv.narrow(-1, r, dr).reshape({B, 1, T, dr});
  return {latent, k_rope};
}

}  // namespace

MlaWeights allocate_mla_weights(const ModelConfig& c, const torch::TensorOptions& options, WeightMemory memory) {
  const auto& m = c.mla;
  const int64_t H = c.hidden_size, nh = c.num_attention_heads;
  auto mat = [&](int64_t out, int64_t in) { return new_weight({out, in}, options, memory); };
  auto vec = [&](int64_t n) { return new_weight({n}, options, memory); };
  MlaWeights w;
  if (m.q_lora_rank > 0) {
    w.q_a_proj = mat(m.q_lora_rank, H);
    if (c.attention_bias) w.q_a_bias = vec(m.q_lora_rank);
    w.q_a_norm = vec(m.q_lora_rank);
    w.q_b_proj = mat(nh * m.qk_head_dim(), m.q_lora_rank);
  } else {
    w.q_proj = mat(nh * m.qk_head_dim(), H);
  }
  w.kv_a_proj = mat(m.kv_lora_rank + m.qk_rope_head_dim, H);
  if (c.attention_bias) w.kv_a_bias = vec(m.kv_lora_rank + m.qk_rope_head_dim);
  w.kv_a_norm = vec(m.kv_lora_rank);
  w.kv_b_proj = mat(nh * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank);
  w.o_proj = mat(H, nh * m.v_head_dim);
  if (c.attention_out_bias) w.o_bias = vec(H);
  return w;
}

void append_mla_parameters(const MlaWeights& w, const std::string& p,
                           std::vector<std::pair<std::string, torch::Tensor>>& out) {
  auto add = [&](const char* name, const torch::Tensor& t) {
    if (t.defined()) out.emplace_back(p + name, t);
  };
  add("q_proj.weight", w.q_proj);
  add("q_a_proj.weight", w.q_a_proj);
  add("q_a_proj.bias", w.q_a_bias);
  add("q_a_layernorm.weight", w.q_a_norm);
  add("q_b_proj.weight", w.q_b_proj);
  add("kv_a_proj_with_mqa.weight", w.kv_a_proj);
  add("kv_a_proj_with_mqa.bias", w.kv_a_bias);
  add("kv_a_layernorm.weight", w.kv_a_norm);
  add("kv_b_proj.weight", w.kv_b_proj);
  add("o_proj.weight", w.o_proj);
  add("o_proj.bias", w.o_bias);
}

int64_t mla_varlen_head_dim(const ModelConfig& c) {
  const auto& m = c.mla;
  const int64_t widest = std::max(m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim);
  return (widest + 7) / 8 * 8;
}

torch::Tensor mla_attention(const ModelConfig& c, const MlaWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                            const torch::Tensor& sin, const torch::Tensor& mask, const VarlenLayout* varlen) {
  const auto& m = c.mla;
  const int64_t B = x.size(0), T = x.size(1), nh = c.num_attention_heads;
  const int64_t dn = m.qk_nope_head_dim, dr = m.qk_rope_head_dim, dv = m.v_head_dim;
  auto q = queries(c, w, x);
  auto query = torch::cat({q.narrow(-1, 0, dn), rope_part(c, q.narrow(-1, dn, dr), cos, sin)}, -1);
  auto [latent, k_rope] = compressed_kv(c, w, x);
  k_rope = rope_part(c, k_rope, cos, sin);
  auto kv = torch::linear(latent, w.kv_b_proj).view({B, T, nh, dn + dv}).transpose(1, 2);  // [B, nh, T, dn + dv]
  auto key = torch::cat({kv.narrow(-1, 0, dn), k_rope.expand({B, nh, T, dr})}, -1);
  // Contiguous: a view into kv has rows of dn + dv elements, which the fused SDPA kernels on
  // CUDA mishandle in bf16 when that stride is not 16-byte aligned (seen with dn 12, dv 16).
  auto value = kv.narrow(-1, dn, dv).contiguous();
  if (varlen) {
    // [B, nh, T, d] -> [B*T, nh, D], zero-padded to the kernel's head size D.
    const int64_t D = mla_varlen_head_dim(c);
    auto tokens = [&](const torch::Tensor& t) {
      auto flat = t.transpose(1, 2).reshape({B * T, nh, t.size(-1)});
      return t.size(-1) == D ? flat : torch::constant_pad_nd(flat, {0, D - t.size(-1)});
    };
    auto out = varlen_causal_attention(tokens(query), tokens(key), tokens(value), *varlen, m.softmax_scale);
    return torch::linear(out.narrow(-1, 0, dv).reshape({B, T, nh * dv}), w.o_proj, w.o_bias);
  }
  const bool causal = !mask.defined();
  std::optional<torch::Tensor> attn_mask;
  if (!causal) attn_mask = mask;
  auto out = at::scaled_dot_product_attention(query, key, value, attn_mask, 0.0, causal, m.softmax_scale);
  return torch::linear(out.transpose(1, 2).reshape({B, T, nh * dv}), w.o_proj, w.o_bias);
}

torch::Tensor mla_cached_attention(const ModelConfig& c, const MlaWeights& w, const torch::Tensor& x,
                                   const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& slots,
                                   const torch::Tensor& mask, torch::Tensor& cache_latent, torch::Tensor& cache_rope) {
  const auto& m = c.mla;
  const int64_t B = x.size(0), S = x.size(1), L = mask.size(-1), nh = c.num_attention_heads;
  const int64_t dn = m.qk_nope_head_dim, dr = m.qk_rope_head_dim, dv = m.v_head_dim, r = m.kv_lora_rank;
  auto q = queries(c, w, x);
  auto q_rope = rope_part(c, q.narrow(-1, dn, dr), cos, sin);  // [B, nh, S, dr]
  auto [latent, k_rope] = compressed_kv(c, w, x);
  cache_latent.index_copy_(2, slots, latent);
  cache_rope.index_copy_(2, slots, rope_part(c, k_rope, cos, sin));
  // One latent per slot, shared by every head: heads fold into the query rows of batched
  // products, [B, nh*S, r] x [B, r, L], so the cache is read once per row and never expanded
  // to nh copies (which broadcasting matmul against [B, nh, S, r] would materialise).
  auto latents = cache_latent.narrow(2, 0, L).squeeze(1);  // [B, L, r]
  auto rope_keys = cache_rope.narrow(2, 0, L).squeeze(1);  // [B, L, dr]
  // kv_b_proj's rows per head: dn key rows then dv value rows, each over the r latent dims.
  // The absorbed products run with heads as the batch, [nh, B*S, dn] x [nh, dn, r], so the
  // weights are not copied for every row either.
  auto up = w.kv_b_proj.view({nh, dn + dv, r});
  auto q_nope = q.narrow(-1, 0, dn).permute({1, 0, 2, 3}).reshape({nh, B * S, dn});
  auto q_latent = torch::bmm(q_nope, up.narrow(1, 0, dn))  // [nh, B*S, r]
                      .view({nh, B, S, r})
                      .permute({1, 0, 2, 3})
                      .reshape({B, nh * S, r});
  auto scores = torch::bmm(q_latent, latents.transpose(1, 2)) +
                torch::bmm(q_rope.reshape({B, nh * S, dr}), rope_keys.transpose(1, 2));  // [B, nh*S, L]
  auto scaled = scores.view({B, nh, S, L}) * m.softmax_scale + mask;
  // A left-padding query of a prefill sees no slot at all: its row is zeros (as SDPA's), not NaN.
  auto probs = at::_safe_softmax(scaled, -1, torch::kFloat32).to(x.scalar_type());
  auto out_latent = torch::bmm(probs.view({B, nh * S, L}), latents);  // [B, nh*S, r]
  auto heads_first = out_latent.view({B, nh, S, r}).permute({1, 0, 2, 3}).reshape({nh, B * S, r});
  auto out = torch::bmm(heads_first, up.narrow(1, dn, dv).transpose(1, 2));  // [nh, B*S, dv]
  return torch::linear(out.view({nh, B, S, dv}).permute({1, 2, 0, 3}).reshape({B, S, nh * dv}), w.o_proj, w.o_bias);
}

}  // namespace aha
