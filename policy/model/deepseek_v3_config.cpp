#include "policy/model/deepseek_v3_config.h"

#include <algorithm>
#include <cmath>
#include <iostream>

#include "core/error.h"

namespace aha {
namespace {

double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

void read_deepseek_v3_fields(const json::ObjectReader& r, ModelConfig& c, const std::string& source) {
  auto positive = [&](const char* key) {
    const int64_t v = r.get_int(key);
    if (v <= 0) throw Error(source + ": field '" + key + "' must be positive, got " + std::to_string(v));
    return v;
  };
  auto& m = c.mla;
  // q_lora_rank null (or absent) means a plain q_proj; a number means q_a_proj -> norm -> q_b_proj.
  m.q_lora_rank = r.has("q_lora_rank") ? positive("q_lora_rank") : 0;
  m.kv_lora_rank = positive("kv_lora_rank");
  m.qk_nope_head_dim = positive("qk_nope_head_dim");
  m.qk_rope_head_dim = positive("qk_rope_head_dim");
  m.v_head_dim = positive("v_head_dim");
  m.rope_interleave = r.get_bool("rope_interleave", true);
  if (m.qk_rope_head_dim % 2 != 0) throw Error(source + ": qk_rope_head_dim must be even for rotary embeddings");
  c.head_dim = m.qk_rope_head_dim;  // transformers' head_dim for DeepSeek-V3: the rotary dims
  // transformers expands MLA's keys to every head and then repeats them by heads / kv heads:
  // only equal counts compute anything meaningful.
  if (c.num_key_value_heads != c.num_attention_heads) {
    throw Error(source + ": num_key_value_heads " + std::to_string(c.num_key_value_heads) +
                " must equal num_attention_heads " + std::to_string(c.num_attention_heads) +
                " for deepseek_v3 (multi-head latent attention has one latent for all heads)");
  }
  auto& e = c.deepseek_moe;
  c.num_experts = positive("n_routed_experts");
  c.num_experts_per_tok = positive("num_experts_per_tok");
  e.n_shared_experts = r.get_int("n_shared_experts", 0);
  if (e.n_shared_experts < 0) throw Error(source + ": field 'n_shared_experts' must be >= 0");
  c.moe_intermediate_size = positive("moe_intermediate_size");
  e.first_k_dense_replace = r.get_int("first_k_dense_replace", 0);
  if (e.first_k_dense_replace < 0 || e.first_k_dense_replace > c.num_hidden_layers) {
    throw Error(source + ": field 'first_k_dense_replace' must be in [0, num_hidden_layers], got " +
                std::to_string(e.first_k_dense_replace));
  }
  e.n_group = r.get_int("n_group", 1);
  e.topk_group = r.get_int("topk_group", 1);
  if (e.n_group <= 0 || c.num_experts % e.n_group != 0) {
    throw Error(source + ": field 'n_group' (" + std::to_string(e.n_group) + ") must be positive and divide n_routed_experts " +
                std::to_string(c.num_experts));
  }
  const int64_t per_group = c.num_experts / e.n_group;
  // Groups are ranked by the sum of their two best scores (transformers' topk(2) per group).
  if (per_group < 2) {
    throw Error(source + ": n_routed_experts / n_group must be at least 2 (each group is ranked by its two best experts), got " +
                std::to_string(per_group));
  }
  if (e.topk_group <= 0 || e.topk_group > e.n_group) {
    throw Error(source + ": field 'topk_group' must be in [1, n_group], got " + std::to_string(e.topk_group));
  }
  if (c.num_experts_per_tok > e.topk_group * per_group) {
    throw Error(source + ": num_experts_per_tok " + std::to_string(c.num_experts_per_tok) +
                " is more than the experts of topk_group groups (" + std::to_string(e.topk_group * per_group) + ")");
  }
  e.routed_scaling_factor = r.get_double("routed_scaling_factor", 1.0);
  if (!std::isfinite(e.routed_scaling_factor) || e.routed_scaling_factor <= 0) {
    throw Error(source + ": field 'routed_scaling_factor' must be a finite positive number");
  }
  c.norm_topk_prob = r.get_bool("norm_topk_prob", true);
  // What transformers' DeepseekV3 implements, and nothing else.
  if (r.has("scoring_func") && r.get_string("scoring_func") != "sigmoid") {
    throw Error(source + ": scoring_func '" + r.get_string("scoring_func") + "' is not supported (only sigmoid)");
  }
  if (r.has("topk_method") && r.get_string("topk_method") != "noaux_tc") {
    throw Error(source + ": topk_method '" + r.get_string("topk_method") +
                "' is not supported (only noaux_tc: sigmoid scores plus e_score_correction_bias, grouped top-k)");
  }
  if (r.has("moe_layer_freq") && r.get_int("moe_layer_freq") != 1) {
    throw Error(source + ": moe_layer_freq " + std::to_string(r.get_int("moe_layer_freq")) +
                " is not supported (only 1: every layer from first_k_dense_replace on is a MoE layer)");
  }
  // transformers 5 also names it num_mtp_layers.
  e.num_nextn_predict_layers = r.get_int("num_nextn_predict_layers", r.get_int("num_mtp_layers", 0));
  if (e.num_nextn_predict_layers < 0) throw Error(source + ": field 'num_nextn_predict_layers' must be >= 0");
}

double mla_softmax_scale(const ModelConfig& c) {
  double scale = std::pow(double(c.mla.qk_head_dim()), -0.5);
  const auto& s = c.rope_scaling;
  if (s.type != "default" && s.mscale_all_dim != 0) {
    const double m = yarn_mscale(s.factor, s.mscale_all_dim);
    scale = scale * m * m;
  }
  return scale;
}

double deepseek_v3_parameter_count(const ModelConfig& c, bool active) {
  const double h = double(c.hidden_size);
  const auto& m = c.mla;
  const auto& e = c.deepseek_moe;
  const double heads = double(c.num_attention_heads), qk = double(m.qk_head_dim());
  double attn = 0;
  if (m.q_lora_rank > 0) {
    attn += h * m.q_lora_rank + m.q_lora_rank + double(m.q_lora_rank) * heads * qk;  // q_a, its norm, q_b
    if (c.attention_bias) attn += m.q_lora_rank;
  } else {
    attn += h * heads * qk;
  }
  attn += h * double(m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank;  // kv_a_proj_with_mqa, its norm
  attn += double(m.kv_lora_rank) * heads * double(m.qk_nope_head_dim + m.v_head_dim);  // kv_b_proj
  attn += heads * double(m.v_head_dim) * h;  // o_proj
  if (c.attention_bias) attn += double(m.kv_lora_rank + m.qk_rope_head_dim) + h;
  const double dense_mlp = 3 * h * double(c.intermediate_size);
  const double expert = 3 * h * double(c.moe_intermediate_size);
  const double used_experts = active ? double(c.num_experts_per_tok) : double(c.num_experts);
  const double moe_mlp = h * double(c.num_experts)  // the gate (every token computes all its scores)
                         + used_experts * expert + double(e.n_shared_experts) * expert;
  // As is_moe_layer: layers before first_k_dense_replace are dense (all of them in a model cut
  // shorter than that, as model_sizes.h's per-layer difference cuts it).
  const double dense_layers = double(std::min(e.first_k_dense_replace, c.num_hidden_layers));
  const double moe_layers = double(c.num_hidden_layers) - dense_layers;
  const double embed = double(c.vocab_size) * h;
  return embed + (c.tie_word_embeddings ? 0 : embed) + h +
         c.num_hidden_layers * (attn + 2 * h) + dense_layers * dense_mlp + moe_layers * moe_mlp;
}

}  // namespace aha
