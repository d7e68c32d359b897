// The decoder-only transformer of Qwen2 and Llama checkpoints, in plain LibTorch tensors:
// token embedding, N x (RMSNorm -> grouped-query attention with rotary embeddings -> residual,
// RMSNorm -> SwiGLU MLP -> residual), final RMSNorm, tied or separate LM head.
//
// Numerics follow Hugging Face transformers op for op (RMSNorm in float32, rotary tables in
// float32 cast to the model dtype, scaled_dot_product_attention), so that logits agree with
// the reference. Weights are ordinary tensors named as in the HF checkpoint; the learner
// trains them in place and the rollout engine reads the same tensors (no copy per step).
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/model_config.h"

namespace aha {

struct DecoderLayerWeights {
  torch::Tensor input_norm, post_attention_norm;       // [H]
  torch::Tensor q_weight, k_weight, v_weight, o_weight;  // [out, in]
  torch::Tensor q_bias, k_bias, v_bias, o_bias;          // undefined when the config has none
  torch::Tensor gate_weight, up_weight, down_weight;
  torch::Tensor gate_bias, up_bias, down_bias;
};

class Transformer {
 public:
  // Allocates weights (uninitialised) of `dtype` on `device`.
  Transformer(ModelConfig config, torch::ScalarType dtype, torch::Device device);

  const ModelConfig& config() const { return config_; }
  torch::ScalarType dtype() const { return dtype_; }
  torch::Device device() const { return device_; }

  // Parameters with their checkpoint names, in checkpoint order. The LM head is listed only
  // when it is not tied to the embedding.
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;
  std::vector<torch::Tensor> parameters() const;
  const torch::Tensor& lm_head_weight() const { return tied() ? embed_ : lm_head_; }
  bool tied() const { return config_.tie_word_embeddings; }

  // Final-norm hidden states [B, T, H].
  //   input_ids      [B, T] int64
  //   attention_mask [B, T] (1 real token, 0 padding) or undefined for no padding
  //   positions      [B, T] int64 or undefined: then cumsum(mask) - 1 (left padding) or 0..T-1
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                              const torch::Tensor& positions = {}) const;

  // Logits [..., V] in the model dtype (as transformers returns them).
  torch::Tensor logits(const torch::Tensor& hidden) const;

  // Log-probability [B, T-1] (float32) of each token input_ids[:, t+1] given the tokens up to t,
  // at the given sampling temperature, without materialising [B, T, V] (see token_logprobs.h).
  // Differentiable. With entropy != nullptr also fills the per-position entropy [B, T-1].
  torch::Tensor token_logprobs(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                               const torch::Tensor& positions = {}, double temperature = 1.0,
                               torch::Tensor* entropy = nullptr) const;

 private:
  torch::Tensor attention(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin, const torch::Tensor& mask) const;
  torch::Tensor mlp(const DecoderLayerWeights& w, const torch::Tensor& x) const;

  ModelConfig config_;
  torch::ScalarType dtype_;
  torch::Device device_;
  torch::Tensor embed_, final_norm_, lm_head_;
  std::vector<DecoderLayerWeights> layers_;
  torch::Tensor inv_freq_;  // rotary frequencies for every non-dynamic scaling
};

// RMSNorm as transformers computes it: normalise in float32, cast back, scale by weight.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Positions for left-padded batches: cumsum(mask) - 1, clamped at 0 for the padding.
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace aha
