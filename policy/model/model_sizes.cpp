#include "policy/model/model_sizes.h"

#include "core/error.h"

namespace aha {

int64_t kv_cache_bytes_per_token(const ModelConfig& c, int64_t element_size) {
  // MLA caches the latent and the rope key once for all heads (transformer.h's KVCache).
  const int64_t per_layer = c.uses_mla() ? c.mla.kv_lora_rank + c.mla.qk_rope_head_dim
                                         : 2 * c.num_key_value_heads * c.head_dim;
  return per_layer * c.num_hidden_layers * element_size;
}

int64_t decoder_layer_parameter_count(const ModelConfig& c, int64_t layer) {
  require(layer >= 0 && layer < c.num_hidden_layers,
          "decoder layer " + std::to_string(layer) + " is outside the model's " + std::to_string(c.num_hidden_layers) +
              " layers");
  // is_moe_layer(l) depends on l alone, so the first `layer` layers of the cut model are the
  // model's own.
  ModelConfig upto = c, before = c;
  upto.num_hidden_layers = layer + 1;
  before.num_hidden_layers = layer;
  return upto.parameter_count() - before.parameter_count();
}

double decoder_layer_activation_width(const ModelConfig& c, int64_t layer) {
  const double h = double(c.hidden_size);
  const double heads_width = c.uses_mla() ? double(c.num_attention_heads) * double(c.mla.qk_head_dim() + c.mla.v_head_dim)
                                          : 2 * double(c.q_size());
  double ffn = 0;
  if (c.is_moe_layer(layer)) {
    ffn = double(c.num_experts) +
          double(c.num_experts_per_tok) * (2 * h + 3 * double(c.moe_intermediate_size)) +
          3 * double(c.deepseek_moe.n_shared_experts) * double(c.moe_intermediate_size);
  } else {
    ffn = 3 * double(c.intermediate_size);
  }
  return 6 * h + heads_width + ffn;
}

}  // namespace aha
