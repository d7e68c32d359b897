// ModelConfig: the architecture of a Hugging Face decoder-only checkpoint, read from its
// config.json. Supports Qwen2ForCausalLM (model_type "qwen2"), LlamaForCausalLM ("llama"),
// Qwen3ForCausalLM ("qwen3": RMSNorm over each q and k head before rotary),
// Qwen3MoeForCausalLM ("qwen3_moe": Qwen3 attention with mixture-of-experts MLPs in the layers
// decoder_sparse_step / mlp_only_layers select) and DeepseekV3ForCausalLM ("deepseek_v3": its
// own fields are read by deepseek_v3_config.h).
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
// num_experts_per_tok of num_experts (ModelConfig's MoE fields: n_routed_experts in config.json)
// with sigmoid scores and grouped top-k, and add n_shared_experts.
struct DeepseekMoeConfig {
  int64_t n_shared_experts = 0;
  int64_t first_k_dense_replace = 0;
  int64_t n_group = 1, topk_group = 1;
  double routed_scaling_factor = 1.0;
  int64_t num_nextn_predict_layers = 0;  // multi-token-prediction layers in the checkpoint: ignored
};

struct ModelConfig {
  std::string architecture;  // "Qwen2ForCausalLM", "LlamaForCausalLM", "Qwen3ForCausalLM", ...
  std::string model_type;    // "qwen2", "llama", "qwen3" or "qwen3_moe"
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
  bool qk_norm = false;  // Qwen3: RMSNorm weights [head_dim] on q and k per head, before rotary
  // Mixture of experts (qwen3_moe, deepseek_v3). num_experts == 0: every layer is a dense SwiGLU MLP.
  int64_t num_experts = 0;            // routed experts per MoE layer ("num_experts" / "num_local_experts")
  int64_t num_experts_per_tok = 0;    // top-k
  int64_t moe_intermediate_size = 0;  // each expert's SwiGLU width
  bool norm_topk_prob = false;        // renormalise the top-k softmax probabilities to sum 1
  int64_t decoder_sparse_step = 1;    // layer l is MoE when (l + 1) % step == 0 ...
  std::vector<int64_t> mlp_only_layers;  // ... and l is not listed here
  double router_aux_loss_coef = 0.0;  // transformers' default coefficient (the recipe decides its use)
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
  bool is_moe() const { return num_experts > 0; }
  // Whether decoder layer `layer` has routed experts instead of the dense MLP.
  bool is_moe_layer(int64_t layer) const;
  int64_t moe_layer_count() const;
  // All weights, and those one token uses (the dense part plus top-k of the experts).
  int64_t parameter_count() const;
  int64_t active_parameter_count() const;

  bool uses_mla() const { return mla.kv_lora_rank > 0; }
  // A DeepSeekMoE layer (gate, shared experts): deepseek_v3 from first_k_dense_replace on.
  bool is_deepseek_moe_layer(int64_t layer) const { return model_type == "deepseek_v3" && is_moe_layer(layer); }
};

}  // namespace aha
