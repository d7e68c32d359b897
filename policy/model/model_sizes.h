// Sizes that follow from a model's config alone, for memory plans made before anything is
// allocated: the KV cache bytes of one token, the parameters of one decoder layer, and the
// activation elements one token keeps per decoder layer. The rollout's memory plan
// (rollout/memory_plan.h) and the sharding plan of `aha plan` (policy/parallel/sharding_plan.h)
// both read them here, so the two never disagree about a model.
#pragma once
#include <cstdint>

#include "policy/model/model_config.h"

namespace aha {

// KV cache bytes of one token over all layers: layers x 2 x kv_heads x head_dim x element, or
// for multi-head latent attention (deepseek_v3) layers x (kv_lora_rank + qk_rope_head_dim) x
// element (the compressed latent and the rope key, KVCache in transformer.h).
int64_t kv_cache_bytes_per_token(const ModelConfig& config, int64_t element_size);

// Parameters of decoder layer `layer` (attention, norms, its dense MLP or router and all its
// experts): ModelConfig::parameter_count's own sums, as the difference between the model cut
// after layer + 1 layers and after `layer` layers, so the two can never drift apart.
int64_t decoder_layer_parameter_count(const ModelConfig& config, int64_t layer);

// Activation elements one token of a forward pass produces in decoder layer `layer`, counting
// what backward needs (and what a prefill holds at once): about six hidden-size tensors
// (residual stream, norms, attention output), the attention's query/key/value widths (MLA:
// heads x (qk_head_dim + v_head_dim)), and the feed-forward's: a dense layer's gate, up and
// product (3 x intermediate); an MoE layer's router logits (E), then per routed copy (k of them)
// the permuted input and output and the expert's gate/up and product, plus DeepSeek's shared
// experts' 3 x n_shared x moe_intermediate. Attention scores are not counted (flash attention
// keeps none); callers add them where they materialise.
double decoder_layer_activation_width(const ModelConfig& config, int64_t layer);

}  // namespace aha
