// SequenceClassifier: a Hugging Face sequence-classification checkpoint
// (Qwen2ForSequenceClassification, LlamaForSequenceClassification): the decoder of the causal
// model (policy/model's Transformer, so every family it reads) and a `score` head
// [num_labels, hidden], read at each sequence's last token that is not the pad id, as
// transformers pools. A reward model is this with one label.
//
// Contract:
// - load() checks the architecture, every decoder tensor (present, exact shape) and the head
//   (hidden size; num_labels as config.json's id2label says, when it says); a problem is an
//   aha::Error naming the directory and what is wrong. A checkpoint's lm_head, if any, is unused.
// - scores() returns [N, num_labels] float32 on the CPU for N non-empty sequences, each as if
//   run alone (batched with left padding, which the decoder's positions and mask make
//   invisible). The pooled token is the last one whose id is not config.json's pad_token_id
//   (the last token when there is no pad id; the first when every token is the pad id, as
//   transformers' argmax gives). An empty sequence is an error.
// - It is safe to call scores() from several threads (inference only, no state changes).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "policy/model/transformer.h"

namespace aha::reward {

class SequenceClassifier {
 public:
  static std::unique_ptr<SequenceClassifier> load(const std::filesystem::path& dir,
                                                  std::optional<torch::ScalarType> dtype = std::nullopt,
                                                  torch::Device device = torch::kCPU);

  torch::Tensor scores(const std::vector<std::vector<int64_t>>& sequences) const;  // [N, num_labels]

  int64_t num_labels() const { return score_.size(0); }
  const ModelConfig& config() const { return decoder_->config(); }

 private:
  SequenceClassifier(std::unique_ptr<Transformer> decoder, torch::Tensor score, torch::Tensor bias)
      : decoder_(std::move(decoder)), score_(std::move(score)), bias_(std::move(bias)) {}

  std::unique_ptr<Transformer> decoder_;
  torch::Tensor score_;  // [num_labels, hidden]
  torch::Tensor bias_;   // [num_labels] or undefined (transformers' head has none)
};

// The causal-model architecture whose decoder a sequence-classification architecture uses
// ("Qwen2ForSequenceClassification" -> "Qwen2ForCausalLM"); empty when it is not one.
std::string causal_architecture_of(const std::string& classification_architecture);

}  // namespace aha::reward
