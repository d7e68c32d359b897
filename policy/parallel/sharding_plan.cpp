#include "policy/parallel/sharding_plan.h"

#include <algorithm>

#include "core/error.h"
#include "policy/model/model_sizes.h"

namespace aha::parallel {

namespace {

const std::vector<std::pair<std::string, Sharding>> kShardings = {
    {"none", Sharding::none}, {"zero1", Sharding::zero1}, {"zero2", Sharding::zero2}, {"zero3", Sharding::zero3}};
const std::vector<std::pair<std::string, Precision>> kPrecisions = {{"fp32", Precision::fp32},
                                                                    {"autocast", Precision::autocast},
                                                                    {"bf16", Precision::bf16},
                                                                    {"bf16-master", Precision::bf16_master}};

template <typename T>
T parse_name(const std::vector<std::pair<std::string, T>>& table, const std::string& name, const std::string& what) {
  std::string names;
  for (const auto& [n, value] : table) {
    if (n == name) return value;
    names += (names.empty() ? "" : ", ") + n;
  }
  throw Error("unknown " + what + " '" + name + "'; expected one of " + names);
}

template <typename T>
std::string name_of(const std::vector<std::pair<std::string, T>>& table, T value) {
  for (const auto& [n, v] : table)
    if (v == value) return n;
  return "?";
}

}  // namespace

Sharding parse_sharding(const std::string& name) { return parse_name(kShardings, name, "sharding"); }
std::string sharding_name(Sharding sharding) { return name_of(kShardings, sharding); }
Precision parse_precision(const std::string& name) { return parse_name(kPrecisions, name, "precision"); }
std::string precision_name(Precision precision) { return name_of(kPrecisions, precision); }

const std::vector<Sharding>& all_shardings() {
  static const std::vector<Sharding> all = {Sharding::none, Sharding::zero1, Sharding::zero2, Sharding::zero3};
  return all;
}

PrecisionBytes precision_bytes(Precision p) {
  switch (p) {
    case Precision::fp32: return {4, 4, 8, 4, 4};
    case Precision::autocast: return {4, 4, 8, 2, 4};
    case Precision::bf16: return {2, 2, 4, 2, 2};
    case Precision::bf16_master: return {2, 2, 12, 2, 2};
  }
  throw Error("precision_bytes: unknown precision");
}

void validate(const PlanInputs& in) {
  require(in.gpus >= 1, "plan: the number of GPUs must be >= 1, got " + std::to_string(in.gpus));
  require(in.micro_batch_tokens >= 1,
          "plan: the learner micro-batch must have >= 1 token, got " + std::to_string(in.micro_batch_tokens));
  require(in.rollout_rows >= 0, "plan: rollout rows must be >= 0, got " + std::to_string(in.rollout_rows));
  require(in.rollout_tokens >= 0, "plan: rollout tokens must be >= 0, got " + std::to_string(in.rollout_tokens));
}

double ShardingPlan::total() const {
  return weights + gradients + optimizer + gathered + std::max(activations, kv_cache);
}

ModelFootprint model_footprint(const ModelConfig& c, const PlanInputs& in) {
  validate(in);
  const auto bytes = precision_bytes(in.precision);
  ModelFootprint f;
  f.parameters = c.parameter_count();
  f.active_parameters = c.active_parameter_count();
  f.largest_block = c.vocab_size * c.hidden_size;  // the embedding (and an untied head: the same size)
  double widths = 0, widest = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    f.largest_block = std::max(f.largest_block, decoder_layer_parameter_count(c, l));
    const double w = decoder_layer_activation_width(c, l);
    widths += w;
    widest = std::max(widest, w);
  }
  f.kv_bytes_per_token = kv_cache_bytes_per_token(c, bytes.kv_cache);
  const double per_token = in.activation_checkpointing
                               ? double(c.num_hidden_layers) * double(c.hidden_size) + widest
                               : widths;
  f.activation_bytes = double(in.micro_batch_tokens) * double(bytes.activation) * per_token;
  return f;
}

namespace {

// Layer l's stacked routed experts (gate, up and down of each), 0 in a dense layer.
int64_t routed_expert_parameters_of_layer(const ModelConfig& c, int64_t l) {
  return c.is_moe_layer(l) ? c.num_experts * 3 * c.moe_intermediate_size * c.hidden_size : 0;
}

}  // namespace

int64_t routed_expert_parameters(const ModelConfig& c) {
  int64_t total = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) total += routed_expert_parameters_of_layer(c, l);
  return total;
}

int64_t largest_replicated_block(const ModelConfig& c) {
  int64_t largest = c.vocab_size * c.hidden_size;  // the embedding (and an untied head)
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    largest = std::max(largest, decoder_layer_parameter_count(c, l) - routed_expert_parameters_of_layer(c, l));
  return largest;
}

ShardingPlan plan_sharding(const ModelConfig& c, const PlanInputs& in, Sharding sharding) {
  const auto f = model_footprint(c, in);
  const auto bytes = precision_bytes(in.precision);
  const double n = double(in.gpus);
  // Expert parallelism: the routed experts are split over the GPUs, the rest as the mode says.
  const double experts = in.expert_parallel && in.gpus > 1 ? double(routed_expert_parameters(c)) : 0.0;
  const double params = double(f.parameters) - experts, local_experts = experts / n;
  ShardingPlan p;
  p.sharding = sharding;
  p.weights = params * double(bytes.weight);
  p.gradients = params * double(bytes.gradient);
  p.optimizer = params * double(bytes.optimizer);
  if (sharding != Sharding::none) p.optimizer /= n;
  if (sharding == Sharding::zero2 || sharding == Sharding::zero3) p.gradients /= n;
  if (sharding == Sharding::zero3) {
    p.weights /= n;
    // One block gathered whole while it is used; with one GPU nothing is gathered. Under expert
    // parallelism a block's routed experts are local, so only the rest of it is gathered.
    const double block = experts > 0 ? double(largest_replicated_block(c)) : double(f.largest_block);
    if (in.gpus > 1) p.gathered = block * double(bytes.weight);
  }
  p.weights += local_experts * double(bytes.weight);
  p.gradients += local_experts * double(bytes.gradient);
  p.optimizer += local_experts * double(bytes.optimizer);
  p.gathered += experts * double(bytes.weight);  // every expert for the colocated rollout
  p.activations = f.activation_bytes;
  p.kv_cache = double(in.rollout_rows) * double(in.rollout_tokens) * double(f.kv_bytes_per_token);
  return p;
}

TrainingMemory training_memory(const ModelConfig& c, int64_t element_bytes, bool autocast_bf16, bool reference,
                               Sharding sharding, int64_t ranks, bool prefetch, bool expert_parallel, bool fp32_master) {
  require(ranks >= 1, "training memory: the number of ranks must be >= 1, got " + std::to_string(ranks));
  require(element_bytes >= 1, "training memory: the element size must be >= 1 byte");
  if (ranks == 1) sharding = Sharding::none;
  const double params = double(c.parameter_count()), e = double(element_bytes), n = double(ranks);
  TrainingMemory m;
  m.weights = params * e;
  m.gradients = params * e;
  m.optimizer = 2 * params * e;
  if (reference) m.reference = params * e;
  if (sharding != Sharding::none) m.optimizer /= n;
  if (sharding == Sharding::zero2 || sharding == Sharding::zero3) m.gradients /= n;
  const bool experts_split = expert_parallel && ranks > 1;
  const double experts = experts_split ? double(routed_expert_parameters(c)) : 0.0;
  const double replicated = params - experts, local_experts = experts / n;
  if (experts_split) {
    // The rank's slice of the experts whole; the replicated rest as the sharding says.
    m.weights = (replicated + local_experts) * e;
    m.gradients = (replicated / (sharding == Sharding::zero2 || sharding == Sharding::zero3 ? n : 1.0) + local_experts) * e;
    m.optimizer = 2 * (replicated / (sharding != Sharding::none ? n : 1.0) + local_experts) * e;
    m.rollout_weights = params * (autocast_bf16 ? 2.0 : e);
  }
  if (fp32_master) {
    require(element_bytes < 4, "training memory: fp32 master weights are kept for bf16/fp16 weights, not " +
                                   std::to_string(element_bytes) + "-byte ones");
    require(sharding != Sharding::zero3, "training memory: fp32 master weights do not combine with zero3, whose "
                                         "float32 weights are the master ranges");
    // The float32 master beside each float32 moment pair, of the elements whose moments the rank
    // holds (its range under zero1/zero2, its experts under expert parallelism).
    m.optimizer = 3 * 4.0 * (m.optimizer / (2 * e));
  }
  if (sharding == Sharding::zero3) {
    require(element_bytes == 4, "training memory: zero3 keeps float32 master weights (4 bytes), not " +
                                    std::to_string(element_bytes) + "-byte weights");
    // The master range of the replicated parameters (all of them without expert parallelism),
    // plus the rank's experts whole; the reference alike (float32: e = 4).
    m.weights = (replicated / n + local_experts) * 4.0;
    if (reference) m.reference = m.weights;
    // A block's routed experts are never gathered under expert parallelism.
    PlanInputs in;
    const double block = experts_split ? double(largest_replicated_block(c)) : double(model_footprint(c, in).largest_block);
    m.gathered = (prefetch ? 3.0 : 2.0) * 4.0 * block;
    // A checkpoint streams one block at a time, and under expert parallelism one expert's matrix
    // (gate, up or down: moe_intermediate x hidden) beside it.
    m.checkpoint_block = 4.0 * (block + (experts_split ? double(c.moe_intermediate_size * c.hidden_size) : 0.0));
    m.rollout_weights = params * (autocast_bf16 ? 2.0 : 4.0);
  }
  return m;
}

}  // namespace aha::parallel
