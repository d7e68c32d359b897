// PretrainSpec: the JSON that describes a base model made from scratch by `aha pretrain`
// (recipes/base/*.json): the model shape (Qwen2 by default; Qwen3 or Qwen3-MoE), the tokenizer, the corpus mix, the training
// run and the held-out check at the end.
//
//   {"model":     {"hidden_size", "num_hidden_layers", "num_attention_heads",
//                  "num_key_value_heads", "intermediate_size", "max_position_embeddings",
//                  "tie_word_embeddings", "rope_theta", "rms_norm_eps", "initializer_range",
//                  "model_type" (qwen2 | qwen3 | qwen3_moe; default qwen2), "head_dim" (qwen3*),
//                  "num_experts", "num_experts_per_tok", "moe_intermediate_size",
//                  "norm_topk_prob", "decoder_sparse_step" (qwen3_moe)},
//    "tokenizer": {"vocab_size", "min_frequency", "documents"},
//    "corpus":    BaseCorpusSpec (datasets/base_corpus.h),
//    "training":  {"steps" | "tokens", "seq_len", "batch_size", "micro_batch_size", "lr",
//                  "min_lr_ratio", "warmup_steps", "weight_decay", "max_grad_norm", "seed",
//                  "dtype", "autocast_bf16"},
//    "eval":      {"problems", "min_difficulty", "max_difficulty", "seed", "max_new_tokens"}}
//
// Contract: parse() applies the --set overrides ("training.steps=5": a dotted path and a JSON
// value, or a bare string) to the file's JSON, then reads it; unknown keys, ill-typed or
// out-of-range values are aha::Error naming the file and the key and, for unknown keys,
// listing the valid ones. hash is a stable hash of the canonical JSON after overrides (the
// identity of the base model: the same spec makes the same model).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/base_corpus.h"

namespace aha {

struct PretrainSpec {
  struct Model {
    int64_t hidden_size = 128, num_hidden_layers = 4, num_attention_heads = 4, num_key_value_heads = 2;
    int64_t intermediate_size = 384, max_position_embeddings = 512;
    bool tie_word_embeddings = true;
    double rope_theta = 10000.0, rms_norm_eps = 1e-6, initializer_range = 0.02;
    std::string model_type = "qwen2";
    int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
    int64_t num_experts = 0, num_experts_per_tok = 0, moe_intermediate_size = 0, decoder_sparse_step = 1;
    bool norm_topk_prob = true;
  } model;
  struct Tokenizer {
    int64_t vocab_size = 1024, min_frequency = 2;
    int64_t documents = 0;  // corpus documents the BPE learns from; 0: all
  } tokenizer;
  BaseCorpusSpec corpus;
  struct Training {
    int64_t steps = 0, tokens = 0;  // exactly one > 0
    int64_t seq_len = 256, batch_size = 16, micro_batch_size = 0;
    double lr = 3e-3, min_lr_ratio = 0.1, weight_decay = 0.1, max_grad_norm = 1.0;
    int64_t warmup_steps = 20;
    uint64_t seed = 0;
    std::string dtype = "float32";  // the weights' dtype while training and in the saved model
    bool autocast_bf16 = true;      // on CUDA only; ignored on the CPU
    int64_t total_steps() const;    // steps, or tokens / (batch_size * seq_len) rounded up
  } training;
  struct Eval {
    int64_t problems = 200;  // held-out arithmetic problems (0: no check)
    int min_difficulty = 1, max_difficulty = 2;
    uint64_t seed = 0;
    int64_t max_new_tokens = 96;
  } eval;

  std::string source;          // names the file in errors and reports
  std::string canonical_json;  // after --set overrides
  uint64_t hash = 0;

  static PretrainSpec parse(const std::string& text, const std::string& source,
                            const std::vector<std::string>& overrides = {});
  static PretrainSpec from_file(const std::string& path, const std::vector<std::string>& overrides = {});

  // config.json of the model for a tokenizer of `vocab` ids whose <|endoftext|> is `eos_id`.
  std::string config_json(int64_t vocab, int64_t eos_id) const;
};

}  // namespace aha
