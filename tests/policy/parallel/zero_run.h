// The training run that zero_test.cpp repeats under every sharding and world size, and in one
// process as the reference: the tiny model, AdamW with weight decay and a clipping threshold
// that the first step exceeds, step k trained on the synthetic 4-row batch of seed 100 + k
// (drawn with a model of its own, so a batch never depends on the weights being trained).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "tests/policy/learner/trainer_test_util.h"

namespace aha::parallel::testing {

// The clipping threshold: between the steps' gradient norms, so some steps are clipped and
// some not (zero_test.cpp checks that on the reference run).
inline constexpr double kZeroMaxGradNorm = 0.5;

// `model_dir`: another fixture model than the tiny tied one (empty: that one).
inline std::unique_ptr<Transformer> zero_model(const std::string& model_dir = "") {
  return model_dir.empty() ? policy::testing::tiny_model() : load_model(model_dir);
}

// Variations of the run (zero3_reference_test.cpp): a reference model (beta > 0, refreshed every
// ref_refresh_steps), packed micro-batches of micro_batch_tokens instead of one row each, and
// ZeRO-3's prefetch.
struct ZeroRunOptions {
  double beta = 0;
  int64_t ref_refresh_steps = 0;
  int64_t micro_batch_tokens = 0;
  bool prefetch = true;
  double eps = 1e-6;  // AdamW's (see below)
};

inline policy::TrainerOptions zero_options(policy::Sharding sharding, const ZeroRunOptions& run = {}) {
  policy::TrainerOptions o;
  o.optimizer.lr = 1e-3;
  o.optimizer.max_grad_norm = kZeroMaxGradNorm;
  // Adam's eps above the rounding noise of gradients that are zero in exact arithmetic (the key
  // biases'), which a smaller eps would blow up to a full step of either sign: the runs compared
  // here sum their gradients in different orders.
  o.optimizer.eps = run.eps;
  o.weight_decay = 0.1;
  o.micro_batch_size = run.micro_batch_tokens > 0 ? 0 : 1;
  o.micro_batch_tokens = run.micro_batch_tokens;
  o.loss.beta = run.beta;
  o.ref_refresh_steps = run.ref_refresh_steps;
  o.prefetch = run.prefetch;
  o.sharding = sharding;
  return o;
}

inline std::unique_ptr<policy::GrpoTrainer> zero_trainer(policy::Sharding sharding, const std::string& model_dir = "",
                                                         const ZeroRunOptions& run = {}) {
  return std::make_unique<policy::GrpoTrainer>(zero_model(model_dir), zero_options(sharding, run));
}

// `rows`: 4, or a multiple of a world size that does not divide 4 (every rank trains as many).
inline policy::PolicyBatch zero_batch(int64_t step, const std::string& model_dir = "", int64_t rows = 4) {
  static std::map<std::string, std::unique_ptr<Transformer>> models;
  auto& model = models[model_dir];
  if (!model) model = zero_model(model_dir);
  return policy::testing::synthetic_batch(*model, 100 + static_cast<uint64_t>(step), rows);
}

inline std::vector<torch::Tensor> weights_of(policy::GrpoTrainer& trainer) {
  std::vector<torch::Tensor> out;
  for (auto& p : trainer.policy().parameters()) out.push_back(p.detach().clone());
  return out;
}

// The run in one process on the whole batch, unsharded: the weights after `steps` steps, and
// the policy's parameter count (what the sharded runs' bytes are compared with).
struct OneProcessRun {
  std::vector<torch::Tensor> weights;
  int64_t elements = 0;
};

inline OneProcessRun zero_one_process(int64_t steps, const std::string& model_dir = "", const ZeroRunOptions& run = {}) {
  OneProcessRun r;
  auto trainer = zero_trainer(policy::Sharding::none, model_dir, run);
  for (auto& p : trainer->policy().parameters()) r.elements += p.numel();
  for (int64_t k = 0; k < steps; ++k) trainer->train_step(zero_batch(k, model_dir));
  r.weights = weights_of(*trainer);
  return r;
}

}  // namespace aha::parallel::testing
