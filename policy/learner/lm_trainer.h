// LmTrainer: next-token (language-model) training of a Transformer: pretraining on packed
// text, and SFT when a loss mask keeps only completion tokens. Also the packing of documents
// into fixed-length rows.
//
// Contract of train_step(batch) (one optimizer step per call):
// - The loss is the mean negative log-likelihood over the batch's trained targets: the tokens
//   input_ids[:, t+1] where loss_mask[:, t] is 1 (every target when loss_mask is undefined),
//   in float32, through the chunked log-probs of token_logprobs.h.
// - The batch is cut into micro-batches of micro_batch_size rows whose gradients accumulate;
//   each micro-batch divides by the whole batch's target count, so the accumulated gradient is
//   that of the whole batch whatever the micro-batch size.
// - The Optimizer (AdamW with warm-up + decay, clipping by global norm) then steps, or skips
//   the step when the loss or a gradient is not finite (weights and state unchanged).
// - Weight decay applies to matrices and embeddings, never to norms and biases.
// - autocast_bf16 (CUDA only): weights stay float32 (master weights), products run in bf16.
// - A batch with no trained target is an error, as are shapes that do not match.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "policy/tokenizer/bpe_model.h"  // TokenId
#include "policy/learner/optimizer.h"
#include "policy/model/transformer.h"

namespace aha::policy {

struct LmBatch {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor loss_mask;       // [B, T-1] 1 where input_ids[:, t+1] is trained; undefined: all
  torch::Tensor attention_mask;  // [B, T] 1 real token, 0 padding; undefined: no padding
  // Packed rows (policy/learner/sft_packing.h): [B, T] int64 each, or both undefined. A token
  // attends only to its own segment (0: padding) and positions restart at each segment.
  torch::Tensor positions, segment_ids;

  int64_t size() const { return input_ids.defined() ? input_ids.size(0) : 0; }
  LmBatch rows(int64_t begin, int64_t count) const;
  // Throws aha::Error naming the tensor whose shape or dtype is wrong.
  void validate() const;
};

struct LmTrainerOptions {
  OptimizerOptions optimizer;
  double weight_decay = 0.0;
  int64_t micro_batch_size = 0;  // rows per forward/backward; 0: the whole batch
  bool autocast_bf16 = false;    // CUDA only
  bool activation_checkpointing = false;
};

struct LmStepMetrics {
  double loss = 0;  // mean NLL per trained token
  int64_t tokens = 0;  // trained targets
  double lr = 0;
  double grad_norm = 0;  // before clipping
  bool applied = true;   // false: skipped (non-finite loss or gradient)
  std::string skip_reason;
};

// Summed negative log-likelihood (float32 scalar, differentiable) of the trained targets of
// rows [B, T], and their count in *tokens. Runs under the caller's autocast state.
torch::Tensor lm_nll_sum(const Transformer& model, const torch::Tensor& input_ids, const torch::Tensor& loss_mask,
                         const torch::Tensor& attention_mask, int64_t* tokens = nullptr,
                         const torch::Tensor& positions = {}, const torch::Tensor& segment_ids = {});
// The same for a batch (moved to the model's device).
torch::Tensor lm_nll_sum(const Transformer& model, const LmBatch& batch, int64_t* tokens = nullptr);

class LmTrainer {
 public:
  // Takes the model; its parameters are made to require grad. Throws on bad options.
  LmTrainer(std::unique_ptr<Transformer> model, const LmTrainerOptions& options);

  LmStepMetrics train_step(const LmBatch& batch);

  Transformer& model() { return *model_; }
  Optimizer& optimizer() { return *optimizer_; }
  // Gives the model back (the trainer is unusable afterwards).
  std::unique_ptr<Transformer> release_model() { return std::move(model_); }

 private:
  std::unique_ptr<Transformer> model_;
  LmTrainerOptions options_;
  std::unique_ptr<Optimizer> optimizer_;
};

// Packs documents into rows of exactly seq_len tokens for pretraining. Each row starts at the
// start of a document; documents follow one another, each followed by `separator`
// (<|endoftext|>), and the document that reaches the row's end is cut there (its rest is
// dropped, so that every row starts at a document start, as a prompt does). Rows are filled
// in document order; a final row that cannot be filled is dropped. Empty documents are skipped.
std::vector<std::vector<int64_t>> pack_documents(const std::vector<std::vector<TokenId>>& documents,
                                                 int64_t seq_len, TokenId separator);

}  // namespace aha::policy
