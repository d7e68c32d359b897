#include "policy/learner/grpo_trainer.h"

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"
#include "policy/learner/autocast_scope.h"
#include "policy/learner/grpo_packing.h"
#include "policy/learner/routing_bias.h"
#include "policy/learner/sharded_adamw.h"
#include "policy/model/moe_routing.h"
#include "policy/model/token_logprobs.h"

namespace aha::policy {
namespace {

struct Forward {
  torch::Tensor logprobs;  // [b, T-1] float32, differentiable
  torch::Tensor entropy;   // [b, T-1] float32 or undefined; differentiable with Entropy::differentiable
  // MoE policies, when asked: each MoE layer's router logits [b*T, E] and which of those rows
  // are real tokens (the columns as the model saw them, rotated or not).
  std::vector<torch::Tensor> router_logits;
  torch::Tensor router_mask;  // [b, T]
};
enum class Entropy { none, detached, differentiable };

// positions and segments: a packed micro-batch (grpo_packing.h), mask then undefined.
// wanted [b, T-1] (nonzero where a log-prob is read: the completion tokens), or undefined for
// every position: the LM head and its log-softmax over the vocabulary run only on the wanted
// positions (a prompt's own tokens are never scored), and the others read 0 (entropy too).
Forward forward_rows(const Transformer& model, const torch::Tensor& ids, const torch::Tensor& mask,
                     double temperature, Entropy entropy, bool want_router_logits = false,
                     const torch::Tensor& positions = {}, const torch::Tensor& segments = {},
                     const torch::Tensor& wanted = {}) {
  const bool entropy_grad = entropy == Entropy::differentiable;
  const int64_t B = ids.size(0), T = ids.size(1);
  std::vector<torch::Tensor> router_logits;
  auto hidden =
      model.hidden_states(ids, mask, positions, segments, want_router_logits ? &router_logits : nullptr).narrow(1, 0, T - 1);
  // ZeRO-3 (fully_sharded.h): the LM head's weights are present only between enter and leave.
  BlockHooks* hooks = model.block_hooks();
  if (hooks) hidden = hooks->enter(model.head_block(), hidden);
  auto targets = ids.narrow(1, 1, T - 1).reshape({-1});
  auto flat = hidden.reshape({B * (T - 1), -1});
  torch::Tensor rows;  // the flat positions scored, or undefined for all of them
  if (wanted.defined() && !entropy_grad) {
    rows = wanted.reshape({-1}).nonzero().squeeze(1);
    flat = flat.index_select(0, rows);
    targets = targets.index_select(0, rows);
  }
  // Back to every position, 0 where nothing was scored (differentiable in the scored values).
  auto spread = [&](const torch::Tensor& scored) {
    return rows.defined() ? torch::zeros({B * (T - 1)}, scored.options()).index_copy(0, rows, scored) : scored;
  };
  auto head = model.lm_head_weight();
  if (hidden.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA)) {
    // The LM-head products run in bf16 like the rest; explicitly, because the chunked function's
    // backward recomputes them outside autocast, where float32 master weights would be slow.
    flat = flat.to(torch::kBFloat16);
    head = head.to(torch::kBFloat16);
  }
  auto out =
      chunked_token_logprobs(flat, head, targets, temperature, /*want_entropy=*/entropy == Entropy::detached);
  Forward f{spread(out.logprobs).view({B, T - 1}), {}, std::move(router_logits),
            segments.defined() ? segments != 0 : mask};
  if (entropy_grad) {
    auto logp = torch::log_softmax(model.logits(hidden).to(torch::kFloat32) / temperature, -1);
    f.entropy = -(logp.exp() * logp).sum(-1);
  } else if (entropy == Entropy::detached) {
    f.entropy = spread(out.entropy).view({B, T - 1});
  }
  if (hooks) {
    f.logprobs = hooks->leave(model.head_block(), f.logprobs, true);
    if (entropy_grad) f.entropy = hooks->leave(model.head_block(), f.entropy, true);
  }
  return f;
}

// Log-probs and entropy [B, T-1] of ids[:, 1:], in the batch's own columns. A row whose real
// tokens are contiguous (left-padded prompt, completion, right padding: what rollouts produce)
// is rotated left so that its real tokens start at column 0: then plain causal attention
// without a mask is exact for them (padding after them cannot be attended to, and positions
// 0..L-1 are what cumsum(mask) - 1 gives), and SDPA can take its fastest (flash) path. Results
// are rotated back; positions whose target is padding get finite don't-care values. Rows with
// holes in their mask fall back to the explicit mask.
Forward forward(const Transformer& model, const torch::Tensor& ids, const torch::Tensor& mask,
                double temperature, Entropy entropy, bool want_router_logits = false,
                const torch::Tensor& wanted = {}) {
  const int64_t T = ids.size(1);
  auto real = mask.to(torch::kBool);
  auto shift = (real.cumsum(1) == 0).sum(1, /*keepdim=*/true);  // [B, 1] leading padding
  auto columns = torch::arange(T, ids.options().dtype(torch::kInt64)).unsqueeze(0);
  auto rotate = (columns + shift) % T;  // [B, T]
  auto rotated = real.gather(1, rotate);
  bool contiguous =
      (rotated.narrow(1, 1, T - 1).to(torch::kInt8) <= rotated.narrow(1, 0, T - 1).to(torch::kInt8))
          .all()
          .item<bool>();
  if (!contiguous) return forward_rows(model, ids, mask, temperature, entropy, want_router_logits, {}, {}, wanted);
  torch::Tensor wanted_rotated;  // rotated column j is the batch's column j + shift
  if (wanted.defined()) {
    auto source = columns.narrow(1, 0, T - 1) + shift;  // [B, T-1]
    wanted_rotated = wanted.gather(1, source.clamp_max(T - 2)).logical_and(source < T - 1);
  }
  auto f = forward_rows(model, ids.gather(1, rotate), {}, temperature, entropy, want_router_logits, {}, {},
                        wanted_rotated);
  f.router_mask = rotated;  // the router saw the rotated rows
  auto back = (columns.narrow(1, 0, T - 1) - shift).clamp_min(0);  // [B, T-1]
  f.logprobs = f.logprobs.gather(1, back);
  if (f.entropy.defined()) f.entropy = f.entropy.gather(1, back);
  return f;
}

void require_shape(const torch::Tensor& t, const char* name, std::vector<int64_t> shape) {
  require(t.defined(), std::string("policy batch: ") + name + " is missing");
  require(t.sizes() == c10::IntArrayRef(shape), std::string("policy batch: ") + name + " has shape " +
                                                    c10::str(t.sizes()) + ", expected " + c10::str(shape));
}

// Metrics that add up over micro-batches (the loss passes the mini-batch's totals) versus
// those that are means over a call's tokens (weighted by its token count when combined).
bool additive(const std::string& name) {
  return name == "train/policy_loss" || name == "train/kl_loss" || name == "train/entropy";
}

}  // namespace

PolicyBatch PolicyBatch::rows(int64_t begin, int64_t count) const {
  auto cut = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, begin, count) : t; };
  return {cut(input_ids),    cut(attention_mask), cut(completion_mask),
          cut(old_logprobs), cut(advantages),     cut(rewards), cut(is_weights)};
}

void PolicyBatch::validate_tokens() const {
  require(input_ids.defined() && input_ids.dim() == 2, "policy batch: input_ids must be [B, T]");
  require(input_ids.scalar_type() == torch::kInt64, "policy batch: input_ids must be int64");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  require(B > 0 && T >= 2, "policy batch: needs at least one row of at least two tokens");
  require_shape(attention_mask, "attention_mask", {B, T});
  require_shape(completion_mask, "completion_mask", {B, T - 1});
}

void PolicyBatch::validate() const {
  validate_tokens();
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  require_shape(old_logprobs, "old_logprobs", {B, T - 1});
  require(old_logprobs.is_floating_point(), "policy batch: old_logprobs must be floating-point");
  require_shape(advantages, "advantages", {B});
  if (rewards.defined()) require_shape(rewards, "rewards", {B});
  if (is_weights.defined()) require_shape(is_weights, "is_weights", {B, T - 1});
}

void validate(const TrainerOptions& o) {
  validate(o.loss);
  require(o.mini_batch_size >= 0, "trainer: mini_batch_size must be >= 0");
  require(o.micro_batch_size >= 0, "trainer: micro_batch_size must be >= 0");
  require(o.micro_batch_tokens == 0 || o.micro_batch_tokens >= 2,
          "trainer: micro_batch_tokens must be 0 (rows) or a budget of >= 2 tokens");
  require(o.micro_batch_tokens == 0 || o.micro_batch_size == 0,
          "trainer: set micro_batch_size (rows) or micro_batch_tokens (packed), not both");
  require(o.inner_epochs >= 1, "trainer: inner_epochs must be >= 1");
  require(o.temperature > 0, "trainer: temperature must be > 0");
  require(o.ref_refresh_steps >= 0, "trainer: ref_refresh_steps must be >= 0");
  require(o.weight_decay >= 0, "trainer: weight_decay must be >= 0");
  require(o.ref_refresh_steps == 0 || o.loss.beta > 0,
          "trainer: ref_refresh_steps needs a reference model (loss beta > 0)");
  require(!o.kl_in_reward || o.loss.beta > 0, "trainer: kl_in_reward needs beta > 0");
  require(std::isfinite(o.router_aux_loss_coef) && o.router_aux_loss_coef >= 0,
          "trainer: router_aux_loss_coef must be a finite number >= 0");
  require(std::isfinite(o.routing_bias_update_rate) && o.routing_bias_update_rate >= 0,
          "trainer: routing_bias_update_rate must be a finite number >= 0");
}

std::vector<std::pair<std::string, double>> TrainStepMetrics::named_values() const {
  std::vector<std::pair<std::string, double>> v = {
      {"train/loss", loss},
      {"train/policy_loss", policy_loss},
      {"train/entropy", entropy},
      {"train/clip_frac_low", clip_frac_low},
      {"train/clip_frac_high", clip_frac_high},
      {"train/dual_clip_frac", dual_clip_frac},
      {"train/ppo_kl", ppo_kl},
      {"train/ratio_mean", ratio_mean},
      {"train/ratio_max", ratio_max},
      {"train/ratio_min", ratio_min},
      {"train/grad_norm", grad_norm},
      {"train/lr", lr},
      {"train/tokens", double(tokens)},
      {"train/sequences", double(sequences)},
      {"train/optimizer_steps", double(optimizer_steps)},
      {"train/skipped_steps", double(skipped_steps)},
  };
  if (has_reference) {
    v.emplace_back("train/kl", approx_kl);
    v.emplace_back("train/kl_loss", kl_loss);
  }
  if (has_rewards) v.emplace_back("train/reward_mean", reward_mean);
  if (has_moe) {
    v.emplace_back("moe/aux_loss", moe_aux_loss);
    v.emplace_back("moe/expert_load_max", moe_expert_load_max);
  }
  return v;
}

void copy_weights(const Transformer& from, Transformer& to) {
  auto src = from.named_parameters();
  auto dst = to.named_parameters();
  // Buffers too: the routing bias chooses experts, so a copy without it routes differently.
  for (auto& b : from.named_buffers()) src.push_back(std::move(b));
  for (auto& b : to.named_buffers()) dst.push_back(std::move(b));
  require(src.size() == dst.size(), "copy_weights: the models have different parameter lists");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < src.size(); ++i) {
    require(src[i].first == dst[i].first && src[i].second.sizes() == dst[i].second.sizes(),
            "copy_weights: parameter " + src[i].first + " does not match " + dst[i].first);
    dst[i].second.copy_(src[i].second);
  }
}

GrpoTrainer::GrpoTrainer(std::unique_ptr<Transformer> policy, const TrainerOptions& options)
    : GrpoTrainer(std::move(policy), options, WeightMemory::allocated) {}

GrpoTrainer::GrpoTrainer(ShardedModel policy, const TrainerOptions& options,
                         std::shared_ptr<parallel::Communicator> comm)
    : GrpoTrainer(std::move(policy.model), options, WeightMemory::none) {
  require(options_.sharding == Sharding::zero3 && comm && comm->size() > 1,
          "trainer: a policy loaded sharded trains under sharding zero3 on 2 ranks or more");
  require(policy.expert_parallel == options_.expert_parallel,
          std::string("trainer: options.expert_parallel is ") + (options_.expert_parallel ? "on" : "off") +
              " but the policy was loaded sharded " + (policy.expert_parallel ? "with" : "without") +
              " its experts split (load_model_sharded's expert_parallel)");
  use_communicator(std::move(comm));
  shard_fully(std::move(policy.master));
}

GrpoTrainer::GrpoTrainer(std::unique_ptr<Transformer> policy, const TrainerOptions& options, WeightMemory policy_memory)
    : policy_(std::move(policy)), options_(options) {
  require(policy_ != nullptr, "trainer: no policy model");
  validate(options_);
  require(!options_.autocast_bf16 || policy_->device().is_cuda(),
          "trainer: autocast_bf16 needs the policy on a CUDA device");
  require(options_.routing_bias_update_rate == 0 || !policy_->named_buffers().empty(),
          "trainer: routing_bias_update_rate > 0 needs a policy with a routing bias (DeepSeek-V3's "
          "e_score_correction_bias); " + policy_->config().architecture + " has none");
  policy_->set_activation_checkpointing(options_.activation_checkpointing);
  optimizer_ = std::make_unique<Optimizer>(weight_decay_groups(policy_->parameters(), options_.weight_decay), options_.optimizer);
  if (options_.loss.beta > 0) {
    reference_ = std::make_unique<Transformer>(policy_->config(), policy_->dtype(), policy_->device(), policy_memory);
    if (policy_memory == WeightMemory::allocated) copy_weights(*policy_, *reference_);
  }
}

void GrpoTrainer::use_communicator(std::shared_ptr<parallel::Communicator> comm) {
  comm_ = std::move(comm);
  if (!comm_ || options_.mini_batch_size <= 0) return;
  require(options_.mini_batch_size % comm_->size() == 0,
          "trainer: mini_batch_size " + std::to_string(options_.mini_batch_size) + " must be divisible by the world size " +
              std::to_string(comm_->size()) + " (each rank takes an equal share of every optimizer step)");
}

void GrpoTrainer::shard_fully(torch::Tensor master) {
  const bool loaded_sharded = master.defined();
  const bool experts_split = options_.expert_parallel;
  if (experts_split) {
    // Expert parallelism first: the experts become (or, loaded sharded, already are) this rank's
    // slice, rank-local in the optimizer; ZeRO-3 then shards the replicated rest only.
    check_expert_parallel(policy_->config(), comm_->size());
    expert_parallel_ = std::make_unique<ExpertParallel>(comm_, *policy_);
    optimizer_->set_rank_local(comm_, expert_parallel_->expert_parameters());
  }
  fully_sharded_ = make_fully_sharded(comm_, *policy_, options_.autocast_bf16, /*frozen=*/false, options_.prefetch,
                                      experts_split, std::move(master));
  optimizer_->shard(comm_, Sharding::zero3, fully_sharded_->named(), fully_sharded_->master());
  fully_sharded_->release_all();  // from now on each rank holds its master range (and its experts) only
  if (reference_) {
    if (experts_split) {
      // The reference's experts split alike, with a dispatch of its own (its forward is
      // collective too): loaded sharded, copies of the policy's slices (its tensors hold no
      // memory yet); else sliced from its whole copy of the policy.
      if (loaded_sharded) {
        torch::NoGradGuard no_grad;
        auto from = expert_parallel_->expert_parameters();
        std::vector<torch::Tensor> to;
        for (auto& [name, p] : reference_->named_parameters())
          if (is_routed_expert_parameter(name)) to.push_back(p);
        for (size_t i = 0; i < to.size(); ++i) to[i].set_data(from.at(i).detach().clone());
      }
      reference_expert_parallel_ = std::make_unique<ExpertParallel>(comm_, *reference_);
    }
    // The reference, sharded alike (its own master range, frozen), from the policy's weights:
    // its whole copy's, or (loaded sharded) a copy of the policy's master range.
    reference_sharded_ = make_fully_sharded(comm_, *reference_, options_.autocast_bf16, /*frozen=*/true,
                                            options_.prefetch, experts_split,
                                            loaded_sharded ? fully_sharded_->master().clone() : torch::Tensor());
    reference_sharded_->release_all();
    // Loaded sharded, the reference's buffers (DeepSeek-V3's routing bias) were never read:
    // the policy's, as the whole path's copy_weights gives them.
    if (loaded_sharded) reference_sharded_->copy_master_from(*fully_sharded_);
  }
}

void GrpoTrainer::copy_policy_into(Transformer& to) const {
  if (fully_sharded_) {
    fully_sharded_->copy_into(to);
    if (expert_parallel_) expert_parallel_->gather_experts_into(to);
  } else if (expert_parallel_) {
    expert_parallel_->gather_into(to);
  } else {
    copy_weights(*policy_, to);
  }
}

void GrpoTrainer::set_data_parallel(std::shared_ptr<parallel::Communicator> comm) {
  sync_.reset();
  use_communicator(std::move(comm));
  if (!comm_) return;
  {
    // Same weights everywhere, whatever each rank loaded or initialised.
    torch::NoGradGuard no_grad;
    for (auto& p : policy_->parameters()) {
      auto t = p.detach();
      comm_->broadcast(t, 0, "broadcast of rank 0's weights");
    }
  }
  reference_sharded_.reset();
  fully_sharded_.reset();
  reference_expert_parallel_.reset();
  expert_parallel_.reset();
  refresh_reference();
  if (options_.expert_parallel && comm_->size() > 1) {
    check_expert_parallel(policy_->config(), comm_->size());
    if (options_.sharding == Sharding::zero3) {  // the experts split, the rest fully sharded
      shard_fully(torch::Tensor());
      return;
    }
    expert_parallel_ = std::make_unique<ExpertParallel>(comm_, *policy_);
    const int64_t bucket_bytes = comm_->options().bucket_megabytes << 20;
    // The experts live on one rank each: their gradient is already the world's (see header).
    const auto replicated = expert_parallel_->replicated_parameters();
    std::vector<torch::Tensor> replicated_tensors;
    for (const auto& [_, p] : replicated) replicated_tensors.push_back(p);
    sync_ = std::make_unique<parallel::GradientSync>(comm_, replicated_tensors, parallel::GradientReduction::sum,
                                                     bucket_bytes);
    optimizer_->set_rank_local(comm_, expert_parallel_->expert_parameters());
    // zero1/zero2 shard the replicated parameters' state only (the experts' stays local), in the
    // order the gradient sync has them, so that a zero2 layout describes its buckets.
    if (options_.sharding != Sharding::none) {
      optimizer_->shard(comm_, options_.sharding, replicated);
      if (optimizer_->sharding() == Sharding::zero2) sync_->reduce_to_shard(optimizer_->sharded()->layout());
    }
    return;
  }
  if (options_.sharding == Sharding::zero3 && comm_->size() > 1) {
    shard_fully(torch::Tensor());
    return;
  }
  const int64_t bucket_bytes = comm_->options().bucket_megabytes << 20;
  sync_ = std::make_unique<parallel::GradientSync>(comm_, policy_->parameters(), parallel::GradientReduction::sum,
                                                   bucket_bytes);
  optimizer_->shard(comm_, options_.sharding, policy_->named_parameters());
  if (optimizer_->sharding() == Sharding::zero2) sync_->reduce_to_shard(optimizer_->sharded()->layout());
}

void GrpoTrainer::refresh_reference() {
  if (!reference_) return;
  // ZeRO-3: both are sharded alike; each rank copies its master range (and, with expert
  // parallelism, its experts: both hold the same slice) with no communication.
  if (reference_sharded_) {
    reference_sharded_->copy_master_from(*fully_sharded_);
    return;
  }
  // Expert parallelism: the policy holds this rank's experts only; the reference is whole.
  if (expert_parallel_) {
    expert_parallel_->gather_into(*reference_);
    return;
  }
  copy_weights(*policy_, *reference_);
}

torch::Tensor GrpoTrainer::reference_logprobs(const PolicyBatch& batch) const {
  if (!reference_) return {};
  return logprobs_of(*reference_, batch);
}

torch::Tensor GrpoTrainer::policy_logprobs(const PolicyBatch& batch) const { return logprobs_of(*policy_, batch); }

torch::Tensor GrpoTrainer::logprobs_of(const Transformer& model, const PolicyBatch& batch) const {
  batch.validate_tokens();
  torch::NoGradGuard no_grad;
  AutocastScope autocast(options_.autocast_bf16);
  const auto device = model.device();
  const int64_t B = batch.size();
  if (options_.micro_batch_tokens > 0) {
    auto out = torch::zeros({B, batch.input_ids.size(1) - 1}, torch::TensorOptions(device).dtype(torch::kFloat32));
    const auto packs = pack_micro_batches(batch, options_.micro_batch_tokens, device);
    // Agreed once, before any forward: a collective in the loop condition would run once per
    // filler on this rank, and a forward that is itself collective (a split or sharded reference)
    // must not meet another rank's agreement.
    const int64_t micro_batches = agreed_micro_batches(int64_t(packs.size()));
    const auto completion = batch.completion_mask.to(device);
    for (const auto& p : packs)
      p.scatter_into(out, forward_rows(model, p.input_ids, {}, options_.temperature, Entropy::none, false,
                                       p.positions, p.segment_ids, p.gather(completion) != 0)
                              .logprobs);
    for (int64_t k = int64_t(packs.size()); k < micro_batches; ++k) filler_forward(model, /*backward=*/false);
    return out;
  }
  const int64_t chunk = options_.micro_batch_size > 0 ? options_.micro_batch_size : B;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < B; i += chunk) {
    auto part = batch.rows(i, std::min(chunk, B - i));
    parts.push_back(forward(model, part.input_ids.to(device), part.attention_mask.to(device),
                            options_.temperature, Entropy::none, false, part.completion_mask.to(device) != 0)
                        .logprobs);
  }
  return torch::cat(parts);
}

int64_t GrpoTrainer::agreed_micro_batches(int64_t mine) const {
  if (!expert_parallel_ && !fully_sharded_) return mine;
  comm_->set_activity("learner: agreeing on the number of packed micro-batches");
  return static_cast<int64_t>(
      comm_->all_reduce({double(mine)}, c10d::ReduceOp::MAX, "all-reduce of packed micro-batch counts")[0]);
}

void GrpoTrainer::filler_forward(const Transformer& model, bool backward) const {
  const auto on = torch::TensorOptions(model.device()).dtype(torch::kInt64);
  const auto ids = torch::zeros({1, 2}, on), positions = torch::arange(2, on).view({1, 2});
  const auto segments = torch::ones({1, 2}, on);
  if (!backward) {
    forward_rows(model, ids, {}, options_.temperature, Entropy::none, false, positions, segments);
    return;
  }
  AutocastScope autocast(options_.autocast_bf16);
  auto f = forward_rows(model, ids, {}, options_.temperature, Entropy::none, model.config().is_moe(), positions, segments);
  // Zero times the outputs: backward runs every exchange (and the gradient all-reduce when
  // armed) and adds zeros to the gradients.
  auto nothing = f.logprobs.sum() * 0.0;
  for (const auto& logits : f.router_logits) nothing = nothing + logits.sum() * 0.0;
  nothing.backward();
}

GrpoTrainer::Accumulated GrpoTrainer::accumulate_gradients(const PolicyBatch& mini,
                                                           const torch::Tensor& ref) {
  mini.validate();
  require(options_.loss.beta == 0 || options_.kl_in_reward || ref.defined(),
          "trainer: beta > 0 needs reference log-probs");
  GrpoLossOptions loss_options = options_.loss;
  if (options_.kl_in_reward) loss_options.beta = 0;  // the KL is in the rewards already
  const auto device = policy_->device();
  const int64_t B = mini.size();
  auto mask = mini.completion_mask.to(device);
  auto counts = torch::stack({mask.sum(), (mask.sum(1) > 0).sum()}).cpu();
  // Data parallel: the loss is normalised over the global mini-batch (every rank's rows).
  int64_t total_tokens = counts[0].item<int64_t>(), total_sequences = counts[1].item<int64_t>();
  if (comm_) {
    comm_->set_activity("learner: counting the mini-batch's tokens");
    auto global = comm_->all_reduce({double(total_tokens), double(total_sequences)}, c10d::ReduceOp::SUM,
                                    "all-reduce of the mini-batch's token counts");
    total_tokens = static_cast<int64_t>(global[0]);
    total_sequences = static_cast<int64_t>(global[1]);
  }
  Accumulated acc;
  acc.tokens = counts[0].item<int64_t>();
  acc.sequences = counts[1].item<int64_t>();
  acc.ratio_max = 0;
  acc.ratio_min = std::numeric_limits<double>::infinity();
  std::map<std::string, double> sums;
  const Entropy entropy = options_.loss.entropy_coef > 0 ? Entropy::differentiable : Entropy::detached;
  const int64_t chunk = options_.micro_batch_size > 0 ? options_.micro_batch_size : B;
  const auto& config = policy_->config();
  acc.moe = config.is_moe();
  const bool deepseek = !policy_->named_buffers().empty();  // a routing bias: DeepSeek-V3's gate
  std::vector<PackedMicroBatch> packs;
  torch::Tensor old_all, adv_all, is_all;  // packed: the mini-batch's, gathered per micro-batch
  if (options_.micro_batch_tokens > 0) {
    packs = pack_micro_batches(mini, options_.micro_batch_tokens, device);
    old_all = mini.old_logprobs.to(device, torch::kFloat32);
    adv_all = mini.advantages.to(device, torch::kFloat32);
    if (mini.is_weights.defined()) is_all = mini.is_weights.to(device, torch::kFloat32);
  }
  const int64_t own_micro_batches = packs.empty() ? (B + chunk - 1) / chunk : int64_t(packs.size());
  const int64_t micro_batches = packs.empty() ? own_micro_batches : agreed_micro_batches(own_micro_batches);
  for (int64_t k = 0, i = 0; k < micro_batches; ++k, i += chunk) {
    if (k >= own_micro_batches) {  // expert parallelism or zero3: another rank has more packed micro-batches
      if (sync_ && k + 1 == micro_batches) sync_->arm();
      filler_forward(*policy_, /*backward=*/true);
      if (fully_sharded_) fully_sharded_->after_backward();  // its reductions, as every rank's backward makes them
      continue;
    }
    const PackedMicroBatch* pack = packs.empty() ? nullptr : &packs[size_t(k)];
    const int64_t n = pack ? pack->sequences() : std::min(chunk, B - i);  // sequences (rows) in it
    auto micro = pack ? PolicyBatch{} : mini.rows(i, n);
    GrpoLossResult result;
    torch::Tensor aux;
    {
      AutocastScope autocast(options_.autocast_bf16);
      // The loss's mask on this micro-batch's layout; log-probs are read at its tokens only.
      const auto micro_mask = pack ? pack->gather(mask) : mask.narrow(0, i, n);
      auto f = pack ? forward_rows(*policy_, pack->input_ids, {}, options_.temperature, entropy, acc.moe,
                                   pack->positions, pack->segment_ids, micro_mask != 0)
                    : forward(*policy_, micro.input_ids.to(device), micro.attention_mask.to(device),
                              options_.temperature, entropy, acc.moe, micro_mask != 0);
      if (acc.moe && deepseek) {
        // DeepSeek's gate chooses with its bias and expert groups: its loads are recounted
        // through that choice (softmax top-k of the logits would be another routing).
        auto loads = deepseek_expert_loads(*policy_, f.router_logits, f.router_mask);  // [layers, E]
        const double busiest =
            (std::get<0>(loads.max(1)) / loads.sum(1).clamp_min(1.0)).max().item<double>() * double(config.num_experts);
        acc.expert_load_max = std::max(acc.expert_load_max, busiest);
        if (options_.routing_bias_update_rate > 0)
          acc.expert_loads = acc.expert_loads.defined() ? acc.expert_loads + loads : loads;
      }
      if (acc.moe) {
        aux = load_balancing_loss(f.router_logits, config.num_experts, config.num_experts_per_tok, f.router_mask);
        if (!deepseek)
          acc.expert_load_max = std::max(
              acc.expert_load_max,
              expert_load_max(f.router_logits, config.num_experts, config.num_experts_per_tok, f.router_mask));
      }
      GrpoLossInputs in;
      in.logprobs = f.logprobs;
      if (pack) {  // the loss on the packed layout
        in.old_logprobs = pack->gather(old_all);
        if (ref.defined() && loss_options.beta > 0) in.ref_logprobs = pack->gather(ref);
        in.advantages = adv_all.index_select(0, pack->row_index);
        in.mask = micro_mask;
        in.sequence_index = pack->sequence_index;
        if (is_all.defined()) in.is_weights = pack->gather(is_all);
      } else {
        in.old_logprobs = micro.old_logprobs.to(device, torch::kFloat32);
        if (ref.defined() && loss_options.beta > 0) in.ref_logprobs = ref.narrow(0, i, n).to(device);
        in.advantages = micro.advantages.to(device, torch::kFloat32);
        in.mask = micro_mask;
        if (micro.is_weights.defined()) in.is_weights = micro.is_weights.to(device, torch::kFloat32);
      }
      in.entropy = f.entropy;
      in.total_tokens = total_tokens;
      in.total_sequences = total_sequences;
      result = grpo_loss(in, loss_options);
    }
    if (aux.defined()) {
      const double share = double(n) / double(B);
      acc.aux_loss += aux.item<double>() * share;
      // Data parallel: gradients are summed over ranks, so each rank's aux term is weighted by
      // its share of the global mini-batch (the same number of rows on every rank).
      const double world = comm_ ? double(comm_->size()) : 1.0;
      if (options_.router_aux_loss_coef > 0)
        result.loss = result.loss + options_.router_aux_loss_coef * (share / world) * aux;
    }
    const bool last_micro = k + 1 == micro_batches;
    if (sync_ && last_micro) {
      comm_->set_activity("learner: backward with the gradient all-reduce");
      sync_->arm();
    }
    if (fully_sharded_) comm_->set_activity("learner: backward with sharded parameters");
    result.loss.backward();
    if (fully_sharded_) fully_sharded_->after_backward();
    auto values = result.metrics.named_values();
    values.emplace_back("loss", result.loss.item<double>());
    double tokens = 0;
    for (const auto& [name, v] : values)
      if (name == "train/tokens") tokens = v;
    for (const auto& [name, v] : values) {
      if (name == "loss")
        acc.loss += v;
      else if (name == "train/tokens" || name == "train/sequences")
        continue;
      else if (additive(name))
        sums[name] += v;
      else if (name == "train/ratio_max")
        acc.ratio_max = tokens > 0 ? std::max(acc.ratio_max, v) : acc.ratio_max;
      else if (name == "train/ratio_min")
        acc.ratio_min = std::min(acc.ratio_min, v);
      else if (tokens > 0)
        sums[name] += v * tokens;
    }
  }
  acc.weighted.assign(sums.begin(), sums.end());
  if (comm_) {
    if (fully_sharded_) {
      optimizer_->sharded()->set_shard_grad(fully_sharded_->take_grad_shard());
    } else {
      sync_->finish(optimizer_->sharding() == Sharding::zero2 ? "reduce of gradients to their shards"
                                                               : "all-reduce of gradients");
      if (optimizer_->sharding() == Sharding::zero2) optimizer_->sharded()->set_shard_grad(sync_->take_shard_grad());
    }
    // The global loss (each rank's part is already normalised globally), for the skip decision.
    acc.loss = comm_->all_reduce({acc.loss}, c10d::ReduceOp::SUM, "all-reduce of the loss")[0];
  }
  return acc;
}

void GrpoTrainer::update_routing_bias_after(bool step_applied, const torch::Tensor& loads) {
  auto total = loads;
  if (comm_) {
    // Every rank takes part (the step's applied flag is the same everywhere) and moves its bias alike.
    auto flat = loads.reshape({-1}).contiguous();
    std::vector<double> values(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
    values = comm_->all_reduce(values, c10d::ReduceOp::SUM, "all-reduce of the expert loads");
    total = torch::tensor(values, torch::kFloat64).view(loads.sizes());
  }
  if (step_applied) update_routing_bias(*policy_, total, options_.routing_bias_update_rate);
}

TrainStepMetrics GrpoTrainer::train_step(const PolicyBatch& batch) {
  batch.validate();
  const int64_t B = batch.size();
  int64_t mini = options_.mini_batch_size > 0 ? std::min(options_.mini_batch_size, B) : B;
  if (comm_) {
    // Every rank must make the same number of optimizer steps (each is a set of collectives).
    auto sizes = comm_->all_reduce({double(B), -double(B)}, c10d::ReduceOp::MAX, "all-reduce of the batch sizes");
    require(sizes[0] == -sizes[1], "trainer: data-parallel ranks have batches of different sizes (" +
                                       std::to_string(B) + " rows here, up to " + std::to_string(int64_t(sizes[0])) +
                                       " elsewhere); each rank must train on the same number of rows");
    if (options_.mini_batch_size > 0) mini = std::min(options_.mini_batch_size / comm_->size(), B);
  }
  auto ref = options_.kl_in_reward ? torch::Tensor() : reference_logprobs(batch);

  TrainStepMetrics m;
  m.has_reference = reference_ != nullptr && !options_.kl_in_reward;  // with kl_in_reward the stage logs reward/kl
  std::map<std::string, double> token_weighted, per_step;
  double grad_norm_sum = 0, aux_sum = 0;
  m.ratio_min = std::numeric_limits<double>::infinity();
  for (int64_t epoch = 0; epoch < options_.inner_epochs; ++epoch) {
    for (int64_t i = 0; i < B; i += mini) {
      const int64_t n = std::min(mini, B - i);
      auto acc = accumulate_gradients(batch.rows(i, n), ref.defined() ? ref.narrow(0, i, n) : ref);
      auto step = optimizer_->step(torch::tensor(acc.loss, torch::kFloat64));
      if (acc.expert_loads.defined()) update_routing_bias_after(step.applied, acc.expert_loads);
      ++m.optimizer_steps;
      if (!step.applied) ++m.skipped_steps;
      grad_norm_sum += step.grad_norm;
      m.lr = step.lr;
      m.loss += acc.loss;
      m.tokens += acc.tokens;
      m.sequences += acc.sequences;
      m.ratio_max = std::max(m.ratio_max, acc.ratio_max);
      m.ratio_min = std::min(m.ratio_min, acc.ratio_min);
      m.has_moe = acc.moe;
      aux_sum += acc.aux_loss;
      m.moe_expert_load_max = std::max(m.moe_expert_load_max, acc.expert_load_max);
      for (const auto& [name, v] : acc.weighted) {
        if (additive(name))
          per_step[name] += v;
        else
          token_weighted[name] += v;
      }
    }
  }
  double reward_sum = 0, reward_count = 0;
  if (batch.rewards.defined()) {
    reward_sum = batch.rewards.to(torch::kFloat64).sum().item<double>();
    reward_count = double(B);
  }
  if (comm_) {
    // Global metrics: additive parts and token-weighted sums add up over ranks.
    std::vector<std::string> names = {"train/policy_loss", "train/kl_loss", "train/entropy"};
    std::vector<std::string> weighted = {"train/clip_frac_low", "train/clip_frac_high", "train/dual_clip_frac",
                                         "train/ppo_kl", "train/kl", "train/ratio_mean"};
    std::vector<double> v;
    for (const auto& n : names) v.push_back(per_step[n]);
    for (const auto& n : weighted) v.push_back(token_weighted[n]);
    v.insert(v.end(), {double(m.tokens), double(m.sequences), reward_sum, reward_count});
    v = comm_->all_reduce(v, c10d::ReduceOp::SUM, "all-reduce of the learner's metrics");
    size_t k = 0;
    for (const auto& n : names) per_step[n] = v[k++];
    for (const auto& n : weighted) token_weighted[n] = v[k++];
    m.tokens = static_cast<int64_t>(v[k++]);
    m.sequences = static_cast<int64_t>(v[k++]);
    reward_sum = v[k++];
    reward_count = v[k++];
    auto extremes = comm_->all_reduce({m.ratio_max, -m.ratio_min}, c10d::ReduceOp::MAX,
                                      "all-reduce of the learner's metrics");
    m.ratio_max = extremes[0];
    m.ratio_min = -extremes[1];
  }
  // Additive values are per optimizer step: average them; token means over all tokens.
  const double steps = double(m.optimizer_steps);
  m.loss /= steps;
  m.grad_norm = grad_norm_sum / steps;
  m.moe_aux_loss = aux_sum / steps;
  auto mean = [&](const char* name) { return per_step[name] / steps; };
  m.policy_loss = mean("train/policy_loss");
  m.kl_loss = mean("train/kl_loss");
  m.entropy = mean("train/entropy");
  auto token_mean = [&](const char* name) {
    return m.tokens > 0 ? token_weighted[name] / double(m.tokens) : 0.0;
  };
  m.clip_frac_low = token_mean("train/clip_frac_low");
  m.clip_frac_high = token_mean("train/clip_frac_high");
  m.dual_clip_frac = token_mean("train/dual_clip_frac");
  m.ppo_kl = token_mean("train/ppo_kl");
  m.approx_kl = token_mean("train/kl");
  m.ratio_mean = token_mean("train/ratio_mean");
  if (batch.rewards.defined()) {
    m.has_rewards = true;
    m.reward_mean = reward_count > 0 ? reward_sum / reward_count : 0.0;
  }
  ++steps_done_;
  if (options_.ref_refresh_steps > 0 && steps_done_ % options_.ref_refresh_steps == 0) refresh_reference();
  return m;
}

}  // namespace aha::policy
