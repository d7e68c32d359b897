#include "policy/model/transformer.h"

#include <ATen/autocast_mode.h>
#include <ATen/ops/_fused_rms_norm.h>
#include <torch/autograd.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "policy/model/device_memory.h"
#include "policy/model/rotary.h"
#include "policy/model/token_logprobs.h"

namespace aha {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // x * rsqrt(mean(x^2) + eps) in float32, rounded to x's dtype, then times the weight: the
  // normalisation is ATen's fused RMSNorm without a weight (one kernel on CUDA, float32
  // accumulation for reduced-precision inputs, with its own backward) instead of seven
  // elementwise passes; the weight product stays separate so that, as in transformers, the
  // normalised value is rounded to x's dtype before it is scaled.
  auto normalised = std::get<0>(at::_fused_rms_norm(x, {x.size(-1)}, std::nullopt, eps));
  return weight * normalised;
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kInt64).cumsum(-1) - 1).clamp_min(0);
}

Transformer::Transformer(ModelConfig config, torch::ScalarType dtype, torch::Device device)
    : config_(std::move(config)), dtype_(dtype), device_(device) {
  const auto& c = config_;
  // Sized before anything is allocated: an impossible model is an error naming its fields,
  // not an allocator failure with a stack trace.
  const double weight_bytes = double(c.parameter_count()) * double(c10::elementSize(dtype));
  if (const auto available = allocatable_bytes(device); available && weight_bytes > double(*available)) {
    char text[160];
    std::snprintf(text, sizeof text, "%.3g GiB of weights (%.4g parameters in %s), but only %.3g GiB is free on %s",
                  weight_bytes / double(1LL << 30), double(c.parameter_count()), c10::toString(dtype),
                  double(*available) / double(1LL << 30), device.str().c_str());
    throw Error("model (hidden_size " + std::to_string(c.hidden_size) + ", intermediate_size " +
                std::to_string(c.intermediate_size) + ", num_hidden_layers " + std::to_string(c.num_hidden_layers) +
                ", vocab_size " + std::to_string(c.vocab_size) + ") needs " + text);
  }
  auto opt = torch::TensorOptions().dtype(dtype).device(device);
  auto mat = [&](int64_t out, int64_t in) { return torch::empty({out, in}, opt); };
  auto vec = [&](int64_t n) { return torch::empty({n}, opt); };
  embed_ = mat(c.vocab_size, c.hidden_size);
  final_norm_ = vec(c.hidden_size);
  if (!c.tie_word_embeddings) lm_head_ = mat(c.vocab_size, c.hidden_size);
  layers_.resize(c.num_hidden_layers);
  for (auto& w : layers_) {
    w.input_norm = vec(c.hidden_size);
    w.post_attention_norm = vec(c.hidden_size);
    w.q_weight = mat(c.q_size(), c.hidden_size);
    w.k_weight = mat(c.kv_size(), c.hidden_size);
    w.v_weight = mat(c.kv_size(), c.hidden_size);
    w.o_weight = mat(c.hidden_size, c.q_size());
    if (c.attention_bias) {
      w.q_bias = vec(c.q_size());
      w.k_bias = vec(c.kv_size());
      w.v_bias = vec(c.kv_size());
    }
    if (c.attention_out_bias) w.o_bias = vec(c.hidden_size);
    w.gate_weight = mat(c.intermediate_size, c.hidden_size);
    w.up_weight = mat(c.intermediate_size, c.hidden_size);
    w.down_weight = mat(c.hidden_size, c.intermediate_size);
    if (c.mlp_bias) {
      w.gate_bias = vec(c.intermediate_size);
      w.up_bias = vec(c.intermediate_size);
      w.down_bias = vec(c.hidden_size);
    }
  }
  inv_freq_ = rope_inv_freq(c, 0, device);
}

std::vector<std::pair<std::string, torch::Tensor>> Transformer::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("model.embed_tokens.weight", embed_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& w = layers_[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto add = [&](const std::string& name, const torch::Tensor& t) {
      if (t.defined()) out.emplace_back(p + name, t);
    };
    add("input_layernorm.weight", w.input_norm);
    add("self_attn.q_proj.weight", w.q_weight);
    add("self_attn.q_proj.bias", w.q_bias);
    add("self_attn.k_proj.weight", w.k_weight);
    add("self_attn.k_proj.bias", w.k_bias);
    add("self_attn.v_proj.weight", w.v_weight);
    add("self_attn.v_proj.bias", w.v_bias);
    add("self_attn.o_proj.weight", w.o_weight);
    add("self_attn.o_proj.bias", w.o_bias);
    add("post_attention_layernorm.weight", w.post_attention_norm);
    add("mlp.gate_proj.weight", w.gate_weight);
    add("mlp.gate_proj.bias", w.gate_bias);
    add("mlp.up_proj.weight", w.up_weight);
    add("mlp.up_proj.bias", w.up_bias);
    add("mlp.down_proj.weight", w.down_weight);
    add("mlp.down_proj.bias", w.down_bias);
  }
  out.emplace_back("model.norm.weight", final_norm_);
  if (!tied()) out.emplace_back("lm_head.weight", lm_head_);
  return out;
}

std::vector<torch::Tensor> Transformer::parameters() const {
  std::vector<torch::Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

torch::Tensor Transformer::attention(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& mask) const {
  const auto& c = config_;
  const int64_t B = x.size(0), T = x.size(1), D = c.head_dim;
  auto q = torch::linear(x, w.q_weight, w.q_bias).view({B, T, c.num_attention_heads, D}).transpose(1, 2);
  auto k = torch::linear(x, w.k_weight, w.k_bias).view({B, T, c.num_key_value_heads, D}).transpose(1, 2);
  auto v = torch::linear(x, w.v_weight, w.v_bias).view({B, T, c.num_key_value_heads, D}).transpose(1, 2);
  q = apply_rope(q, cos, sin);
  k = apply_rope(k, cos, sin);
  const bool causal = !mask.defined();
  // Without a mask SDPA can take the grouped heads directly (flash path); with one we expand
  // them as transformers' repeat_kv does, which every SDPA backend accepts.
  const bool gqa = c.num_attention_heads != c.num_key_value_heads;
  if (gqa && !causal) {
    const int64_t rep = c.num_attention_heads / c.num_key_value_heads;
    k = k.repeat_interleave(rep, 1);
    v = v.repeat_interleave(rep, 1);
  }
  std::optional<torch::Tensor> attn_mask;
  if (!causal) attn_mask = mask;
  auto out = at::scaled_dot_product_attention(q, k, v, attn_mask, 0.0, causal, 1.0 / std::sqrt(double(D)),
                                              /*enable_gqa=*/gqa && causal);
  out = out.transpose(1, 2).reshape({B, T, c.q_size()});
  return torch::linear(out, w.o_weight, w.o_bias);
}

torch::Tensor Transformer::mlp(const DecoderLayerWeights& w, const torch::Tensor& x) const {
  auto gate = torch::silu(torch::linear(x, w.gate_weight, w.gate_bias));
  return torch::linear(gate * torch::linear(x, w.up_weight, w.up_bias), w.down_weight, w.down_bias);
}

torch::Tensor Transformer::fused_mlp(const DecoderLayerWeights& w, const FusedProjections& fused, size_t layer,
                                     const torch::Tensor& x) const {
  const int64_t I = config_.intermediate_size;
  auto gate_up = torch::linear(x, fused.gate_up_weight[layer], fused.gate_up_bias[layer]);
  auto gate = torch::silu(gate_up.narrow(-1, 0, I));
  return torch::linear(gate * gate_up.narrow(-1, I, I), w.down_weight, w.down_bias);
}

FusedProjections Transformer::fuse_projections() const {
  torch::NoGradGuard no_grad;
  FusedProjections f;
  for (const auto& w : layers_) {
    f.qkv_weight.push_back(torch::cat({w.q_weight, w.k_weight, w.v_weight}));
    f.qkv_bias.push_back(w.q_bias.defined() ? torch::cat({w.q_bias, w.k_bias, w.v_bias}) : torch::Tensor());
    f.gate_up_weight.push_back(torch::cat({w.gate_weight, w.up_weight}));
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
  const int64_t qkv = c.q_size() + 2 * c.kv_size(), gate_up = 2 * c.intermediate_size;
  const int64_t per_layer = (qkv + gate_up) * c.hidden_size + (c.attention_bias ? qkv : 0) + (c.mlp_bias ? gate_up : 0);
  return c.num_hidden_layers * per_layer * element_size;
}

// One decoder layer whose activations are recomputed in backward (see
// set_activation_checkpointing). Saves the layer input, the rotary tables and the mask only.
struct CheckpointedDecoderLayer : torch::autograd::Function<CheckpointedDecoderLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor cos,
                               torch::Tensor sin, std::optional<torch::Tensor> mask, const Transformer* model,
                               int64_t layer) {
    // mask travels as an optional: an undefined tensor is not a valid Function input.
    ctx->save_for_backward({x, cos, sin, mask.value_or(torch::Tensor())});
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(at::kCUDA);
    ctx->saved_data["autocast_dtype"] = int64_t(at::autocast::get_autocast_dtype(at::kCUDA));
    return model->decoder_layer(model->layers_[layer], x, cos, sin, mask.value_or(torch::Tensor()));
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto* model = reinterpret_cast<const Transformer*>(ctx->saved_data["model"].toInt());
    const int64_t layer = ctx->saved_data["layer"].toInt();
    auto x = saved[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      // Backward may run on another thread: restore the forward's autocast state there.
      const bool autocast = ctx->saved_data["autocast"].toBool();
      const bool was = at::autocast::is_autocast_enabled(at::kCUDA);
      const auto old_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
      at::autocast::set_autocast_enabled(at::kCUDA, autocast);
      at::autocast::set_autocast_dtype(at::kCUDA, at::ScalarType(ctx->saved_data["autocast_dtype"].toInt()));
      torch::AutoGradMode grad_mode(true);
      y = model->decoder_layer(model->layers_[layer], x, saved[1], saved[2], saved[3]);
      at::autocast::set_autocast_enabled(at::kCUDA, was);
      at::autocast::set_autocast_dtype(at::kCUDA, old_dtype);
      if (autocast) at::autocast::clear_cache();
    }
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor Transformer::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         const torch::Tensor& positions, const torch::Tensor& segment_ids) const {
  require(input_ids.dim() == 2, "transformer: input_ids must be [B, T]");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  require(!attention_mask.defined() || attention_mask.sizes() == input_ids.sizes(),
          "transformer: attention_mask must have the shape of input_ids");
  require(!positions.defined() || positions.sizes() == input_ids.sizes(),
          "transformer: positions must have the shape of input_ids");
  torch::Tensor pos = positions;
  if (!pos.defined()) {
    pos = attention_mask.defined() ? positions_from_mask(attention_mask)
                                   : torch::arange(T, input_ids.options().dtype(torch::kInt64)).expand({B, T});
  }
  pos = pos.to(device_, torch::kInt64);
  torch::Tensor inv_freq = inv_freq_;
  if (config_.rope_scaling.type == "dynamic") {
    inv_freq = rope_inv_freq(config_, pos.max().item<int64_t>(), device_);
  }
  auto [cos, sin] = rope_cos_sin(inv_freq, pos, dtype_);

  require(!segment_ids.defined() || (segment_ids.sizes() == input_ids.sizes() && positions.defined()),
          "transformer: segment_ids must have the shape of input_ids and come with positions");
  torch::Tensor mask;  // [B, 1, T, T] bool, true = may attend
  if (segment_ids.defined()) {
    auto seg = segment_ids.to(device_, torch::kInt64);
    auto same = seg.view({B, 1, T, 1}).eq(seg.view({B, 1, 1, T}));
    auto real = seg.view({B, 1, 1, T}).ne(0);
    auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(device_)).tril();
    auto eye = torch::eye(T, torch::TensorOptions().dtype(torch::kBool).device(device_));
    mask = causal.logical_and(same).logical_and(real).logical_or(eye);
  } else if (attention_mask.defined()) {
    auto keys = attention_mask.to(device_).to(torch::kBool).view({B, 1, 1, T});
    auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(device_)).tril();
    // A padding query attends to itself so that its row is never empty (no NaN); its output
    // is ignored by every consumer.
    auto eye = torch::eye(T, torch::TensorOptions().dtype(torch::kBool).device(device_));
    mask = (causal.logical_and(keys)).logical_or(eye);
  }

  auto x = torch::embedding(embed_, input_ids.to(device_));
  const bool checkpoint = checkpoint_layers_ && torch::GradMode::is_enabled();
  for (size_t l = 0; l < layers_.size(); ++l) {
    x = checkpoint ? CheckpointedDecoderLayer::apply(x, cos, sin, mask.defined() ? std::optional(mask) : std::nullopt,
                                                     this, int64_t(l))
                   : decoder_layer(layers_[l], x, cos, sin, mask);
  }
  return rms_norm(x, final_norm_, config_.rms_norm_eps);
}

torch::Tensor Transformer::decoder_layer(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin, const torch::Tensor& mask) const {
  auto h = x + attention(w, rms_norm(x, w.input_norm, config_.rms_norm_eps), cos, sin, mask);
  return h + mlp(w, rms_norm(h, w.post_attention_norm, config_.rms_norm_eps));
}

KVCache KVCache::allocate(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
                          torch::Device device) {
  KVCache cache;
  auto opt = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
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
    // [B, nh + 2 kvh, S, D]: q and k heads are adjacent, so one rotary pass covers both.
    auto qkv = torch::linear(x, fused->qkv_weight[layer], fused->qkv_bias[layer])
                   .view({B, S, nh + 2 * kvh, D})
                   .transpose(1, 2);
    auto qk = apply_rope(qkv.narrow(1, 0, nh + kvh), cos, sin);
    q = qk.narrow(1, 0, nh);
    k = qk.narrow(1, nh, kvh);
    v = qkv.narrow(1, nh + kvh, kvh);
  } else {
    q = apply_rope(torch::linear(x, w.q_weight, w.q_bias).view({B, S, nh, D}).transpose(1, 2), cos, sin);
    k = apply_rope(torch::linear(x, w.k_weight, w.k_bias).view({B, S, kvh, D}).transpose(1, 2), cos, sin);
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

torch::Tensor Transformer::attention_mask(const torch::Tensor& key_mask, const torch::Tensor& slots) const {
  const int64_t B = key_mask.size(0), L = key_mask.size(1), S = slots.size(0);
  // Row b's query i sees slot j if key_mask[b, j] and j <= slots[i].
  auto key_slots = torch::arange(L, slots.options());
  auto not_future = key_slots.view({1, L}) <= slots.view({S, 1});  // [S, L]
  auto allowed = key_mask.to(torch::kBool).view({B, 1, 1, L}).logical_and(not_future.view({1, 1, S, L}));
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
  if (fused && fused->empty()) fused = nullptr;
  require(!fused || fused->qkv_weight.size() == layers_.size(), "transformer: fused projections of another model");
  torch::Tensor inv_freq = inv_freq_;
  if (config_.rope_scaling.type == "dynamic") inv_freq = rope_inv_freq(config_, positions.max().item<int64_t>(), device_);
  auto [cos, sin] = rope_cos_sin(inv_freq, positions, dtype_);
  if (uses_decode_kernels(S, fused)) return decode_step_cuda(input_ids, cos, sin, slots, key_mask, cache, *fused);
  auto mask = attention_mask(key_mask, slots);
  auto x = torch::embedding(embed_, input_ids);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto& w = layers_[l];
    x = x + cached_attention(w, rms_norm(x, w.input_norm, config_.rms_norm_eps), cos, sin, slots, mask,
                             cache.keys[l], cache.values[l], fused, l);
    auto h = rms_norm(x, w.post_attention_norm, config_.rms_norm_eps);
    x = x + (fused ? fused_mlp(w, *fused, l, h) : mlp(w, h));
  }
  return rms_norm(x, final_norm_, config_.rms_norm_eps);
}

torch::Tensor Transformer::logits(const torch::Tensor& hidden) const {
  return torch::linear(hidden, lm_head_weight());
}

torch::Tensor Transformer::token_logprobs(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                          const torch::Tensor& positions, double temperature,
                                          torch::Tensor* entropy) const {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  require(T >= 2, "token log-probs need at least two tokens per sequence");
  auto hidden = hidden_states(input_ids, attention_mask, positions).narrow(1, 0, T - 1);
  auto targets = input_ids.narrow(1, 1, T - 1).to(device_);
  auto out = chunked_token_logprobs(hidden.reshape({B * (T - 1), -1}), lm_head_weight(), targets.reshape({-1}),
                                    temperature, entropy != nullptr);
  if (entropy) *entropy = out.entropy.view({B, T - 1});
  return out.logprobs.view({B, T - 1});
}

}  // namespace aha
