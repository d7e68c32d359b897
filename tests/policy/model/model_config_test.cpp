// config.json parsing: the fields transformers writes (versions 4 and 5), and clear errors.
#include "policy/model/model_config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

const char* kQwen = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 1000,
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 8,
  "num_key_value_heads": 2, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "eos_token_id": [7, 9], "bos_token_id": 3,
  "use_sliding_window": false, "sliding_window": 4096, "transformers_version": "4.43.1"})";

std::string error_of(const std::string& text) {
  try {
    aha::ModelConfig::from_json(text, "config.json");
  } catch (const aha::Error& e) {
    return e.what();
  }
  return "";
}

std::string with(const std::string& key, const std::string& value) {
  std::string s = kQwen;
  auto pos = s.find("\"" + key + "\"");
  if (pos == std::string::npos) return s.substr(0, s.size() - 1) + ", \"" + key + "\": " + value + "}";
  auto colon = s.find(':', pos);
  auto end = s.find_first_of(",}", colon);
  if (s[colon + 2] == '[') end = s.find(']', colon) + 1;
  return s.substr(0, colon + 1) + " " + value + s.substr(end);
}

std::string without(const std::string& key) {
  std::string s = kQwen;
  auto pos = s.find("\"" + key + "\"");
  auto end = s.find_first_of(",}", s.find(':', pos));
  if (s[end] == ',') ++end;
  return s.substr(0, pos) + s.substr(end);
}

TEST(ModelConfig, ParsesQwen2) {
  auto c = aha::ModelConfig::from_json(kQwen, "config.json");
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_TRUE(c.attention_bias);  // Qwen2 q/k/v
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(c.bos_token_id, 3);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.rope_scaling.type, "default");
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  // embed + 2 layers (q,k,v,o with q/k/v bias; 3 MLP mats; 2 norms) + final norm; tied head.
  int64_t layer = 64 * 64 + 2 * 64 * 16 + 64 * 64 + 64 + 2 * 16 + 3 * 64 * 128 + 2 * 64;
  EXPECT_EQ(c.parameter_count(), 1000 * 64 + 2 * layer + 64);
}

TEST(ModelConfig, ParsesTransformers5RopeParametersAndDtype) {
  std::string s = without("rope_theta");
  s = with("rope_parameters", R"({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
       "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  s = s.substr(0, s.find("\"rope_theta\"")) + s.substr(s.find("\"tie_word"));  // drop top-level rope_theta
  auto c = aha::ModelConfig::from_json(s, "config.json");
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  auto d = aha::ModelConfig::from_json(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 8,
    "rms_norm_eps": 1e-5, "dtype": "float16", "attention_bias": true, "eos_token_id": 2})", "c");
  EXPECT_EQ(d.torch_dtype, "float16");
  EXPECT_EQ(d.num_key_value_heads, 2);  // defaults to the head count
  EXPECT_TRUE(d.attention_out_bias);
  EXPECT_EQ(d.eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(d.architecture, "LlamaForCausalLM");
}

TEST(ModelConfig, OldStyleRopeScaling) {
  auto c = aha::ModelConfig::from_json(with("rope_scaling", R"({"type": "linear", "factor": 4.0})"), "c");
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 4.0);
}

TEST(ModelConfig, ErrorsNameTheField) {
  EXPECT_NE(error_of(without("hidden_size")).find("missing required field 'hidden_size'"), std::string::npos);
  EXPECT_NE(error_of(without("model_type")).find("'model_type'"), std::string::npos);
  EXPECT_NE(error_of(with("model_type", "\"mistral\"")).find("model_type 'mistral' is not supported"), std::string::npos);
  EXPECT_NE(error_of(with("architectures", "[\"LlamaForCausalLM\"]")).find("architecture 'LlamaForCausalLM'"),
            std::string::npos);
  EXPECT_NE(error_of(with("num_key_value_heads", "3")).find("not a multiple"), std::string::npos);
  EXPECT_NE(error_of(with("hidden_size", "-64")).find("'hidden_size' must be positive"), std::string::npos);
  EXPECT_NE(error_of(with("hidden_size", "\"64\"")).find("'hidden_size' must be an integer"), std::string::npos);
  EXPECT_NE(error_of(with("use_sliding_window", "true")).find("use_sliding_window"), std::string::npos);
  EXPECT_NE(error_of(with("rope_scaling", R"({"type": "yarn", "factor": 4.0})")).find("rope type 'yarn'"),
            std::string::npos);
  EXPECT_NE(error_of(with("torch_dtype", "\"int8\"")).find("torch_dtype 'int8'"), std::string::npos);
  EXPECT_NE(error_of(with("eos_token_id", "5000")).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error_of("{\"model_type\": ").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of(with("hidden_act", "\"gelu\"")).find("hidden_act 'gelu'"), std::string::npos);
}

TEST(ModelConfig, SavedJsonKeepsUnknownKeysAndSetsDtype) {
  auto c = aha::ModelConfig::from_json(kQwen, "config.json");
  auto saved = c.to_json("float32");
  EXPECT_NE(saved.find("\"sliding_window\": 4096"), std::string::npos);
  EXPECT_NE(saved.find("\"torch_dtype\": \"float32\""), std::string::npos);
  EXPECT_EQ(aha::ModelConfig::from_json(saved, "saved").torch_dtype, "float32");
}

// Qwen3-MoE as transformers 5.24 saves it: "num_local_experts" for the hub's "num_experts",
// nulls for absent ids; layers 1 and 3 of 0..3 are MoE (step 2), layer 3 forced dense.
const char* kQwen3Moe = R"({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
  "vocab_size": 100, "hidden_size": 16, "intermediate_size": 40, "moe_intermediate_size": 8,
  "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12,
  "num_local_experts": 6, "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [3],
  "norm_topk_prob": true, "router_aux_loss_coef": 0.001, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
  "bos_token_id": null, "eos_token_id": null, "tie_word_embeddings": false, "use_sliding_window": false})";

TEST(ModelConfig, ParsesQwen3MoeAndCountsTotalAndActiveParameters) {
  auto c = aha::ModelConfig::from_json(kQwen3Moe, "config.json");
  EXPECT_EQ(c.architecture, "Qwen3MoeForCausalLM");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.num_experts, 6);
  EXPECT_EQ(c.head_dim, 12);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.bos_token_id, -1);
  std::vector<bool> moe;
  for (int64_t l = 0; l < 4; ++l) moe.push_back(c.is_moe_layer(l));
  EXPECT_EQ(moe, (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ(c.moe_layer_count(), 1);
  // By hand: attention q 16x48, k and v 16x24, o 48x16, q/k norms 12 each, 2 layer norms of 16.
  const int64_t attention = 16 * 48 + 2 * 16 * 24 + 48 * 16 + 2 * 12 + 2 * 16;
  const int64_t dense = 3 * 16 * 40, router = 6 * 16, expert = 3 * 16 * 8;
  const int64_t embeddings = 2 * 100 * 16 + 16;  // untied head, final norm
  EXPECT_EQ(c.parameter_count(), embeddings + 4 * attention + 3 * dense + router + 6 * expert);
  EXPECT_EQ(c.active_parameter_count(), embeddings + 4 * attention + 3 * dense + router + 2 * expert);
  // The hub's name for the expert count.
  std::string hub = kQwen3Moe;
  hub.replace(hub.find("num_local_experts"), 17, "num_experts");
  EXPECT_EQ(aha::ModelConfig::from_json(hub, "hub").num_experts, 6);
}

TEST(ModelConfig, Qwen3DenseHasQkNormsAndBiasOnAllFourProjections) {
  auto c = aha::ModelConfig::from_json(R"({"model_type": "qwen3", "vocab_size": 10, "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
    "head_dim": 6, "max_position_embeddings": 8, "rms_norm_eps": 1e-6, "attention_bias": true})", "c");
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_TRUE(c.qk_norm && c.attention_bias && c.attention_out_bias);
  EXPECT_FALSE(c.is_moe());
  EXPECT_EQ(c.parameter_count(), c.active_parameter_count());
  const int64_t attention = 8 * 12 + 2 * 8 * 6 + 12 * 8 + (12 + 2 * 6 + 8) + 2 * 6;
  EXPECT_EQ(c.parameter_count(), 10 * 8 + attention + 3 * 8 * 16 + 2 * 8 + 10 * 8 + 8);
}

TEST(ModelConfig, Qwen3MoeErrorsNameTheField) {
  auto moe_error = [](const std::string& key, const std::string& value) {
    std::string s = kQwen3Moe;
    auto colon = s.find(':', s.find("\"" + key + "\""));
    auto end = s.find_first_of(",}", colon);
    if (s[colon + 2] == '[') end = s.find(']', colon) + 1;
    return error_of(s.substr(0, colon + 1) + " " + value + s.substr(end));
  };
  EXPECT_NE(moe_error("num_experts_per_tok", "7").find("more than num_experts 6"), std::string::npos);
  EXPECT_NE(moe_error("mlp_only_layers", "[4]").find("mlp_only_layers names layer 4"), std::string::npos);
  EXPECT_NE(moe_error("decoder_sparse_step", "0").find("'decoder_sparse_step' must be positive"), std::string::npos);
  EXPECT_NE(moe_error("moe_intermediate_size", "0").find("'moe_intermediate_size' must be positive"),
            std::string::npos);
  EXPECT_NE(moe_error("architectures", "[\"Qwen3ForCausalLM\"]").find("expected Qwen3MoeForCausalLM"),
            std::string::npos);
  EXPECT_NE(moe_error("use_sliding_window", "true").find("use_sliding_window"), std::string::npos);
}

// The real shapes in recipes/models/ against the parameter counts their model cards publish
// to the last digit they give (which may be truncated: 3.353B activated is published as 3.3B):
// Qwen3-0.6B "0.6B, 0.44B non-embedding"; Qwen3-30B-A3B "30.5B in total and 3.3B activated,
// 29.9B non-embedding".
TEST(ModelConfig, RealQwen3ShapesHaveTheirPublishedParameterCounts) {
  const std::string models = std::string(AHA_SOURCE_DIR) + "/recipes/models/";
  auto small = aha::ModelConfig::from_file(models + "qwen3-0.6b.json");
  const double small_embedding = double(small.vocab_size * small.hidden_size);  // tied
  EXPECT_NEAR(double(small.parameter_count()) / 1e9, 0.6, 0.1);
  EXPECT_NEAR((double(small.parameter_count()) - small_embedding) / 1e9, 0.44, 0.01);
  auto moe = aha::ModelConfig::from_file(models + "qwen3-30b-a3b.json");
  const double moe_embedding = 2.0 * double(moe.vocab_size * moe.hidden_size);  // untied
  EXPECT_EQ(moe.moe_layer_count(), 48);
  EXPECT_NEAR(double(moe.parameter_count()) / 1e9, 30.5, 0.1);
  EXPECT_NEAR(double(moe.active_parameter_count()) / 1e9, 3.3, 0.1);
  EXPECT_NEAR((double(moe.parameter_count()) - moe_embedding) / 1e9, 29.9, 0.1);
}

}  // namespace
