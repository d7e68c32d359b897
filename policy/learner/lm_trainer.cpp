#include "policy/learner/lm_trainer.h"

#include "core/error.h"
#include "policy/learner/autocast_scope.h"
#include "policy/model/token_logprobs.h"

namespace aha::policy {
namespace {

void require_shape(const torch::Tensor& t, const char* name, std::vector<int64_t> shape) {
  require(t.sizes() == c10::IntArrayRef(shape),
          std::string("LM batch: ") + name + " has shape " + c10::str(t.sizes()) + ", expected " + c10::str(shape));
}

}  // namespace

LmBatch LmBatch::rows(int64_t begin, int64_t count) const {
  auto cut = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, begin, count) : t; };
  return {cut(input_ids), cut(loss_mask), cut(attention_mask), cut(positions), cut(segment_ids)};
}

void LmBatch::validate() const {
  require(input_ids.defined() && input_ids.dim() == 2, "LM batch: input_ids must be [B, T]");
  require(input_ids.scalar_type() == torch::kInt64, "LM batch: input_ids must be int64");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  require(B > 0 && T >= 2, "LM batch: needs at least one row of at least two tokens");
  if (loss_mask.defined()) require_shape(loss_mask, "loss_mask", {B, T - 1});
  if (attention_mask.defined()) require_shape(attention_mask, "attention_mask", {B, T});
  require(positions.defined() == segment_ids.defined(), "LM batch: positions and segment_ids come together");
  if (positions.defined()) require_shape(positions, "positions", {B, T});
  if (segment_ids.defined()) require_shape(segment_ids, "segment_ids", {B, T});
}

torch::Tensor lm_nll_sum(const Transformer& model, const torch::Tensor& ids, const torch::Tensor& loss_mask,
                         const torch::Tensor& attention_mask, int64_t* tokens, const torch::Tensor& positions,
                         const torch::Tensor& segment_ids) {
  const int64_t B = ids.size(0), T = ids.size(1);
  auto hidden = model.hidden_states(ids, attention_mask, positions, segment_ids).narrow(1, 0, T - 1).reshape({B * (T - 1), -1});
  auto targets = ids.narrow(1, 1, T - 1).reshape({-1});
  if (loss_mask.defined()) {
    // Only the trained positions go through the LM head (SFT prompts cost no head compute).
    auto keep = loss_mask.reshape({-1}).to(torch::kBool).nonzero().squeeze(1);
    hidden = hidden.index_select(0, keep);
    targets = targets.index_select(0, keep);
  }
  if (tokens) *tokens = targets.size(0);
  auto head = model.lm_head_weight();
  if (hidden.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA)) {
    // As in the GRPO trainer: the chunked function's backward recomputes the head products
    // outside autocast, so cast explicitly to keep them in bf16.
    hidden = hidden.to(torch::kBFloat16);
    head = head.to(torch::kBFloat16);
  }
  if (targets.size(0) == 0) return hidden.sum().to(torch::kFloat32) * 0;  // keeps the graph connected
  return -chunked_token_logprobs(hidden, head, targets).logprobs.sum();
}

torch::Tensor lm_nll_sum(const Transformer& model, const LmBatch& batch, int64_t* tokens) {
  const auto device = model.device();
  auto to_device = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  return lm_nll_sum(model, batch.input_ids.to(device), to_device(batch.loss_mask), to_device(batch.attention_mask),
                    tokens, to_device(batch.positions), to_device(batch.segment_ids));
}

LmTrainer::LmTrainer(std::unique_ptr<Transformer> model, const LmTrainerOptions& options)
    : model_(std::move(model)), options_(options) {
  require(model_ != nullptr, "LM trainer: no model");
  require(options_.micro_batch_size >= 0, "LM trainer: micro_batch_size must be >= 0");
  require(options_.weight_decay >= 0, "LM trainer: weight_decay must be >= 0");
  require(!options_.autocast_bf16 || model_->device().is_cuda(), "LM trainer: autocast_bf16 needs a CUDA device");
  model_->set_activation_checkpointing(options_.activation_checkpointing);
  optimizer_ = std::make_unique<Optimizer>(weight_decay_groups(model_->parameters(), options_.weight_decay), options_.optimizer);
}

LmStepMetrics LmTrainer::train_step(const LmBatch& batch) {
  batch.validate();
  const auto device = model_->device();
  const int64_t B = batch.size(), T = batch.input_ids.size(1);
  const int64_t total = batch.loss_mask.defined() ? batch.loss_mask.sum().item<int64_t>() : B * (T - 1);
  require(total > 0, "LM batch: the loss mask selects no token");
  const int64_t chunk = options_.micro_batch_size > 0 ? options_.micro_batch_size : B;
  double loss_sum = 0;
  for (int64_t i = 0; i < B; i += chunk) {
    auto micro = batch.rows(i, std::min(chunk, B - i));
    torch::Tensor nll;
    {
      AutocastScope autocast(options_.autocast_bf16);
      nll = lm_nll_sum(*model_, micro);
    }
    (nll / double(total)).backward();
    loss_sum += nll.item<double>();
  }
  LmStepMetrics m;
  m.loss = loss_sum / double(total);
  m.tokens = total;
  auto step = optimizer_->step(torch::tensor(m.loss, torch::kFloat64));
  m.lr = step.lr;
  m.grad_norm = step.grad_norm;
  m.applied = step.applied;
  m.skip_reason = step.skip_reason;
  return m;
}

std::vector<std::vector<int64_t>> pack_documents(const std::vector<std::vector<TokenId>>& documents,
                                                 int64_t seq_len, TokenId separator) {
  require(seq_len >= 2, "packing: seq_len must be >= 2, got " + std::to_string(seq_len));
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> row;
  row.reserve(size_t(seq_len));
  for (const auto& doc : documents) {
    if (doc.empty()) continue;
    for (TokenId t : doc) {
      if (int64_t(row.size()) == seq_len) break;
      row.push_back(t);
    }
    if (int64_t(row.size()) < seq_len) row.push_back(separator);
    if (int64_t(row.size()) == seq_len) {
      rows.push_back(std::move(row));
      row.clear();
      row.reserve(size_t(seq_len));
    }
  }
  return rows;
}

}  // namespace aha::policy
