#include "rollout/memory_plan.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "core/error.h"
#include "policy/model/transformer.h"

namespace aha {
namespace {

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", double(bytes) / double(1LL << 30));
  return text;
}

}  // namespace

std::string MemoryPlan::describe() const {
  return "KV cache " + gib(kv_cache_bytes) + " + sampling " + gib(sampling_bytes) + " + prefill " +
         gib(prefill_bytes) + (fused_weight_bytes ? " + fused projections " + gib(fused_weight_bytes) : "") + " = " + gib(needed_bytes()) + " (weights " + gib(weight_bytes) + " already resident)";
}

int64_t kv_cache_bytes_per_token(const ModelConfig& c, int64_t element_size) {
  // MLA caches the latent and the rope key once for all heads (transformer.h's KVCache).
  const int64_t per_layer = c.uses_mla() ? c.mla.kv_lora_rank + c.mla.qk_rope_head_dim
                                         : 2 * c.num_key_value_heads * c.head_dim;
  return per_layer * c.num_hidden_layers * element_size;
}

MemoryPlan plan_rollout_memory(const ModelConfig& c, const RolloutShape& s) {
  // In double, saturated on the way out: an absurd request (-n 99999999999) must come out as a
  // huge plan that require_fits refuses, never as an int64 product that wrapped around.
  auto bytes = [](double v) {
    return v >= 9.0e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(v);
  };
  MemoryPlan plan;
  const double rows = s.rows > 0 ? double(s.rows) : double(s.prompts) * double(s.group_size);
  const double e = double(s.element_size);
  plan.weight_bytes = bytes(double(c.parameter_count()) * e);
  const double per_token = double(kv_cache_bytes_per_token(c, s.element_size));
  plan.kv_cache_bytes = bytes(rows * double(s.cache_capacity) * per_token);
  // Per row: the logits in the model dtype, then up to four float32 [V] tensors alive at once
  // (logits / temperature, probabilities, truncated masses, the learner-style log-softmax of
  // greedy decoding); nucleus sampling adds the sorted values and their int64 order.
  const double per_row = double(c.vocab_size) * (e + 4 * 4 + (s.top_p ? 4 + 8 : 0));
  plan.sampling_bytes = bytes(rows * per_row);
  // One prefill chunk: its temporary cache, a few hidden-size activations and the MLP's
  // intermediate ones per token, attention scores per head, and its rows' expanded copy.
  const double prompt = double(s.prompt_tokens), tokens = double(s.prefill_rows) * prompt;
  const double chunk_cache = tokens * per_token;
  // The feed-forward's per-token activations: a dense layer's gate, up and product; an MoE
  // layer's router logits, then per routed copy (k of them) the permuted input and output and the
  // expert's gate/up and product (DeepSeek-V3: plus its shared experts'). The larger of the two
  // kinds present.
  const bool dense_layers = c.moe_layer_count() < c.num_hidden_layers;
  const double dense_ffn = dense_layers ? 3 * double(c.intermediate_size) : 0.0;
  const double moe_ffn = c.is_moe() ? double(c.num_experts) +
                                          double(c.num_experts_per_tok) *
                                              (2 * double(c.hidden_size) + 3 * double(c.moe_intermediate_size)) +
                                          3 * double(c.deepseek_moe.n_shared_experts * c.moe_intermediate_size)
                                    : 0.0;
  // MLA's queries and expanded keys and values: heads x (qk + v) per token.
  const double heads_width = c.uses_mla() ? double(c.num_attention_heads) * double(c.mla.qk_head_dim() + c.mla.v_head_dim)
                                          : 2 * double(c.q_size());
  const double activations =
      tokens * (6 * double(c.hidden_size) + heads_width + std::max(dense_ffn, moe_ffn)) * e +
      double(s.prefill_rows) * double(c.num_attention_heads) * prompt * prompt * 4;
  plan.prefill_bytes = bytes(chunk_cache * 2 + activations);
  if (s.fused_projections) plan.fused_weight_bytes = Transformer::fused_projection_bytes(c, s.element_size);
  return plan;
}

int64_t rollout_cache_capacity(int64_t longest_prompt, int64_t max_new, bool refills, int64_t span_bucket) {
  const int64_t slots = longest_prompt + max_new + (refills ? max_new - 1 : 0);
  return (slots + span_bucket - 1) / span_bucket * span_bucket;
}

void require_fits(const MemoryPlan& plan, const RolloutShape& s, int64_t available_bytes,
                  const std::string& device_name) {
  if (plan.needed_bytes() <= available_bytes) return;
  const std::string rows = s.rows > 0 && s.rows < s.prompts * s.group_size
                               ? std::to_string(s.rows) + " decode rows (of " + std::to_string(s.prompts) +
                                     " prompts x group size " + std::to_string(s.group_size) + ")"
                               : std::to_string(s.prompts) + " prompts x group size " + std::to_string(s.group_size);
  throw Error("rollout: " + rows + " x " + std::to_string(s.cache_capacity) + " cache slots needs " + plan.describe() +
              ", but only " + gib(available_bytes) + " is free on " + device_name +
              ". Lower the group size, the number of prompts (or rows) decoding at once or max_new_tokens (the KV "
              "cache grows with their product), or use a shorter prompt.");
}

}  // namespace aha
