#include "policy/model/transformer.h"

#include <ATen/autocast_mode.h>
#include <ATen/ops/_fused_rms_norm.h>
#include <torch/autograd.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "policy/model/device_memory.h"
#include "policy/model/moe.h"
#include "policy/model/moe_routing.h"
#include "policy/model/rotary.h"
#include "policy/model/swiglu.h"
#include "policy/model/token_logprobs.h"
#include "policy/model/varlen_attention.h"

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

Transformer::Transformer(ModelConfig config, torch::ScalarType dtype, torch::Device device, WeightMemory memory)
    : config_(std::move(config)), dtype_(dtype), device_(device) {
  const auto& c = config_;
  // Sized before anything is allocated: an impossible model is an error naming its fields,
  // not an allocator failure with a stack trace. Weights without memory need none.
  const double weight_bytes = double(c.parameter_count()) * double(c10::elementSize(dtype));
  if (const auto available = allocatable_bytes(device);
      memory == WeightMemory::allocated && available && weight_bytes > double(*available)) {
    char text[160];
    std::snprintf(text, sizeof text, "%.3g GiB of weights (%.4g parameters in %s), but only %.3g GiB is free on %s",
                  weight_bytes / double(1LL << 30), double(c.parameter_count()), c10::toString(dtype),
                  double(*available) / double(1LL << 30), device.str().c_str());
    throw Error("model (hidden_size " + std::to_string(c.hidden_size) + ", intermediate_size " +
                std::to_string(c.intermediate_size) + ", num_hidden_layers " + std::to_string(c.num_hidden_layers) +
                ", vocab_size " + std::to_string(c.vocab_size) + ") needs " + text);
  }
  auto opt = torch::TensorOptions().dtype(dtype).device(device);
  auto mat = [&](int64_t out, int64_t in) { return new_weight({out, in}, opt, memory); };
  auto vec = [&](int64_t n) { return new_weight({n}, opt, memory); };
  embed_ = mat(c.vocab_size, c.hidden_size);
  final_norm_ = vec(c.hidden_size);
  if (!c.tie_word_embeddings) lm_head_ = mat(c.vocab_size, c.hidden_size);
  layers_.resize(c.num_hidden_layers);
  for (size_t l = 0; l < layers_.size(); ++l) {
    auto& w = layers_[l];
    w.input_norm = vec(c.hidden_size);
    w.post_attention_norm = vec(c.hidden_size);
    if (c.uses_mla()) {
      w.mla = allocate_mla_weights(c, opt, memory);
    } else {
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
    }
    if (c.qk_norm) {
      w.q_norm = vec(c.head_dim);
      w.k_norm = vec(c.head_dim);
    }
    if (c.is_moe_layer(int64_t(l))) {
      w.mlp = MlpKind::moe;
      const int64_t E = c.num_experts, I = c.moe_intermediate_size;
      const bool deepseek = c.is_deepseek_moe_layer(int64_t(l));
      // DeepSeek-V3's gate stays float32 in every model dtype, as transformers keeps it.
      w.router_weight =
          deepseek ? new_weight({E, c.hidden_size}, opt.dtype(torch::kFloat32), memory) : mat(E, c.hidden_size);
      if (deepseek) w.deepseek_moe = allocate_deepseek_moe_weights(c, opt, memory);
      w.experts_gate_up = new_weight({E, 2 * I, c.hidden_size}, opt, memory);
      w.experts_down = new_weight({E, c.hidden_size, I}, opt, memory);
      continue;
    }
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
    if (config_.uses_mla()) append_mla_parameters(w.mla, p + "self_attn.", out);
    add("self_attn.q_proj.weight", w.q_weight);
    add("self_attn.q_proj.bias", w.q_bias);
    add("self_attn.k_proj.weight", w.k_weight);
    add("self_attn.k_proj.bias", w.k_bias);
    add("self_attn.v_proj.weight", w.v_weight);
    add("self_attn.v_proj.bias", w.v_bias);
    add("self_attn.o_proj.weight", w.o_weight);
    add("self_attn.o_proj.bias", w.o_bias);
    add("self_attn.q_norm.weight", w.q_norm);
    add("self_attn.k_norm.weight", w.k_norm);
    add("post_attention_layernorm.weight", w.post_attention_norm);
    add("mlp.gate.weight", w.router_weight);
    add("mlp.experts.gate_up_proj", w.experts_gate_up);
    add("mlp.experts.down_proj", w.experts_down);
    add("mlp.gate_proj.weight", w.gate_weight);
    add("mlp.gate_proj.bias", w.gate_bias);
    add("mlp.up_proj.weight", w.up_weight);
    add("mlp.up_proj.bias", w.up_bias);
    add("mlp.down_proj.weight", w.down_weight);
    add("mlp.down_proj.bias", w.down_bias);
    if (w.deepseek_moe.score_bias.defined()) append_deepseek_moe_parameters(w.deepseek_moe, p + "mlp.", out);
  }
  out.emplace_back("model.norm.weight", final_norm_);
  if (!tied()) out.emplace_back("lm_head.weight", lm_head_);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> Transformer::named_buffers() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].deepseek_moe.score_bias.defined())
      append_deepseek_moe_buffers(layers_[i].deepseek_moe, "model.layers." + std::to_string(i) + ".mlp.", out);
  }
  return out;
}

std::vector<Transformer::CheckpointSlot> Transformer::checkpoint_layout(bool fused_experts) const {
  auto tensors = named_parameters();
  for (auto& b : named_buffers()) tensors.push_back(std::move(b));
  std::vector<CheckpointSlot> out;
  const int64_t I = config_.moe_intermediate_size;
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    const bool gate_up = ends_with(name, ".experts.gate_up_proj"), down = ends_with(name, ".experts.down_proj");
    if (fused_experts || !config_.is_moe() || (!gate_up && !down)) {
      out.push_back({name, i, 0, tensor.sizes().vec()});
      continue;
    }
    // Stacked [E, 2I, H] (gate rows, then up rows) and [E, H, I]: each expert's piece is contiguous.
    const std::string prefix = name.substr(0, name.rfind('.') + 1);  // "model.layers.L.mlp.experts."
    const int64_t per_expert = tensor.numel() / tensor.size(0), H = config_.hidden_size;
    for (int64_t e = 0; e < tensor.size(0); ++e) {
      const std::string p = prefix + std::to_string(e) + ".";
      if (gate_up) {
        out.push_back({p + "gate_proj.weight", i, e * per_expert, {I, H}});
        out.push_back({p + "up_proj.weight", i, e * per_expert + I * H, {I, H}});
      } else {
        out.push_back({p + "down_proj.weight", i, e * per_expert, {H, I}});
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> Transformer::checkpoint_tensors(bool fused_experts) const {
  auto tensors = named_parameters();
  for (auto& b : named_buffers()) tensors.push_back(std::move(b));
  torch::NoGradGuard no_grad;  // views to copy into and read from, never part of a graph
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& slot : checkpoint_layout(fused_experts)) {
    const auto& tensor = tensors[slot.tensor].second;
    if (slot.offset == 0 && tensor.sizes() == torch::IntArrayRef(slot.shape))
      out.emplace_back(slot.name, tensor);
    else
      out.emplace_back(slot.name, tensor.view({-1}).narrow(0, slot.offset, c10::multiply_integers(slot.shape)).view(slot.shape));
  }
  return out;
}

std::vector<torch::Tensor> Transformer::parameters() const {
  std::vector<torch::Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

torch::Tensor Transformer::attention(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& mask,
                                     const VarlenLayout* varlen) const {
  const auto& c = config_;
  const int64_t B = x.size(0), T = x.size(1), D = c.head_dim;
  auto q = head_norm(torch::linear(x, w.q_weight, w.q_bias).view({B, T, c.num_attention_heads, D}), w.q_norm)
               .transpose(1, 2);
  auto k = head_norm(torch::linear(x, w.k_weight, w.k_bias).view({B, T, c.num_key_value_heads, D}), w.k_norm)
               .transpose(1, 2);
  auto v = torch::linear(x, w.v_weight, w.v_bias).view({B, T, c.num_key_value_heads, D}).transpose(1, 2);
  q = apply_rope(q, cos, sin);
  k = apply_rope(k, cos, sin);
  if (varlen) {
    // Packed sequences: [B*T, heads, D] for the variable-length kernel, no mask, no repeat_kv.
    auto tokens = [&](const torch::Tensor& t) { return t.transpose(1, 2).reshape({B * T, t.size(1), D}); };
    auto out = varlen_causal_attention(tokens(q), tokens(k), tokens(v), *varlen, 1.0 / std::sqrt(double(D)));
    return torch::linear(out.view({B, T, c.q_size()}), w.o_weight, w.o_bias);
  }
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

torch::Tensor Transformer::head_norm(const torch::Tensor& x, const torch::Tensor& weight) const {
  return weight.defined() ? rms_norm(x, weight, config_.rms_norm_eps) : x;
}

torch::Tensor Transformer::mlp(const DecoderLayerWeights& w, const torch::Tensor& x) const {
  return torch::linear(swiglu(torch::linear(x, w.gate_weight, w.gate_bias), torch::linear(x, w.up_weight, w.up_bias)),
                       w.down_weight, w.down_bias);
}

torch::Tensor Transformer::feed_forward(const DecoderLayerWeights& w, const torch::Tensor& x,
                                        std::vector<torch::Tensor>* router_logits) const {
  if (w.mlp == MlpKind::dense) return mlp(w, x);
  if (w.deepseek_moe.score_bias.defined())
    return deepseek_moe(config_, w.router_weight, w.experts_gate_up, w.experts_down, w.deepseek_moe, x, router_logits,
                        expert_dispatch_);
  auto flat = x.reshape({-1, x.size(-1)});  // [N, H]
  auto routing = softmax_topk_routing(flat, w.router_weight, config_.num_experts_per_tok, config_.norm_topk_prob);
  if (router_logits) router_logits->push_back(routing.logits);
  if (expert_dispatch_)
    return expert_dispatch_->routed_experts(flat, routing.experts, routing.weights, w.experts_gate_up, w.experts_down)
        .view(x.sizes());
  return routed_experts(flat, routing.experts, routing.weights, w.experts_gate_up, w.experts_down).view(x.sizes());
}


// One decoder layer whose activations are recomputed in backward (see
// set_activation_checkpointing). Saves the layer input, the rotary tables and the mask only.
// Outputs: the layer's output, then (with_router_logits, MoE layers) its router logits, so that
// the auxiliary loss and the routing-bias loads keep working: their gradient flows back through
// the recomputed router like the output's.
struct CheckpointedDecoderLayer : torch::autograd::Function<CheckpointedDecoderLayer> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                                                torch::Tensor cos, torch::Tensor sin, std::optional<torch::Tensor> mask,
                                                const Transformer* model, int64_t layer,
                                                std::optional<torch::Tensor> cu_seqlens, int64_t max_seqlen,
                                                bool with_router_logits) {
    // mask travels as an optional: an undefined tensor is not a valid Function input.
    ctx->save_for_backward({x, cos, sin, mask.value_or(torch::Tensor()), cu_seqlens.value_or(torch::Tensor())});
    ctx->saved_data["max_seqlen"] = max_seqlen;
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["with_router_logits"] = with_router_logits;
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(at::kCUDA);
    ctx->saved_data["autocast_dtype"] = int64_t(at::autocast::get_autocast_dtype(at::kCUDA));
    const VarlenLayout varlen{cu_seqlens.value_or(torch::Tensor()), max_seqlen, x.size(0) * x.size(1)};
    std::vector<torch::Tensor> logits;
    torch::autograd::variable_list out = {
        model->decoder_layer(model->layers_[layer], x, cos, sin, mask.value_or(torch::Tensor()),
                             with_router_logits ? &logits : nullptr, varlen.defined() ? &varlen : nullptr)};
    out.insert(out.end(), logits.begin(), logits.end());
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto* model = reinterpret_cast<const Transformer*>(ctx->saved_data["model"].toInt());
    const int64_t layer = ctx->saved_data["layer"].toInt();
    auto x = saved[0].detach().requires_grad_(true);
    torch::autograd::variable_list outputs;
    {
      // Backward may run on another thread: restore the forward's autocast state there.
      const bool autocast = ctx->saved_data["autocast"].toBool();
      const bool was = at::autocast::is_autocast_enabled(at::kCUDA);
      const auto old_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
      at::autocast::set_autocast_enabled(at::kCUDA, autocast);
      at::autocast::set_autocast_dtype(at::kCUDA, at::ScalarType(ctx->saved_data["autocast_dtype"].toInt()));
      torch::AutoGradMode grad_mode(true);
      const VarlenLayout varlen{saved[4], ctx->saved_data["max_seqlen"].toInt(), x.size(0) * x.size(1)};
      std::vector<torch::Tensor> logits;
      outputs.push_back(model->decoder_layer(model->layers_[layer], x, saved[1], saved[2], saved[3],
                                             ctx->saved_data["with_router_logits"].toBool() ? &logits : nullptr,
                                             varlen.defined() ? &varlen : nullptr));
      outputs.insert(outputs.end(), logits.begin(), logits.end());
      at::autocast::set_autocast_enabled(at::kCUDA, was);
      at::autocast::set_autocast_dtype(at::kCUDA, old_dtype);
      if (autocast) at::autocast::clear_cache();
    }
    require(outputs.size() == grads.size(), "activation checkpointing: layer " + std::to_string(layer) +
                                                " recomputed " + std::to_string(outputs.size()) + " outputs, not " +
                                                std::to_string(grads.size()));
    // Gradients of outputs the loss did not use arrive as zeros (materialized by autograd).
    torch::autograd::backward(outputs, grads);
    return {x.grad(),        torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor Transformer::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         const torch::Tensor& positions, const torch::Tensor& segment_ids,
                                         std::vector<torch::Tensor>* router_logits) const {
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
  auto [cos, sin] = rope_cos_sin(inv_freq, pos, dtype_, config_.rope_scaling.attention_factor);

  require(!segment_ids.defined() || (segment_ids.sizes() == input_ids.sizes() && positions.defined()),
          "transformer: segment_ids must have the shape of input_ids and come with positions");
  torch::Tensor mask;  // [B, 1, T, T] bool, true = may attend
  VarlenLayout varlen;  // packed sequences through the variable-length kernel instead of a mask
  const int64_t kernel_head_dim = config_.uses_mla() ? mla_varlen_head_dim(config_) : config_.head_dim;
  if (segment_ids.defined() && varlen_attention_ && varlen_attention_supported(device_, dtype_, kernel_head_dim)) {
    varlen = varlen_layout(segment_ids, device_);
  } else if (segment_ids.defined()) {
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

  BlockHooks* hooks = block_hooks_;
  if (hooks) hooks->enter(0, {});
  auto x = torch::embedding(embed_, input_ids.to(device_));
  if (hooks) x = hooks->leave(0, x, /*backward_needs_weights=*/false);
  const bool checkpoint = checkpoint_layers_ && torch::GradMode::is_enabled();
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (hooks) x = hooks->enter(l + 1, x);
    if (checkpoint) {
      auto out = CheckpointedDecoderLayer::apply(x, cos, sin, mask.defined() ? std::optional(mask) : std::nullopt, this,
                                                 int64_t(l),
                                                 varlen.defined() ? std::optional(varlen.cu_seqlens) : std::nullopt,
                                                 varlen.max_seqlen, router_logits != nullptr);
      x = out[0];
      if (router_logits) router_logits->insert(router_logits->end(), out.begin() + 1, out.end());
    } else {
      x = decoder_layer(layers_[l], x, cos, sin, mask, router_logits, varlen.defined() ? &varlen : nullptr);
    }
    if (hooks) x = hooks->leave(l + 1, x, true);
  }
  if (!hooks) return rms_norm(x, final_norm_, config_.rms_norm_eps);
  const size_t final_block = layers_.size() + 1;
  x = hooks->enter(final_block, x);
  return hooks->leave(final_block, rms_norm(x, final_norm_, config_.rms_norm_eps), true);
}

torch::Tensor Transformer::decoder_layer(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                                         const torch::Tensor& sin, const torch::Tensor& mask,
                                         std::vector<torch::Tensor>* router_logits, const VarlenLayout* varlen) const {
  auto normed = rms_norm(x, w.input_norm, config_.rms_norm_eps);
  auto h = x + (config_.uses_mla() ? mla_attention(config_, w.mla, normed, cos, sin, mask, varlen)
                                   : attention(w, normed, cos, sin, mask, varlen));
  return h + feed_forward(w, rms_norm(h, w.post_attention_norm, config_.rms_norm_eps), router_logits);
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
  if (block_hooks_) hidden = block_hooks_->enter(head_block(), hidden);
  auto out = chunked_token_logprobs(hidden.reshape({B * (T - 1), -1}), lm_head_weight(), targets.reshape({-1}),
                                    temperature, entropy != nullptr);
  if (block_hooks_) out.logprobs = block_hooks_->leave(head_block(), out.logprobs, true);
  if (entropy) *entropy = out.entropy.view({B, T - 1});
  return out.logprobs.view({B, T - 1});
}

}  // namespace aha
