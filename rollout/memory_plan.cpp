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
  // One decoder layer's activations at a time (model_sizes.h), the widest layer's.
  double layer_width = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layer_width = std::max(layer_width, decoder_layer_activation_width(c, l));
  const double activations =
      tokens * layer_width * e +
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
