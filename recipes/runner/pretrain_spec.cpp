#include "recipes/runner/pretrain_spec.h"

#include <rapidjson/document.h>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/json_override.h"
#include "datasets/seeded_random.h"
#include "policy/model/model_config.h"

namespace aha {
namespace {

void positive(int64_t v, const json::ObjectReader& r, const char* key) {
  require(v >= 1, r.context() + ": " + key + " must be >= 1, got " + std::to_string(v));
}

}  // namespace

int64_t PretrainSpec::Training::total_steps() const {
  if (steps > 0) return steps;
  const int64_t per_step = batch_size * seq_len;
  return (tokens + per_step - 1) / per_step;
}

PretrainSpec PretrainSpec::from_file(const std::string& path, const std::vector<std::string>& overrides) {
  return parse(read_file(path), path, overrides);
}

PretrainSpec PretrainSpec::parse(const std::string& text, const std::string& source,
                                 const std::vector<std::string>& overrides) {
  rapidjson::Document doc = json::parse(text, source);
  require(doc.IsObject(), source + ": expected a JSON object");
  for (const auto& o : overrides) json::apply_override(doc, o, source);
  PretrainSpec s;
  s.source = source;
  json::ObjectReader root(doc, source);
  root.reject_unknown({"model", "tokenizer", "corpus", "training", "eval"});

  auto m = root.object("model");
  m.reject_unknown({"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                    "intermediate_size", "max_position_embeddings", "tie_word_embeddings", "rope_theta",
                    "rms_norm_eps", "initializer_range", "model_type", "head_dim", "num_experts",
                    "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob", "decoder_sparse_step"});
  auto& model = s.model;
  model.hidden_size = m.get_int("hidden_size");
  model.num_hidden_layers = m.get_int("num_hidden_layers");
  model.num_attention_heads = m.get_int("num_attention_heads");
  model.num_key_value_heads = m.get_int("num_key_value_heads", model.num_attention_heads);
  model.intermediate_size = m.get_int("intermediate_size");
  model.max_position_embeddings = m.get_int("max_position_embeddings", model.max_position_embeddings);
  model.tie_word_embeddings = m.get_bool("tie_word_embeddings", model.tie_word_embeddings);
  model.rope_theta = m.get_double("rope_theta", model.rope_theta);
  model.rms_norm_eps = m.get_double("rms_norm_eps", model.rms_norm_eps);
  model.initializer_range = m.get_double("initializer_range", model.initializer_range);
  model.model_type = m.get_string("model_type", model.model_type);
  require(model.model_type == "qwen2" || model.model_type == "qwen3" || model.model_type == "qwen3_moe",
          m.context() + ": model_type must be qwen2, qwen3 or qwen3_moe, got '" + model.model_type + "'");
  const bool qwen3 = model.model_type != "qwen2", moe = model.model_type == "qwen3_moe";
  for (const char* key : {"head_dim"})
    require(qwen3 || !m.has(key), m.context() + ": " + key + " needs model_type qwen3 or qwen3_moe");
  for (const char* key : {"num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob",
                          "decoder_sparse_step"})
    require(moe || !m.has(key), m.context() + ": " + key + " needs model_type qwen3_moe");
  model.head_dim = m.get_int("head_dim", model.head_dim);
  if (moe) {
    model.num_experts = m.get_int("num_experts");
    model.num_experts_per_tok = m.get_int("num_experts_per_tok");
    model.moe_intermediate_size = m.get_int("moe_intermediate_size");
    model.norm_topk_prob = m.get_bool("norm_topk_prob", model.norm_topk_prob);
    model.decoder_sparse_step = m.get_int("decoder_sparse_step", model.decoder_sparse_step);
  }
  for (auto [key, v] : {std::pair<const char*, int64_t>{"hidden_size", model.hidden_size},
                        {"num_hidden_layers", model.num_hidden_layers},
                        {"num_attention_heads", model.num_attention_heads},
                        {"num_key_value_heads", model.num_key_value_heads},
                        {"intermediate_size", model.intermediate_size},
                        {"max_position_embeddings", model.max_position_embeddings}})
    positive(v, m, key);
  // Head counts, head_dim parity and the rest are ModelConfig's checks (config_json below).

  if (root.has("tokenizer")) {
    auto t = root.object("tokenizer");
    t.reject_unknown({"vocab_size", "min_frequency", "documents"});
    s.tokenizer.vocab_size = t.get_int("vocab_size", s.tokenizer.vocab_size);
    s.tokenizer.min_frequency = t.get_int("min_frequency", s.tokenizer.min_frequency);
    s.tokenizer.documents = t.get_int("documents", s.tokenizer.documents);
    require(s.tokenizer.vocab_size > 257, t.context() + ": vocab_size must be > 257 (256 bytes + <|endoftext|>)");
    positive(s.tokenizer.min_frequency, t, "min_frequency");
    require(s.tokenizer.documents >= 0, t.context() + ": documents must be >= 0");
  }
  if (root.has("corpus")) s.corpus = BaseCorpusSpec::from_json(root.get("corpus"), source + ": corpus");

  auto tr = root.object("training");
  tr.reject_unknown({"steps", "tokens", "seq_len", "batch_size", "micro_batch_size", "lr", "min_lr_ratio",
                     "warmup_steps", "weight_decay", "max_grad_norm", "seed", "dtype", "autocast_bf16"});
  auto& t = s.training;
  t.steps = tr.get_int("steps", 0);
  t.tokens = tr.get_int("tokens", 0);
  require((t.steps > 0) != (t.tokens > 0), tr.context() + ": give exactly one of steps or tokens (> 0)");
  t.seq_len = tr.get_int("seq_len", t.seq_len);
  t.batch_size = tr.get_int("batch_size", t.batch_size);
  t.micro_batch_size = tr.get_int("micro_batch_size", t.micro_batch_size);
  t.lr = tr.get_double("lr", t.lr);
  t.min_lr_ratio = tr.get_double("min_lr_ratio", t.min_lr_ratio);
  t.warmup_steps = tr.get_int("warmup_steps", t.warmup_steps);
  t.weight_decay = tr.get_double("weight_decay", t.weight_decay);
  t.max_grad_norm = tr.get_double("max_grad_norm", t.max_grad_norm);
  t.seed = uint64_t(tr.get_int("seed", 0));
  t.dtype = tr.get_string("dtype", t.dtype);
  t.autocast_bf16 = tr.get_bool("autocast_bf16", t.autocast_bf16);
  require(t.seq_len >= 2, tr.context() + ": seq_len must be >= 2");
  require(t.seq_len <= model.max_position_embeddings,
          tr.context() + ": seq_len " + std::to_string(t.seq_len) + " exceeds model.max_position_embeddings " +
              std::to_string(model.max_position_embeddings));
  positive(t.batch_size, tr, "batch_size");
  require(t.micro_batch_size >= 0 && t.micro_batch_size <= t.batch_size,
          tr.context() + ": micro_batch_size must be in [0, batch_size]");
  require(t.lr > 0, tr.context() + ": lr must be > 0");
  require(t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1, tr.context() + ": min_lr_ratio must be in [0, 1]");
  require(t.warmup_steps >= 0 && t.warmup_steps < t.total_steps(),
          tr.context() + ": warmup_steps must be in [0, steps)");
  require(t.weight_decay >= 0, tr.context() + ": weight_decay must be >= 0");
  require(t.dtype == "float32" || t.dtype == "bfloat16",
          tr.context() + ": dtype must be float32 or bfloat16, got '" + t.dtype + "'");

  if (root.has("eval")) {
    auto e = root.object("eval");
    e.reject_unknown({"problems", "min_difficulty", "max_difficulty", "seed", "max_new_tokens"});
    s.eval.problems = e.get_int("problems", s.eval.problems);
    s.eval.min_difficulty = int(e.get_int("min_difficulty", s.eval.min_difficulty));
    s.eval.max_difficulty = int(e.get_int("max_difficulty", s.eval.max_difficulty));
    s.eval.seed = uint64_t(e.get_int("seed", 0));
    s.eval.max_new_tokens = e.get_int("max_new_tokens", s.eval.max_new_tokens);
    require(s.eval.problems >= 0, e.context() + ": problems must be >= 0");
    require(s.eval.min_difficulty >= 1 && s.eval.min_difficulty <= s.eval.max_difficulty &&
                s.eval.max_difficulty <= 5,
            e.context() + ": need 1 <= min_difficulty <= max_difficulty <= 5");
    positive(s.eval.max_new_tokens, e, "max_new_tokens");
  }
  s.canonical_json = json::to_string(doc);
  s.hash = stable_hash(s.canonical_json);
  // The shape is valid when ModelConfig accepts it (heads dividing, even head_dim, ...).
  ModelConfig::from_json(s.config_json(s.tokenizer.vocab_size, s.tokenizer.vocab_size - 1), source + ": model");
  return s;
}

std::string PretrainSpec::config_json(int64_t vocab, int64_t eos_id) const {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  rapidjson::Value arch(rapidjson::kArrayType);
  const auto& type = model.model_type;
  arch.PushBack(rapidjson::StringRef(type == "qwen2"   ? "Qwen2ForCausalLM"
                                     : type == "qwen3" ? "Qwen3ForCausalLM"
                                                       : "Qwen3MoeForCausalLM"),
                a);
  d.AddMember("architectures", arch, a);
  d.AddMember("model_type", rapidjson::Value(type.c_str(), a), a);
  if (model.head_dim > 0) d.AddMember("head_dim", model.head_dim, a);
  if (type == "qwen3_moe") {
    d.AddMember("num_experts", model.num_experts, a);
    d.AddMember("num_experts_per_tok", model.num_experts_per_tok, a);
    d.AddMember("moe_intermediate_size", model.moe_intermediate_size, a);
    d.AddMember("norm_topk_prob", model.norm_topk_prob, a);
    d.AddMember("decoder_sparse_step", model.decoder_sparse_step, a);
    d.AddMember("mlp_only_layers", rapidjson::Value(rapidjson::kArrayType), a);
  }
  d.AddMember("hidden_act", "silu", a);
  d.AddMember("vocab_size", vocab, a);
  d.AddMember("hidden_size", model.hidden_size, a);
  d.AddMember("intermediate_size", model.intermediate_size, a);
  d.AddMember("num_hidden_layers", model.num_hidden_layers, a);
  d.AddMember("num_attention_heads", model.num_attention_heads, a);
  d.AddMember("num_key_value_heads", model.num_key_value_heads, a);
  d.AddMember("max_position_embeddings", model.max_position_embeddings, a);
  d.AddMember("max_window_layers", model.num_hidden_layers, a);
  d.AddMember("rms_norm_eps", model.rms_norm_eps, a);
  d.AddMember("rope_theta", model.rope_theta, a);
  d.AddMember("initializer_range", model.initializer_range, a);
  d.AddMember("tie_word_embeddings", model.tie_word_embeddings, a);
  d.AddMember("use_sliding_window", false, a);
  d.AddMember("sliding_window", model.max_position_embeddings, a);
  d.AddMember("attention_dropout", 0.0, a);
  d.AddMember("use_cache", true, a);
  d.AddMember("bos_token_id", eos_id, a);
  d.AddMember("eos_token_id", eos_id, a);
  d.AddMember("torch_dtype", rapidjson::Value(training.dtype.c_str(), a), a);
  return json::to_string(d, /*pretty=*/true) + "\n";
}

}  // namespace aha
