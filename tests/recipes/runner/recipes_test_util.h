// Models and a tokenizer for the recipes tests: the qwen2-style fixture tokenizer, a random
// tiny Qwen2 over its vocabulary, and a "chain" model whose greedy output is known in advance.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"

namespace aha::test {

inline std::filesystem::path tokenizer_dir() {
  return std::filesystem::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
}

inline const Tokenizer& fixture_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_dir(tokenizer_dir());
  return tokenizer;
}

// A tiny Qwen2 config over the fixture tokenizer's vocabulary; EOS is <|im_end|> (2).
inline ModelConfig tiny_config(bool tied = true) {
  const std::string json = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0, "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 2,
    "tie_word_embeddings": )" +
                           std::string(tied ? "true" : "false") + R"(, "vocab_size": )" +
                           std::to_string(fixture_tokenizer().id_limit()) + "}";
  return ModelConfig::from_json(json, "tiny test config");
}

// A model that, after any token not in `chain`, emits chain[0], then chain[1], ... and after
// the last one `end` (e.g. the EOS id). Every layer's output projections are zero, so the
// hidden state is the last token's embedding: chain[i] has the one-hot embedding e_(i+1),
// every other token e_0, and the LM head maps e_i to the next token with a margin of
// 10 sqrt(H) logits, so greedy and temperature-1 sampling follow the chain. Tokens in the
// chain must be distinct, at most hidden_size - 1 of them.
inline std::unique_ptr<Transformer> chain_model(const std::vector<int64_t>& chain, int64_t end) {
  auto model = init_model(tiny_config(/*tied=*/false), 1);
  torch::NoGradGuard no_grad;
  for (auto& [name, w] : model->named_parameters()) {
    if (name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos) w.zero_();
    if (name == "model.norm.weight") w.fill_(1.0);
    if (name == "model.embed_tokens.weight") {
      w.zero_();
      w.select(1, 0).fill_(1.0);
      for (size_t i = 0; i < chain.size(); ++i) {
        w[chain[i]].zero_();
        w[chain[i]][static_cast<int64_t>(i) + 1] = 1.0;
      }
    }
    if (name == "lm_head.weight") {
      w.zero_();
      for (size_t i = 0; i < chain.size(); ++i) w[chain[i]][static_cast<int64_t>(i)] = 10.0;
      w[end][static_cast<int64_t>(chain.size())] = 10.0;
    }
  }
  return model;
}

// The fixture tokenizer's ids of text (no special tokens).
inline std::vector<int64_t> ids_of(const std::string& text) {
  auto ids = fixture_tokenizer().encode(text, false);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

// A fresh directory under the build tree named `prefix` + the running test's name, holding a
// tiny random model (tiny_config, seed 3) with the fixture tokenizer at <dir>/model: the
// starting point of the GRPO stage tests. Remove it with remove_tree when the test ends.
inline std::filesystem::path tiny_model_workdir(const std::string& prefix) {
  const auto dir = std::filesystem::path(AHA_BINARY_DIR) /
                   (prefix + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  remove_tree(dir);
  std::filesystem::create_directories(dir);
  auto model = init_model(tiny_config(), 3);
  save_model(*model, dir / "model", {.copy_extras_from = tokenizer_dir()});
  return dir;
}

// A metric's values, step by step, in the first stage of the run database `db`.
inline std::vector<double> metric_values(const std::filesystem::path& db, const std::string& name) {
  RunStore store(db, {.read_only = true});
  std::vector<double> values;
  for (const auto& p : store.metric_series(store.stages().at(0).id, name)) values.push_back(p.value);
  return values;
}

// The prompts a GRPO run trained on, step by step for steps 1..steps: one per group (its sample
// 0; samples are stored group after group, group_size each).
inline std::vector<std::string> trained_prompts(const std::filesystem::path& db, int64_t steps, int64_t group_size) {
  RunStore store(db, {.read_only = true});
  const auto stage = store.stages().at(0).id;
  std::vector<std::string> prompts;
  for (int64_t step = 1; step <= steps; ++step)
    for (const auto& s : store.samples(stage, step))
      if (s.index % group_size == 0) prompts.push_back(s.prompt);
  return prompts;
}

// Whether two models' named parameters are the same names in the same order, bit for bit.
inline bool same_parameters(const std::vector<std::pair<std::string, torch::Tensor>>& a,
                            const std::vector<std::pair<std::string, torch::Tensor>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !torch::equal(a[i].second, b[i].second)) return false;
  return true;
}

}  // namespace aha::test
