// Transformer's cached forward (prefill and decode over a KVCache) and its fused projection
// copies; the LibTorch path that the CPU runs and that CUDA runs where the decode kernels
// (transformer_decode_cuda.cpp) do not apply.
#include <cmath>
#include <limits>

#include "core/error.h"
#include "policy/model/rotary.h"
#include "policy/model/swiglu.h"
#include "policy/model/transformer.h"

namespace aha {

torch::Tensor Transformer::fused_mlp(const DecoderLayerWeights& w, const FusedProjections& fused, size_t layer,
                                     const torch::Tensor& x) const {
  auto gate_up = torch::linear(x, fused.gate_up_weight[layer], fused.gate_up_bias[layer]);
  return torch::linear(swiglu_concatenated(gate_up), w.down_weight, w.down_bias);
}

FusedProjections Transformer::fuse_projections() const {
  torch::NoGradGuard no_grad;
  FusedProjections f;
  if (config_.uses_mla()) return f;  // MLA has no q/k/v to concatenate
  for (const auto& w : layers_) {
    f.qkv_weight.push_back(torch::cat({w.q_weight, w.k_weight, w.v_weight}));
    f.qkv_bias.push_back(w.q_bias.defined() ? torch::cat({w.q_bias, w.k_bias, w.v_bias}) : torch::Tensor());
    const bool dense = w.mlp == MlpKind::dense;
    f.gate_up_weight.push_back(dense ? torch::cat({w.gate_weight, w.up_weight}) : torch::Tensor());
    f.gate_up_bias.push_back(w.gate_bias.defined() ? torch::cat({w.gate_bias, w.up_bias}) : torch::Tensor());
  }
  return f;
}

void Transformer::refresh(FusedProjections& f) const {
  require(f.qkv_weight.size() == layers_.size(), "transformer: fused projections of another model");
  torch::NoGradGuard no_grad;
  auto fill = [](torch::Tensor& out, std::initializer_list<torch::Tensor> parts) {
    if (!out.defined()) return;
    int64_t row = 0;
    for (const auto& p : parts) {
      out.narrow(0, row, p.size(0)).copy_(p);
      row += p.size(0);
    }
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto& w = layers_[l];
    fill(f.qkv_weight[l], {w.q_weight, w.k_weight, w.v_weight});
    fill(f.qkv_bias[l], {w.q_bias, w.k_bias, w.v_bias});
    fill(f.gate_up_weight[l], {w.gate_weight, w.up_weight});
    fill(f.gate_up_bias[l], {w.gate_bias, w.up_bias});
  }
}

int64_t Transformer::fused_projection_bytes(const ModelConfig& c, int64_t element_size) {
  if (c.uses_mla()) return 0;  // fuse_projections() makes none
  // MoE layers have no gate/up copy (their experts are used in place).
  const int64_t qkv = c.q_size() + 2 * c.kv_size(), gate_up = 2 * c.intermediate_size;
  const int64_t dense_layers = c.num_hidden_layers - c.moe_layer_count();
  const int64_t attention = qkv * c.hidden_size + (c.attention_bias ? qkv : 0);
  const int64_t mlp = gate_up * c.hidden_size + (c.mlp_bias ? gate_up : 0);
  return (c.num_hidden_layers * attention + dense_layers * mlp) * element_size;
}

KVCache KVCache::allocate(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
                          torch::Device device) {
  KVCache cache;
  auto opt = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    if (config.uses_mla()) {  // the latent cache (mla_attention.h)
      cache.keys.push_back(torch::zeros({batch, 1, capacity, config.mla.kv_lora_rank}, opt));
      cache.values.push_back(torch::zeros({batch, 1, capacity, config.mla.qk_rope_head_dim}, opt));
      continue;
    }
    cache.keys.push_back(torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, opt));
    cache.values.push_back(torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, opt));
  }
  return cache;
}

KVCache KVCache::select_rows(const torch::Tensor& rows) const {
  KVCache out;
  auto index = rows.to(keys.empty() ? torch::kCPU : keys[0].device(), torch::kInt64);
  for (size_t l = 0; l < keys.size(); ++l) {
    out.keys.push_back(keys[l].index_select(0, index));
    out.values.push_back(values[l].index_select(0, index));
  }
  if (first_slots.defined()) out.first_slots = first_slots.index_select(0, index.to(first_slots.device()));
  return out;
}

torch::Tensor Transformer::cached_attention(const DecoderLayerWeights& w, const torch::Tensor& x,
                                            const torch::Tensor& cos, const torch::Tensor& sin,
                                            const torch::Tensor& slots, const torch::Tensor& mask,
                                            torch::Tensor& cache_k, torch::Tensor& cache_v,
                                            const FusedProjections* fused, size_t layer) const {
  const auto& c = config_;
  const int64_t B = x.size(0), S = x.size(1), D = c.head_dim, L = mask.size(-1);
  const int64_t nh = c.num_attention_heads, kvh = c.num_key_value_heads, rep = nh / kvh;
  torch::Tensor q, k, v;
  if (fused) {
    // [B, S, nh + 2 kvh, D]: q and k heads are adjacent, so one rotary pass covers both.
    auto qkv = torch::linear(x, fused->qkv_weight[layer], fused->qkv_bias[layer]).view({B, S, nh + 2 * kvh, D});
    auto qk = qkv.narrow(2, 0, nh + kvh);
    if (c.qk_norm) qk = torch::cat({head_norm(qkv.narrow(2, 0, nh), w.q_norm), head_norm(qkv.narrow(2, nh, kvh), w.k_norm)}, 2);
    qk = apply_rope(qk.transpose(1, 2), cos, sin);
    q = qk.narrow(1, 0, nh);
    k = qk.narrow(1, nh, kvh);
    v = qkv.narrow(2, nh + kvh, kvh).transpose(1, 2);
  } else {
    q = apply_rope(head_norm(torch::linear(x, w.q_weight, w.q_bias).view({B, S, nh, D}), w.q_norm).transpose(1, 2), cos,
                   sin);
    k = apply_rope(head_norm(torch::linear(x, w.k_weight, w.k_bias).view({B, S, kvh, D}), w.k_norm).transpose(1, 2), cos,
                   sin);
    v = torch::linear(x, w.v_weight, w.v_bias).view({B, S, kvh, D}).transpose(1, 2);
  }
  cache_k.index_copy_(2, slots, k);
  cache_v.index_copy_(2, slots, v);
  auto keys = cache_k.narrow(2, 0, L);
  auto values = cache_v.narrow(2, 0, L);
  torch::Tensor out;
  const double scale = 1.0 / std::sqrt(double(D));
  if (S == 1) {
    // One new token: the `rep` query heads sharing a kv head become that head's query rows, so
    // grouped-query attention needs no copy of the cache. mask [B, 1, 1, L] broadcasts over them.
    auto grouped = q.reshape({B, kvh, rep, D});
    out = at::scaled_dot_product_attention(grouped, keys, values, mask, 0.0, false, scale);
    out = out.reshape({B, 1, c.q_size()});
  } else {
    auto k_all = rep > 1 ? keys.repeat_interleave(rep, 1) : keys;
    auto v_all = rep > 1 ? values.repeat_interleave(rep, 1) : values;
    out = at::scaled_dot_product_attention(q, k_all, v_all, mask, 0.0, false, scale);
    out = out.transpose(1, 2).reshape({B, S, c.q_size()});
  }
  return torch::linear(out, w.o_weight, w.o_bias);
}

torch::Tensor Transformer::attention_mask(const torch::Tensor& key_mask, const torch::Tensor& slots,
                                         const torch::Tensor& first_slots) const {
  const int64_t B = key_mask.size(0), L = key_mask.size(1), S = slots.size(0);
  // Row b's query i sees slot j if key_mask[b, j], j <= slots[i] and j >= first_slots[b].
  auto key_slots = torch::arange(L, slots.options());
  auto not_future = key_slots.view({1, L}) <= slots.view({S, 1});  // [S, L]
  auto keys = key_mask.to(torch::kBool);
  if (first_slots.defined()) keys = keys.logical_and(key_slots.view({1, L}) >= first_slots.view({B, 1}));
  auto allowed = keys.view({B, 1, 1, L}).logical_and(not_future.view({1, 1, S, L}));
  // As an additive mask (0 or -inf in the model dtype), made once for all layers: what SDPA
  // turns a boolean mask into in every call otherwise.
  return torch::zeros(allowed.sizes(), allowed.options().dtype(dtype_))
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

torch::Tensor Transformer::hidden_states_cached(const torch::Tensor& input_ids, const torch::Tensor& positions,
                                                const torch::Tensor& slots, const torch::Tensor& key_mask,
                                                KVCache& cache, const FusedProjections* fused) const {
  require(input_ids.dim() == 2 && positions.sizes() == input_ids.sizes(),
          "transformer: input_ids and positions must both be [B, S]");
  const int64_t B = input_ids.size(0), S = input_ids.size(1), L = key_mask.size(1);
  require(slots.dim() == 1 && slots.size(0) == S, "transformer: slots must be [S]");
  require(key_mask.dim() == 2 && key_mask.size(0) == B, "transformer: key_mask must be [B, L]");
  require(cache.batch() == B && static_cast<int64_t>(cache.keys.size()) == config_.num_hidden_layers,
          "transformer: the KV cache does not match the batch or the model");
  require(L <= cache.capacity(), "transformer: key_mask is longer than the KV cache");
  const auto& first = cache.first_slots;
  require(!first.defined() || (first.dim() == 1 && first.size(0) == B && first.scalar_type() == torch::kInt64 &&
                               first.device() == key_mask.device()),
          "transformer: the KV cache's first_slots must be [B] int64 on key_mask's device");
  if (fused && fused->empty()) fused = nullptr;
  require(!fused || fused->qkv_weight.size() == layers_.size(), "transformer: fused projections of another model");
  torch::Tensor inv_freq = inv_freq_;
  if (config_.rope_scaling.type == "dynamic") inv_freq = rope_inv_freq(config_, positions.max().item<int64_t>(), device_);
  auto [cos, sin] = rope_cos_sin(inv_freq, positions, dtype_, config_.rope_scaling.attention_factor);
  if (uses_decode_kernels(S, fused)) return decode_step_cuda(input_ids, cos, sin, slots, key_mask, cache, *fused);
  auto mask = attention_mask(key_mask, slots, first);
  auto x = torch::embedding(embed_, input_ids);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto& w = layers_[l];
    auto normed = rms_norm(x, w.input_norm, config_.rms_norm_eps);
    x = x + (config_.uses_mla()
                 ? mla_cached_attention(config_, w.mla, normed, cos, sin, slots, mask, cache.keys[l], cache.values[l])
                 : cached_attention(w, normed, cos, sin, slots, mask, cache.keys[l], cache.values[l], fused, l));
    auto h = rms_norm(x, w.post_attention_norm, config_.rms_norm_eps);
    x = x + (fused && w.mlp == MlpKind::dense ? fused_mlp(w, *fused, l, h) : feed_forward(w, h, nullptr));
  }
  return rms_norm(x, final_norm_, config_.rms_norm_eps);
}

}  // namespace aha
