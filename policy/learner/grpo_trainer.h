// GrpoTrainer: the learner's update step. It owns the policy (a Transformer whose weights it
// trains in place), an optional frozen reference model, and the Optimizer, and turns one
// PolicyBatch (sampled completions with behaviour log-probs and advantages) into optimizer
// steps with the GRPO loss of grpo_loss.h.
//
// Contract of train_step(batch) (one call per rollout batch):
// - Reference log-probs (beta > 0) are computed once for the whole batch under no-grad, before
//   any update, at the sampling temperature.
// - The batch is cut into mini-batches of mini_batch_size rows, in order (no shuffling, so no
//   random state is involved); each mini-batch is one optimizer step. This repeats for
//   inner_epochs (mu) passes, so a call makes mu * ceil(B / mini_batch_size) optimizer steps.
// - A mini-batch is cut into micro-batches of micro_batch_size rows whose gradients are
//   accumulated; every micro-batch passes the mini-batch's token and sequence counts to the
//   loss, so the accumulated gradient equals that of the whole mini-batch (grpo_loss.h).
// - Packed micro-batches (micro_batch_tokens > 0, instead of micro_batch_size): the mini-batch's
//   sequences are packed into micro-batches of at most that many token slots (grpo_packing.h),
//   the loss runs on the packed layout (grpo_loss.h's sequence_index) and the reference
//   log-probs are computed packed too. Same loss and gradient as the padded micro-batches, for
//   every aggregation, GSPO and the KL term; only the MoE auxiliary loss, a per-micro-batch
//   quantity, depends on how tokens are grouped. On CUDA in bf16/fp16 or autocast the attention
//   is the variable-length flash kernel (policy/model/varlen_attention.h); elsewhere a
//   block-diagonal mask over rows as wide as the longest sequence.
// - The Optimizer clips by global norm and skips a step whose loss or gradient is not finite:
//   weights and optimizer state are then unchanged, and the step is counted as skipped.
// - Reference refresh: with ref_refresh_steps = K > 0, after every K-th train_step the
//   current policy weights are copied into the reference model.
// - Attention: when every row of a micro-batch has contiguous real tokens (left-padded prompt,
//   completion, right padding: what rollouts produce), the rows are rotated to start at column
//   0 and run with plain causal attention (SDPA's flash path, exact for real tokens); a
//   micro-batch with any hole in its attention mask uses the explicit padding mask instead.
// - The policy's parameters are made to require grad: other readers of the same tensors (the
//   rollout engine) must run under torch::NoGradGuard or c10::InferenceMode.
// - Entropy: the metric comes from the chunked log-prob pass (no gradient). With entropy_coef > 0 the
//   entropy that enters the loss is computed differentiably from the micro-batch's full
//   [b, T-1, V] float32 logits, which costs that memory (keep micro-batches small then).
// - Mixed precision (autocast_bf16, CUDA only): the policy's weights stay as they are (load
//   them in float32: they are the master weights, the optimizer updates them and its state in
//   float32) and forward/backward run under CUDA autocast to bfloat16, so matrix products are
//   bf16 while gradients land in float32. Log-probs, loss and norms are float32 as always.
//   Without it the policy trains in its own dtype (float32, or pure bf16 for a bf16 model).
//   A bf16 model with options.optimizer.fp32_master computes in bf16 (as fast as pure bf16)
//   while the optimizer updates float32 master copies and refreshes the bf16 weights from
//   them (optimizer.h); with sharding zero1/zero2 each rank keeps those of its range, and with
//   expert parallelism those of its experts.
// - activation_checkpointing keeps only each decoder layer's input per micro-batch and
//   recomputes the layer in backward (Transformer::set_activation_checkpointing): less memory
//   for about one more forward pass of compute. Gradients are unchanged.
// - Data parallelism (set_data_parallel, policy/parallel/): every rank holds the whole policy and
//   calls train_step with its own rows of the step's batch, the same number of rows on every
//   rank. mini_batch_size then counts rows of the global batch (divisible by the world size);
//   an optimizer step takes mini_batch_size / world_size rows from each rank. The loss is
//   normalised by the global mini-batch's token and sequence counts (all-reduced before the
//   forward), the last micro-batch's backward all-reduces (sums) gradients bucket by bucket as
//   they are produced (parallel/gradient_sync.h), so every rank's gradient, clipping, skip
//   decision and AdamW update equal those of one process on the global mini-batch (made of each
//   rank's rows in rank order). train_step's metrics are then the global ones.
// - Sharded learner state (options.sharding, with data parallelism of 2 ranks or more): ZeRO-1
//   keeps the all-reduce and gives each rank AdamW's state for its range of the parameters
//   only; ZeRO-2 also reduces each gradient bucket only to the ranks owning part of it, so after
//   backward a rank holds only its range's gradient (optimizer.h, sharded_adamw.h). The update
//   is that of plain data parallelism; checkpoints then hold the state per rank (checkpoint.h).
//   ZeRO-3 (fully_sharded.h) also shards the parameters: each rank keeps a float32 master range,
//   blocks are gathered for their forward and backward and freed after, and gradients are
//   reduced to their owners in every micro-batch's backward. Between steps policy()'s parameter
//   tensors hold no memory: read whole weights through fully_sharded() (copy_into, gather_all;
//   a checkpoint streams them block by block instead, stream_checkpoint).
//   A reference model (beta > 0) is sharded alike but frozen (reference_sharded(): a float32
//   master range per rank, no gradients, no optimizer state); its blocks are gathered for the
//   no-grad forward of the reference log-probs (padded or packed) and freed after each, and a
//   reference refresh copies the policy's master range into it. With options.prefetch the gather
//   of the next block is in flight while a block computes (fully_sharded.h), bit-identically.
//   Every forward and backward is collective then, so with packed micro-batches the ranks agree
//   on their number as under expert parallelism (below).
// - Expert parallelism (options.expert_parallel, data parallelism of 2 ranks or more, MoE
//   policies; policy/learner/expert_parallel.h): each rank keeps only its contiguous slice of
//   every MoE layer's routed experts, tokens travel to their experts' owners and back by
//   all-to-all in forward and backward, the experts' gradients stay with their owner (already
//   summed over the world's tokens) while the replicated parameters are all-reduced, the
//   experts' AdamW state is the owner's, and the global norm sums the experts' squares over the
//   ranks: the update equals plain data parallelism's. Between steps policy() holds this
//   rank's experts only (expert_parallel()->gather_into copies the whole model, e.g. for the
//   rollout). With sharding zero1/zero2 the replicated parameters' state is sharded (and, zero2,
//   their gradients reduced to their shards) while the experts' stays with its rank. With zero3
//   the replicated parameters are fully sharded (fully_sharded.h leaves the experts out: its
//   master ranges, gathers and reductions cover the rest) while each rank keeps its experts
//   whole in float32 with their gradient and AdamW state, and the clipping norm adds their
//   squares (summed over ranks) to the master ranges' in one all-reduce. Packed micro-batches and
//   activation checkpointing work (the ranks agree on the number of micro-batches). A reference
//   model (beta > 0) is whole on every rank, refreshed by gathering the experts; under zero3 it
//   is split as the policy is (its master range, its experts' slices and its own dispatch, so
//   its forward is collective too), refreshed by copying both, without communication.
// - Mixture-of-experts policies (Qwen3-MoE): each micro-batch's router logits give the
//   auxiliary load-balancing loss of transformers (policy/model/moe_routing.h) over its real
//   tokens; with router_aux_loss_coef > 0 the loss adds coef x aux x (micro-batch rows /
//   mini-batch rows / world size), so the accumulated (and, data parallel, summed over ranks)
//   gradient is that of the global mini-batch's row-weighted mean aux loss. Logged as moe/aux_loss (that mean, averaged over optimizer steps, with or without
//   the coefficient) and moe/expert_load_max (moe_routing.h's figure, the largest over the
//   step's micro-batches; for DeepSeek-V3 counted from the experts its biased, grouped gate
//   chose, routing_bias.h's loads, as softmax top-k of its logits is not its choice). Router logits need the layers' own autograd graph, so with
//   activation checkpointing neither is available (a coefficient > 0 is then an error).
// - DeepSeek-V3's routing bias (e_score_correction_bias, a buffer) is frozen unless
//   routing_bias_update_rate r > 0: then after each applied optimizer step every MoE layer's
//   bias moves by r x sign(mean load - load_e), the loads counted over that step's real tokens
//   in its micro-batches' forward passes (summed over ranks under data parallelism, so every
//   rank's bias moves alike) (policy/learner/routing_bias.h). A skipped step moves nothing. It
//   needs the router logits, so activation checkpointing off, and a policy with a routing bias.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/learner/expert_parallel.h"
#include "policy/learner/grpo_loss.h"
#include "policy/learner/fully_sharded.h"
#include "policy/learner/optimizer.h"
#include "policy/model/transformer.h"
#include "policy/parallel/gradient_sync.h"

namespace aha::policy {

// One rollout batch, as the learner needs it. T counts prompt and completion tokens; prompts
// are left-padded. Tensors may live on the CPU; the trainer moves them to the policy's device.
struct PolicyBatch {
  torch::Tensor input_ids;        // [B, T] int64
  torch::Tensor attention_mask;   // [B, T] 1 real token, 0 padding
  torch::Tensor completion_mask;  // [B, T-1] 1 where input_ids[:, t+1] is a completion token
  torch::Tensor old_logprobs;     // [B, T-1] float32 behaviour log-probs at the temperature
  torch::Tensor advantages;       // [B]
  torch::Tensor rewards;          // [B] or undefined: only logged (train/reward_mean)
  // [B, T-1] float32 or undefined: asynchronous GRPO's truncated importance weights, with
  // old_logprobs then the proximal policy's (off_policy_correction.h, grpo_loss.h)
  torch::Tensor is_weights;

  int64_t size() const { return input_ids.defined() ? input_ids.size(0) : 0; }
  // Rows [begin, begin + count) of every tensor.
  PolicyBatch rows(int64_t begin, int64_t count) const;
  // Throws aha::Error naming the tensor whose shape or dtype is wrong.
  void validate() const;
  // The same for the tokens alone (input_ids, attention_mask, completion_mask): what a forward
  // needs, before old_logprobs and advantages exist.
  void validate_tokens() const;
};

struct TrainerOptions {
  GrpoLossOptions loss;  // beta > 0 builds a reference model
  OptimizerOptions optimizer;
  double weight_decay = 0.0;      // on matrices and embeddings; never on norms and biases
  int64_t mini_batch_size = 0;    // rows per optimizer step; 0: the whole batch
  int64_t micro_batch_size = 0;   // rows per forward/backward; 0: the whole mini-batch
  int64_t micro_batch_tokens = 0; // > 0: packed micro-batches of this token budget (see above)
  int64_t inner_epochs = 1;       // mu
  double temperature = 1.0;       // the sampling temperature of old_logprobs
  int64_t ref_refresh_steps = 0;  // K > 0: copy the policy into the reference every K steps
  // KL in the reward instead of the loss: beta then scales the per-sequence KL of the behaviour
  // policy to the reference (policy/kl.h sequence_kl, computed by the caller with
  // reference_logprobs() before advantages), and the loss has no KL term.
  bool kl_in_reward = false;
  bool autocast_bf16 = false;     // CUDA only, see above
  bool activation_checkpointing = false;
  double router_aux_loss_coef = 0.0;  // MoE policies: weight of the load-balancing loss (see above)
  double routing_bias_update_rate = 0.0;  // DeepSeek-V3: aux-loss-free balancing step (see above); 0: frozen
  Sharding sharding = Sharding::none;  // data parallel: ZeRO-1/2 optimizer state, ZeRO-3 parameters too (see above)
  bool prefetch = true;  // ZeRO-3: gather block i + 1 while block i computes (see above); no effect otherwise
  bool expert_parallel = false;        // data parallel, MoE policies: routed experts split over the ranks (see above)
};

// Throws aha::Error naming the option at fault.
void validate(const TrainerOptions& options);

// Metrics of one train_step. Token metrics are token-weighted means over its optimizer steps;
// named_values() gives them as ("train/<name>", value) pairs for the run store.
struct TrainStepMetrics {
  double loss = 0, policy_loss = 0, kl_loss = 0, entropy = 0;
  double clip_frac_low = 0, clip_frac_high = 0, dual_clip_frac = 0;
  double ppo_kl = 0, approx_kl = 0;  // approx_kl: k3 to the reference (0 without one)
  double ratio_mean = 0, ratio_max = 0, ratio_min = 0;
  double grad_norm = 0;  // mean over the optimizer steps (before clipping)
  double lr = 0;         // of the last optimizer step
  double reward_mean = 0;
  int64_t tokens = 0, sequences = 0;  // completion tokens and rows trained on (each epoch)
  int64_t optimizer_steps = 0, skipped_steps = 0;
  bool has_reference = false, has_rewards = false;
  bool has_moe = false;  // an MoE policy whose router logits were recorded (moe/ metrics)
  double moe_aux_loss = 0, moe_expert_load_max = 0;

  std::vector<std::pair<std::string, double>> named_values() const;
};

class GrpoTrainer {
 public:
  // Takes the policy; its parameters are made to require grad. Throws on bad options.
  GrpoTrainer(std::unique_ptr<Transformer> policy, const TrainerOptions& options);
  // ZeRO-3 from a sharded load (fully_sharded.h's load_model_sharded, every rank from the same
  // files): data parallel over `comm` from the start, as set_data_parallel would make it, but
  // with no broadcast and no whole copy of the weights, the reference (beta > 0) included: its
  // master range (and its experts' slices) are copies of the policy's. Needs options.sharding
  // zero3, 2 ranks or more, and options.expert_parallel as the load had it (an error says so).
  GrpoTrainer(ShardedModel policy, const TrainerOptions& options, std::shared_ptr<parallel::Communicator> comm);

  TrainStepMetrics train_step(const PolicyBatch& batch);

  // The pieces of train_step, public for tests and tools:
  // Reference log-probs [B, T-1] (no grad), or undefined when beta == 0.
  torch::Tensor reference_logprobs(const PolicyBatch& batch) const;
  // The policy's own log-probs [B, T-1] of the batch as it is now (no grad), computed as the
  // reference's are: the proximal policy of asynchronous GRPO (off_policy_correction.h). Both
  // read the batch's tokens and completion mask only (validate_tokens), so they can fill
  // old_logprobs; both score the completion tokens only (completion_mask != 0) and read 0 at
  // every other position, as the loss does (the LM head never runs on a prompt's tokens).
  torch::Tensor policy_logprobs(const PolicyBatch& batch) const;
  // Forward + loss + backward over a mini-batch in micro-batches; gradients accumulate in the
  // policy's parameters (nothing is stepped). Returns the summed loss and the metrics summed
  // token-weighted (see .cpp). ref may be undefined when beta == 0.
  struct Accumulated {
    double loss = 0;
    std::vector<std::pair<std::string, double>> weighted;  // metric * tokens, summed
    int64_t tokens = 0, sequences = 0;
    double ratio_max = 0, ratio_min = 0;
    bool moe = false;  // router logits recorded: the two figures below are meaningful
    double aux_loss = 0, expert_load_max = 0;  // row-weighted mean; the largest
    torch::Tensor expert_loads;  // [moe layers, E] float64, with routing_bias_update_rate > 0 (routing_bias.h)
  };
  Accumulated accumulate_gradients(const PolicyBatch& mini_batch, const torch::Tensor& ref);

  // Copies the policy's weights into the reference model (no-op without one).
  void refresh_reference();

  // Trains data-parallel from now on (see above): broadcasts rank 0's weights to every rank and
  // hooks the gradient all-reduce into backward. A null communicator is one process. Not for a
  // trainer made from a sharded load (already data parallel).
  void set_data_parallel(std::shared_ptr<parallel::Communicator> comm);
  parallel::Communicator* communicator() const { return comm_.get(); }

  Transformer& policy() { return *policy_; }
  Transformer* reference() { return reference_.get(); }  // null when beta == 0
  const Transformer* reference() const { return reference_.get(); }
  Optimizer& optimizer() { return *optimizer_; }
  // ZeRO-3's sharded parameters, or null (any other sharding, or one process).
  FullyShardedParameters* fully_sharded() const { return fully_sharded_.get(); }
  // ZeRO-3 with beta > 0: the reference model's sharded parameters, or null.
  FullyShardedParameters* reference_sharded() const { return reference_sharded_.get(); }
  // Expert parallelism's dispatch and shard of the experts, or null (off, or one process).
  ExpertParallel* expert_parallel() const { return expert_parallel_.get(); }
  // ZeRO-3 with expert parallelism and beta > 0: the reference model's, or null.
  ExpertParallel* reference_expert_parallel() const { return reference_expert_parallel_.get(); }
  // Collective where the policy is split (every rank calls it): the whole policy's weights and
  // buffers into `to` (the same config; any dtype, e.g. the rollout's copy in the compute dtype),
  // gathered in to's dtype under ZeRO-3 and expert parallelism, never a whole float32 copy.
  void copy_policy_into(Transformer& to) const;
  const TrainerOptions& options() const { return options_; }
  int64_t steps_done() const { return steps_done_; }           // train_step calls so far
  void set_steps_done(int64_t steps) { steps_done_ = steps; }  // for checkpoint loading

 private:
  // The routing-bias step after an optimizer step (see above): loads summed over ranks, applied
  // when the optimizer step was.
  void update_routing_bias_after(bool step_applied, const torch::Tensor& loads);
  torch::Tensor logprobs_of(const Transformer& model, const PolicyBatch& batch) const;  // no grad
  // Expert parallelism and zero3 make every forward collective (each MoE layer's all-to-all,
  // each block's gather; zero3's backward reduces too), while the number of packed micro-batches
  // depends on a rank's sequence lengths: the ranks agree on the largest number, and a rank with
  // fewer runs filler forwards (one two-token sequence, with backward when `backward`) that add
  // nothing to any gradient or figure.
  int64_t agreed_micro_batches(int64_t mine) const;
  void filler_forward(const Transformer& model, bool backward) const;
  // WeightMemory::none: the policy holds no memory (a sharded load), nor will the reference.
  GrpoTrainer(std::unique_ptr<Transformer> policy, const TrainerOptions& options, WeightMemory policy_memory);
  void use_communicator(std::shared_ptr<parallel::Communicator> comm);  // with the world-size checks
  // ZeRO-3 over comm_ (see set_data_parallel); `master`: this rank's range from a sharded load.
  void shard_fully(torch::Tensor master);

  std::unique_ptr<Transformer> policy_, reference_;
  TrainerOptions options_;
  std::unique_ptr<Optimizer> optimizer_;
  int64_t steps_done_ = 0;
  std::shared_ptr<parallel::Communicator> comm_;
  std::unique_ptr<parallel::GradientSync> sync_;  // every data-parallel sharding but zero3
  std::unique_ptr<FullyShardedParameters> fully_sharded_;  // zero3; refers to policy_, destroyed first
  std::unique_ptr<FullyShardedParameters> reference_sharded_;  // zero3 with beta > 0; refers to reference_
  std::unique_ptr<ExpertParallel> expert_parallel_;         // refers to policy_, destroyed first
  std::unique_ptr<ExpertParallel> reference_expert_parallel_;  // zero3 with expert parallelism and beta > 0
};

// Copies every weight and buffer (the routing bias) of `from` into `to` (same config; dtypes
// may differ), under no-grad.
void copy_weights(const Transformer& from, Transformer& to);

}  // namespace aha::policy
