// The memory one GPU needs to train a model with GRPO under each sharding mode of the learner
// state, on paper (`aha plan`): weights, gradients, optimizer state, the ZeRO-3 gather buffer,
// the learner micro-batch's activations and the rollout's KV cache, in bytes per GPU.
//
// The model (ModelConfig::parameter_count, model_sizes.h) is counted whole: a mixture of
// experts keeps every expert's weights, gradients and optimizer state, whatever few of them a
// token uses, unless expert parallelism (PlanInputs::expert_parallel, recipe
// parallel.expert_parallel) splits the routed experts X (routed_expert_parameters) over the N
// GPUs: each then holds X / N of them, weights, gradients and optimizer state alike (the
// sharding mode's divisions apply to the replicated rest), and gathers the other experts for
// the colocated rollout (counted as gathered: X x the weights' bytes, aha's whole rollout copy).
//
// Sharding modes over N data-parallel GPUs (ZeRO, Rajbhandari et al. 2020; the shards are
// taken as even, padding ignored):
//   none   every GPU holds weights, gradients and optimizer state whole
//   zero1  optimizer state / N
//   zero2  optimizer state / N, gradients / N
//   zero3  optimizer state / N, gradients / N, weights / N, plus one gathered block at a time
//          (the largest decoder layer or the embedding, at the weights' bytes; with expert
//          parallelism the largest less its routed experts, largest_replicated_block), which also
//          serves a rollout that gathers the weights layer by layer (aha's rollout keeps a
//          whole copy instead: training_memory below counts it)
//
// Precisions (bytes per parameter: weights, gradients, optimizer state; activations and KV cache
// per element):
//   fp32         4, 4, 8 (AdamW's two fp32 moments); 4
//   autocast     4, 4, 8; 2 (aha's float32 master weights with bf16 autocast: the weights are
//                the masters)
//   bf16         2, 2, 4 (the moments in the weights' dtype, as aha's AdamW keeps them); 2
//   bf16-master  2, 2, 12 (fp32 master copy + two fp32 moments, the usual mixed precision of
//                ZeRO/FSDP); 2
// The rollout's KV cache is at the compute weights' element size (4 for fp32 and autocast,
// whose rollout reads the float32 weights; 2 otherwise).
//
// Activations of the learner micro-batch of T tokens (per GPU), e bytes per element, w(l) the
// per-token width of layer l (decoder_layer_activation_width), L layers, H hidden:
//   checkpointing off  T x e x sum_l w(l)           every layer's activations wait for backward
//   checkpointing on   T x e x (L x H + max_l w(l)) each layer's input, one layer recomputed
// The LM head's log-probs are chunked (token_logprobs.h) and attention is flash attention, so
// neither the [T, V] logits nor [T, T] scores are counted.
//
// The rollout and the learner take turns on the same GPUs (colocated), and the KV cache is
// freed before the learner runs: the total is weights + gradients + optimizer + gathered +
// max(activations, KV cache). Gradients are counted as resident (accumulated across
// micro-batches). Framework overhead (CUDA context, allocator fragmentation, sampling
// buffers) is not counted: leave a margin.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "policy/model/model_config.h"

namespace aha::parallel {

enum class Sharding { none, zero1, zero2, zero3 };
enum class Precision { fp32, autocast, bf16, bf16_master };

// Names as the command line spells them ("zero1", "bf16-master"); parse_* throw aha::Error
// naming the value and listing the valid ones.
Sharding parse_sharding(const std::string& name);
std::string sharding_name(Sharding sharding);
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);
const std::vector<Sharding>& all_shardings();

struct PrecisionBytes {
  int64_t weight = 0, gradient = 0, optimizer = 0;  // per parameter
  int64_t activation = 0, kv_cache = 0;             // per element
};
PrecisionBytes precision_bytes(Precision precision);

struct PlanInputs {
  int64_t gpus = 1;
  Precision precision = Precision::bf16_master;
  int64_t micro_batch_tokens = 4096;  // learner tokens per forward/backward on one GPU
  bool activation_checkpointing = true;
  int64_t rollout_rows = 64;      // sequences one GPU decodes at once
  int64_t rollout_tokens = 4096;  // cache slots per sequence (prompt + completion)
  bool expert_parallel = false;   // routed experts split over the GPUs (see above)
};

// Parameters of every MoE layer's routed experts (3 x moe_intermediate x hidden each); 0 for a
// dense model.
int64_t routed_expert_parameters(const ModelConfig& config);
// The largest block ZeRO-3 gathers under expert parallelism: the embedding, or a decoder layer's
// parameters less its routed experts (which stay on their ranks).
int64_t largest_replicated_block(const ModelConfig& config);

// Throws aha::Error naming the input at fault (gpus, tokens or rows < 1).
void validate(const PlanInputs& inputs);

// Bytes per GPU.
struct ShardingPlan {
  Sharding sharding = Sharding::none;
  double weights = 0, gradients = 0, optimizer = 0, gathered = 0, activations = 0, kv_cache = 0;
  double total() const;
};

// What the plan counts of the model, independent of the sharding mode.
struct ModelFootprint {
  int64_t parameters = 0, active_parameters = 0;
  int64_t largest_block = 0;          // parameters of the largest decoder layer or the embedding
  int64_t kv_bytes_per_token = 0;     // at the precision's KV element size
  double activation_bytes = 0;        // the micro-batch's, as above
};
ModelFootprint model_footprint(const ModelConfig& config, const PlanInputs& inputs);

ShardingPlan plan_sharding(const ModelConfig& config, const PlanInputs& inputs, Sharding sharding);

// What aha's learner holds on one rank as it trains today (`aha train --check`'s memory plan;
// plan_sharding above is the plan on paper), in bytes. P parameters, e the model dtype's element
// size, N ranks (N = 1: every mode is none, as a single process shards nothing):
//   none   weights P e, gradients P e, optimizer 2 P e (AdamW's moments in the weights' dtype)
//   zero1  optimizer / N;  zero2  and gradients / N
//   zero3  (float32 only, e = 4) weights 4 P / N (the master ranges), gradients 4 P / N,
//          optimizer 8 P / N, gathered: the largest block in float32 and its gradient before it
//          is reduced (2 x 4 x largest block; with prefetch one more block's gather in flight,
//          3 x 4 x largest block), and the rollout's whole copy of the weights in the compute
//          dtype, P x (2 with bf16 autocast, else 4), resident for the run
//   reference (beta > 0): P e, whole on every rank; zero3: 4 P / N (its frozen master range; its
//          blocks are gathered one at a time, in the policy's gathered figure's room).
//   expert_parallel (N > 1): the routed experts X count X / N in weights, gradients and
//          optimizer, the other P - X as the sharding says, and the rollout's whole copy
//          (P x (2 with bf16 autocast, else e)) is resident for the run. With zero3: weights (and
//          the reference's) 4 ((P - X) / N + X / N), gradients the same, optimizer twice that, and
//          the gathered block is the largest_replicated_block (a layer's experts stay local).
//   fp32_master (weights of e = 2 bytes; sharding none, zero1 or zero2): AdamW's moments and the
//          master copy are float32, optimizer 3 x 4 bytes for each element whose moments the rank
//          holds: P unsharded, P / N under zero1/zero2 (the masters are sharded with the moments,
//          the weights and zero1's gradients stay whole in bf16), under expert parallelism the
//          rank's experts X / N plus the replicated rest as the sharding says.
// Start-up under zero3 (zero3_startup): each rank reads its master range from the files and the
// rollout's copy in the compute dtype (policy/learner/fully_sharded.h's sharded load), so the
// peak while loading is the master range (with expert parallelism, and the rank's experts:
// `weights`), the reference's (beta > 0), the rollout's copy and the read buffer (what loading stages at once, e.g. load_staging_bytes in policy/model/model_io.h),
// never the whole float32 model, and below the steady state.
// A checkpoint under zero3 (zero3_checkpoint): the model (and the reference) is streamed to rank
// 0's writer block by block (fully_sharded.h's stream_checkpoint), so beside what stays resident
// (weights, the reference's range, the rollout's copy, gradients and optimizer state, as in
// total(), less the blocks gathered for use, which are freed between steps) a rank holds one
// block in float32 (checkpoint_block: 4 x the largest gathered block; with expert parallelism
// that of the replicated parameters, plus one expert's matrix, 4 x moe_intermediate x hidden,
// broadcast from its rank) and the writer's buffer (safetensors.h's kWriteChunkBytes, a host
// buffer for weights on a GPU), never the whole float32 model that gathering it whole took.
struct TrainingMemory {
  double weights = 0, gradients = 0, optimizer = 0, gathered = 0, rollout_weights = 0, reference = 0;
  double checkpoint_block = 0;  // zero3: the most a checkpoint save gathers at once (see above)
  double learner() const { return gradients + optimizer + gathered + reference; }
  double total() const { return weights + rollout_weights + learner(); }
  double zero3_startup(double read_buffer_bytes) const { return weights + reference + rollout_weights + read_buffer_bytes; }
  double zero3_checkpoint(double write_buffer_bytes) const {
    return weights + reference + rollout_weights + gradients + optimizer + checkpoint_block + write_buffer_bytes;
  }
};
// Throws aha::Error for N < 1, an element size < 1, zero3 with a model dtype other than float32,
// or fp32_master with zero3 or with float32 weights.
TrainingMemory training_memory(const ModelConfig& config, int64_t element_bytes, bool autocast_bf16,
                               bool reference, Sharding sharding, int64_t ranks, bool prefetch = false,
                               bool expert_parallel = false, bool fp32_master = false);

}  // namespace aha::parallel
