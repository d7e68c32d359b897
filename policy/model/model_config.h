// ModelConfig: the architecture of a Hugging Face decoder-only checkpoint, read from its
// config.json. Supports Qwen2ForCausalLM (model_type "qwen2"), LlamaForCausalLM ("llama") and
// DeepseekV3ForCausalLM ("deepseek_v3": its own fields are read by deepseek_v3_config.h).
//
// Contract: from_json() either returns a config whose every field is valid and consistent
// (head counts divide, positive sizes, supported rope scaling) or throws aha::Error naming the
// file and the field. Keys of config.json that do not change the computation are ignored; keys
// that would (sliding-window attention, unsupported rope types) are an error, never ignored.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace aha {

// Rotary-embedding frequency scaling ("rope_scaling" / transformers 5 "rope_parameters").
struct RopeScaling {
  std::string type = "default";  // default | linear | dynamic | llama3 | yarn (deepseek_v3 only)
  double factor = 1.0;
  // llama3 only
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;  // llama3 and yarn
  // yarn only: the ramp between interpolated and extrapolated frequencies, and mscale's inputs
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 0.0, mscale_all_dim = 0.0;  // 0: absent
  bool truncate = true;
  // The factor transformers multiplies the cos/sin tables by (yarn's attention_factor; 1 otherwise).
  double attention_factor = 1.0;
};

// Multi-head latent attention (deepseek_v3); kv_lora_rank > 0 marks a model that uses it.
struct MlaConfig {
  int64_t q_lora_rank = 0;  // 0: a plain q_proj (config.json's null)
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  bool rope_interleave = true;  // the rotary dims are stored as interleaved pairs
  double softmax_scale = 0;     // qk_head_dim^-0.5, times YaRN's mscale(factor, mscale_all_dim)^2
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
};

// DeepSeekMoE (deepseek_v3): layers from first_k_dense_replace on route each token to
// num_experts_per_tok of n_routed_experts (sigmoid scores, grouped top-k) and add n_shared_experts.
struct DeepseekMoeConfig {
  int64_t n_routed_experts = 0, num_experts_per_tok = 0, n_shared_experts = 0, moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t n_group = 1, topk_group = 1;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = true;
  int64_t num_nextn_predict_layers = 0;  // multi-token-prediction layers in the checkpoint: ignored
};

struct ModelConfig {
  std::string architecture;  // "Qwen2ForCausalLM" or "LlamaForCausalLM"
  std::string model_type;    // "qwen2" or "llama"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;   // bias on q/k/v (Qwen2: always; Llama: attention_bias)
  bool attention_out_bias = false;  // bias on o_proj (Llama attention_bias only)
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;
  std::string torch_dtype = "float32";  // float32 | bfloat16 | float16
  int64_t bos_token_id = -1;            // -1 when absent
  std::vector<int64_t> eos_token_ids;   // may be several
  int64_t pad_token_id = -1;
  std::string source_json;  // the config.json text this was read from (kept for saving)
  MlaConfig mla;                  // deepseek_v3 only (head_dim is then qk_rope_head_dim)
  DeepseekMoeConfig deepseek_moe;  // deepseek_v3 only

  // Parses config.json text; `source` names it in errors.
  static ModelConfig from_json(const std::string& text, const std::string& source);
  static ModelConfig from_file(const std::filesystem::path& path);

  // The config.json to save beside the weights: source_json (so that keys aha does not use
  // survive a round trip) with its dtype set to `dtype`.
  std::string to_json(const std::string& dtype) const;

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
  int64_t parameter_count() const;
  // Parameters one token uses (MoE layers count only the experts it is routed to).
  int64_t active_parameter_count() const;

  bool uses_mla() const { return mla.kv_lora_rank > 0; }
  bool is_deepseek_moe_layer(int64_t layer) const {
    return deepseek_moe.n_routed_experts > 0 && layer >= deepseek_moe.first_k_dense_replace;
  }
};

}  // namespace aha
