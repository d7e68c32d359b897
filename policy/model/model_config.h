// ModelConfig: the architecture of a Hugging Face decoder-only checkpoint, read from its
// config.json. Supports Qwen2ForCausalLM (model_type "qwen2") and LlamaForCausalLM ("llama").
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
  std::string type = "default";  // default | linear | dynamic | llama3
  double factor = 1.0;
  // llama3 only
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
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

  // Parses config.json text; `source` names it in errors.
  static ModelConfig from_json(const std::string& text, const std::string& source);
  static ModelConfig from_file(const std::filesystem::path& path);

  // The config.json to save beside the weights: source_json (so that keys aha does not use
  // survive a round trip) with its dtype set to `dtype`.
  std::string to_json(const std::string& dtype) const;

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
  int64_t parameter_count() const;
};

}  // namespace aha
