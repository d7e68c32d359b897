#include "policy/model/model_config.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "policy/model/deepseek_v3_config.h"

namespace aha {
namespace {

RopeScaling parse_rope_scaling(const rapidjson::Value& value, const std::string& context, bool allow_yarn,
                               int64_t max_position_embeddings) {
  json::ObjectReader r(value, context);
  RopeScaling s;
  // transformers 4 writes "type" (older) or "rope_type"; transformers 5 "rope_type".
  s.type = r.has("rope_type") ? r.get_string("rope_type") : r.get_string("type", "default");
  if (s.type == "default") return s;
  if (s.type == "yarn" && !allow_yarn) throw Error(context + ": rope type 'yarn' is supported for deepseek_v3 only");
  if (s.type != "linear" && s.type != "dynamic" && s.type != "llama3" && s.type != "yarn") {
    throw Error(context + ": rope type '" + s.type +
                "' is not supported (supported: default, linear, dynamic, llama3; yarn for deepseek_v3)");
  }
  s.factor = r.get_double("factor");
  if (!(s.factor >= 1.0)) throw Error(context + ": 'factor' must be >= 1");
  if (s.type == "llama3") {
    s.low_freq_factor = r.get_double("low_freq_factor");
    s.high_freq_factor = r.get_double("high_freq_factor");
    s.original_max_position_embeddings = r.get_int("original_max_position_embeddings");
    if (!(s.high_freq_factor > s.low_freq_factor)) {
      throw Error(context + ": 'high_freq_factor' must be greater than 'low_freq_factor'");
    }
  }
  if (s.type == "yarn") {
    // As transformers' _compute_yarn_parameters (absent or null keys take its defaults).
    s.original_max_position_embeddings = r.get_int("original_max_position_embeddings", max_position_embeddings);
    if (s.original_max_position_embeddings <= 0) throw Error(context + ": 'original_max_position_embeddings' must be positive");
    s.beta_fast = r.get_double("beta_fast", 32.0);
    s.beta_slow = r.get_double("beta_slow", 1.0);
    if (s.beta_fast == 0) s.beta_fast = 32.0;  // transformers: `or 32`
    if (s.beta_slow == 0) s.beta_slow = 1.0;
    s.mscale = r.get_double("mscale", 0.0);
    s.mscale_all_dim = r.get_double("mscale_all_dim", 0.0);
    s.truncate = r.get_bool("truncate", true);
    for (auto [v, key] : {std::pair{s.beta_fast, "beta_fast"}, {s.beta_slow, "beta_slow"}, {s.mscale, "mscale"},
                          {s.mscale_all_dim, "mscale_all_dim"}}) {
      if (!std::isfinite(v) || v < 0) throw Error(context + ": '" + key + "' must be a finite number >= 0");
    }
    auto get_mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
    if (r.has("attention_factor")) s.attention_factor = r.get_double("attention_factor");
    else if (s.mscale != 0 && s.mscale_all_dim != 0)
      s.attention_factor = get_mscale(s.factor, s.mscale) / get_mscale(s.factor, s.mscale_all_dim);
    else
      s.attention_factor = get_mscale(s.factor, 1.0);
    if (!std::isfinite(s.attention_factor) || s.attention_factor <= 0) {
      throw Error(context + ": 'attention_factor' must be a finite positive number");
    }
  }
  return s;
}

std::string json_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

void require_positive(int64_t value, const std::string& source, const char* field) {
  if (value <= 0) throw Error(source + ": field '" + field + "' must be positive, got " + std::to_string(value));
}

// Qwen3-MoE's expert fields. transformers 5 writes "num_local_experts" for the hub's
// "num_experts" (an attribute alias); either is read.
void parse_moe(const json::ObjectReader& r, ModelConfig& c, const std::string& source) {
  c.num_experts = r.has("num_experts") ? r.get_int("num_experts") : r.get_int("num_local_experts", 0);
  if (c.num_experts < 0) throw Error(source + ": field 'num_experts' must be >= 0");
  c.decoder_sparse_step = r.get_int("decoder_sparse_step", 1);
  require_positive(c.decoder_sparse_step, source, "decoder_sparse_step");
  if (r.has("mlp_only_layers")) {
    c.mlp_only_layers = json::int_or_int_list(r.get("mlp_only_layers"), source + ": mlp_only_layers");
    for (int64_t l : c.mlp_only_layers) {
      if (l < 0 || l >= c.num_hidden_layers)
        throw Error(source + ": mlp_only_layers names layer " + std::to_string(l) + ", but the model has " +
                    std::to_string(c.num_hidden_layers) + " layers");
    }
  }
  c.norm_topk_prob = r.get_bool("norm_topk_prob", false);
  c.router_aux_loss_coef = r.get_double("router_aux_loss_coef", 0.001);
  if (!std::isfinite(c.router_aux_loss_coef) || c.router_aux_loss_coef < 0)
    throw Error(source + ": field 'router_aux_loss_coef' must be a finite number >= 0");
  if (c.num_experts == 0) return;
  c.num_experts_per_tok = r.get_int("num_experts_per_tok");
  c.moe_intermediate_size = r.get_int("moe_intermediate_size");
  require_positive(c.num_experts_per_tok, source, "num_experts_per_tok");
  require_positive(c.moe_intermediate_size, source, "moe_intermediate_size");
  if (c.num_experts_per_tok > c.num_experts)
    throw Error(source + ": num_experts_per_tok " + std::to_string(c.num_experts_per_tok) + " is more than num_experts " +
                std::to_string(c.num_experts));
}

}  // namespace

ModelConfig ModelConfig::from_file(const std::filesystem::path& path) {
  return from_json(read_file(path), path.string());
}

ModelConfig ModelConfig::from_json(const std::string& text, const std::string& source) {
  auto doc = json::parse(text, source);
  json::ObjectReader r(doc, source);
  ModelConfig c;
  c.source_json = text;
  c.model_type = r.get_string("model_type");
  static const std::vector<std::pair<std::string, std::string>> kArchitectures = {
      {"qwen2", "Qwen2ForCausalLM"}, {"llama", "LlamaForCausalLM"},
      {"qwen3", "Qwen3ForCausalLM"}, {"qwen3_moe", "Qwen3MoeForCausalLM"},
      {"deepseek_v3", "DeepseekV3ForCausalLM"}};
  for (const auto& [type, arch] : kArchitectures) {
    if (type == c.model_type) c.architecture = arch;
  }
  if (c.architecture.empty()) {
    throw Error(source + ": model_type '" + c.model_type +
                "' is not supported (supported: qwen2, llama, qwen3, qwen3_moe, deepseek_v3)");
  }
  const std::string expected_arch = c.architecture;
  const bool deepseek = c.model_type == "deepseek_v3";
  if (r.has("architectures")) {
    const auto& archs = r.get("architectures");
    if (!archs.IsArray() || archs.Size() != 1 || !archs[0].IsString()) {
      throw Error(source + ": field 'architectures' must be a list with one name");
    }
    std::string arch = archs[0].GetString();
    if (arch != expected_arch) {
      throw Error(source + ": architecture '" + arch + "' is not supported for model_type '" +
                  c.model_type + "' (expected " + expected_arch + ")");
    }
  }
  c.vocab_size = r.get_int("vocab_size");
  c.hidden_size = r.get_int("hidden_size");
  c.intermediate_size = r.get_int("intermediate_size");
  c.num_hidden_layers = r.get_int("num_hidden_layers");
  c.num_attention_heads = r.get_int("num_attention_heads");
  c.num_key_value_heads = r.get_int("num_key_value_heads", c.num_attention_heads);
  for (auto [v, f] : {std::pair{c.vocab_size, "vocab_size"}, {c.hidden_size, "hidden_size"},
                      {c.intermediate_size, "intermediate_size"}, {c.num_hidden_layers, "num_hidden_layers"},
                      {c.num_attention_heads, "num_attention_heads"}, {c.num_key_value_heads, "num_key_value_heads"}}) {
    require_positive(v, source, f);
  }
  if (deepseek) read_deepseek_v3_fields(r, c, source);  // sets head_dim: the rotary dims
  else c.head_dim = r.get_int("head_dim", 0);
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0) {
      throw Error(source + ": hidden_size " + std::to_string(c.hidden_size) +
                  " is not divisible by num_attention_heads " + std::to_string(c.num_attention_heads) +
                  " and no head_dim is given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  require_positive(c.head_dim, source, "head_dim");
  if (c.head_dim % 2 != 0) throw Error(source + ": head_dim must be even for rotary embeddings");
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw Error(source + ": num_attention_heads " + std::to_string(c.num_attention_heads) +
                " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  }
  c.max_position_embeddings = r.get_int("max_position_embeddings");
  require_positive(c.max_position_embeddings, source, "max_position_embeddings");
  c.rms_norm_eps = r.get_double("rms_norm_eps");
  c.initializer_range = r.get_double("initializer_range", 0.02);

  // Rotary parameters: transformers 4 has rope_theta + rope_scaling at the top level;
  // transformers 5 puts both into rope_parameters.
  if (r.has("rope_parameters")) {
    const auto& rp = r.get("rope_parameters");
    json::ObjectReader rope(rp, source + ": rope_parameters");
    c.rope_theta = rope.get_double("rope_theta", r.get_double("rope_theta", 10000.0));
    c.rope_scaling = parse_rope_scaling(rp, source + ": rope_parameters", deepseek, c.max_position_embeddings);
  } else {
    c.rope_theta = r.get_double("rope_theta", 10000.0);
    if (r.has("rope_scaling"))
      c.rope_scaling = parse_rope_scaling(r.get("rope_scaling"), source + ": rope_scaling", deepseek, c.max_position_embeddings);
  }
  // Every number's domain, so that a bad config is an error here and never a NaN later.
  auto require_finite_above = [&](double value, double floor, bool floor_allowed, const char* field) {
    if (std::isfinite(value) && (value > floor || (floor_allowed && value == floor))) return;
    throw Error(source + ": field '" + field + "' must be a finite number " + (floor_allowed ? ">= " : "> ") +
                json_number(floor) + ", got " + json_number(value));
  };
  require_finite_above(c.rms_norm_eps, 0.0, false, "rms_norm_eps");
  require_finite_above(c.rope_theta, 0.0, false, "rope_theta");
  require_finite_above(c.initializer_range, 0.0, true, "initializer_range");
  if (c.rope_scaling.type != "default") require_finite_above(c.rope_scaling.factor, 1.0, true, "rope_scaling.factor");
  if (c.rope_scaling.type == "llama3") {
    require_finite_above(c.rope_scaling.low_freq_factor, 0.0, false, "rope_scaling.low_freq_factor");
    require_finite_above(c.rope_scaling.high_freq_factor, 0.0, false, "rope_scaling.high_freq_factor");
  }
  if (c.rope_scaling.type == "llama3" && c.rope_scaling.original_max_position_embeddings <= 0) {
    throw Error(source + ": llama3 rope scaling needs a positive original_max_position_embeddings");
  }
  if (r.has("partial_rotary_factor") && r.get_double("partial_rotary_factor") != 1.0) {
    throw Error(source + ": partial_rotary_factor other than 1.0 is not supported");
  }
  if (r.has("hidden_act") && r.get_string("hidden_act") != "silu") {
    throw Error(source + ": hidden_act '" + r.get_string("hidden_act") + "' is not supported (only silu)");
  }
  if (c.model_type == "qwen2" || c.model_type == "qwen3" || c.model_type == "qwen3_moe") {
    if (r.get_bool("use_sliding_window", false)) {
      throw Error(source + ": use_sliding_window = true is not supported");
    }
  }
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2 always has q/k/v biases and no o_proj bias
  } else if (deepseek) {
    // Bias on q_a_proj, kv_a_proj_with_mqa and o_proj (never on q_proj, q_b_proj or kv_b_proj).
    c.attention_bias = c.attention_out_bias = r.get_bool("attention_bias", false);
    if (r.has("pretraining_tp") && r.get_int("pretraining_tp") != 1) {
      throw Error(source + ": pretraining_tp other than 1 is not supported");
    }
    c.mla.softmax_scale = mla_softmax_scale(c);
  } else if (c.model_type == "qwen3" || c.model_type == "qwen3_moe") {
    // Qwen3's attention_bias puts a bias on all four projections (o_proj too); the MLPs have none.
    c.attention_bias = c.attention_out_bias = r.get_bool("attention_bias", false);
    c.qk_norm = true;
    if (c.model_type == "qwen3_moe") parse_moe(r, c, source);
  } else {
    c.attention_bias = c.attention_out_bias = r.get_bool("attention_bias", false);
    c.mlp_bias = r.get_bool("mlp_bias", false);
    if (r.has("pretraining_tp") && r.get_int("pretraining_tp") != 1) {
      throw Error(source + ": pretraining_tp other than 1 is not supported");
    }
  }
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  // transformers 5 writes "dtype", 4 writes "torch_dtype".
  c.torch_dtype = r.has("torch_dtype") ? r.get_string("torch_dtype") : r.get_string("dtype", "float32");
  if (c.torch_dtype != "float32" && c.torch_dtype != "bfloat16" && c.torch_dtype != "float16") {
    throw Error(source + ": torch_dtype '" + c.torch_dtype + "' is not supported (float32, bfloat16, float16)");
  }
  if (r.has("bos_token_id")) c.bos_token_id = r.get_int("bos_token_id");
  if (r.has("eos_token_id")) c.eos_token_ids = json::int_or_int_list(r.get("eos_token_id"), source + ": eos_token_id");
  if (r.has("pad_token_id")) c.pad_token_id = r.get_int("pad_token_id");
  for (int64_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) throw Error(source + ": eos_token_id " + std::to_string(id) + " is outside the vocabulary");
  }
  for (auto [id, field] : {std::pair{c.bos_token_id, "bos_token_id"}, {c.pad_token_id, "pad_token_id"}}) {
    if (id >= c.vocab_size)
      throw Error(source + ": " + field + " " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(c.vocab_size));
  }
  // The sizes multiply: each may be plausible and their product still beyond any machine (and
  // beyond int64 in parameter_count). 1e14 parameters is ~150x the largest open model.
  const double h = double(c.hidden_size), layers = double(c.num_hidden_layers), d = double(c.head_dim);
  const double q = double(c.num_attention_heads) * d, kv = double(c.num_key_value_heads) * d;
  const double ffn = std::max(double(c.intermediate_size), double(c.num_experts) * double(c.moe_intermediate_size));
  const double estimate = deepseek ? deepseek_v3_parameter_count(c, false)
                                  : 2 * double(c.vocab_size) * h + layers * (2 * h * (q + kv) + 3 * h * ffn);
  if (!(estimate <= 1e14))
    throw Error(source + ": the sizes describe about " + json_number(estimate) + " parameters (vocab_size " +
                std::to_string(c.vocab_size) + ", hidden_size " + std::to_string(c.hidden_size) +
                ", intermediate_size " + std::to_string(c.intermediate_size) + ", num_hidden_layers " +
                std::to_string(c.num_hidden_layers) + "), more than any model can have; check these fields");
  return c;
}

std::string ModelConfig::to_json(const std::string& dtype) const {
  rapidjson::Document doc;
  doc.Parse(source_json.c_str(), source_json.size());
  if (doc.HasParseError() || !doc.IsObject()) throw Error("config.json to save is not a JSON object");
  auto& alloc = doc.GetAllocator();
  const char* key = doc.HasMember("dtype") && !doc.HasMember("torch_dtype") ? "dtype" : "torch_dtype";
  doc.RemoveMember(key);
  doc.AddMember(rapidjson::Value(key, alloc), rapidjson::Value(dtype.c_str(), alloc), alloc);
  if (!doc.HasMember("architectures")) {
    rapidjson::Value archs(rapidjson::kArrayType);
    archs.PushBack(rapidjson::Value(architecture.c_str(), alloc), alloc);
    doc.AddMember("architectures", archs, alloc);
  }
  return json::to_string(doc, true) + "\n";
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  if (model_type == "deepseek_v3") return num_experts > 0 && layer >= deepseek_moe.first_k_dense_replace;
  if (num_experts == 0 || (layer + 1) % decoder_sparse_step != 0) return false;
  return std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) == mlp_only_layers.end();
}

int64_t ModelConfig::moe_layer_count() const {
  int64_t n = 0;
  for (int64_t l = 0; l < num_hidden_layers; ++l) n += is_moe_layer(l);
  return n;
}

namespace {

// Weights of the model with `experts` of each MoE layer's routed experts counted.
int64_t count_parameters(const ModelConfig& c, int64_t experts) {
  const int64_t h = c.hidden_size;
  int64_t attn = h * c.q_size() + 2 * h * c.kv_size() + c.q_size() * h;
  if (c.attention_bias) attn += c.q_size() + 2 * c.kv_size();
  if (c.attention_out_bias) attn += h;
  if (c.qk_norm) attn += 2 * c.head_dim;
  const int64_t dense_mlp = 3 * h * c.intermediate_size + (c.mlp_bias ? 2 * c.intermediate_size + h : 0);
  // The router [E, H] is used in full by every token.
  const int64_t moe_mlp = c.num_experts * h + experts * 3 * h * c.moe_intermediate_size;
  const int64_t moe_layers = c.moe_layer_count();
  const int64_t embed = c.vocab_size * h;
  return embed + c.num_hidden_layers * (attn + 2 * h) + (c.num_hidden_layers - moe_layers) * dense_mlp +
         moe_layers * moe_mlp + h + (c.tie_word_embeddings ? 0 : embed);
}

}  // namespace

int64_t ModelConfig::parameter_count() const {
  if (model_type == "deepseek_v3") return static_cast<int64_t>(deepseek_v3_parameter_count(*this, false));
  return count_parameters(*this, num_experts);
}

int64_t ModelConfig::active_parameter_count() const {
  if (model_type == "deepseek_v3") return static_cast<int64_t>(deepseek_v3_parameter_count(*this, true));
  return count_parameters(*this, num_experts_per_tok);
}

}  // namespace aha
