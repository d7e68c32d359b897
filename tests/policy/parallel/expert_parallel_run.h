// The training run that expert_parallel_test.cpp repeats with expert parallelism, with plain
// data parallelism at the same world size, and in one process as the reference: a tiny MoE
// fixture model, AdamW with weight decay, a clipping threshold, the auxiliary load-balancing
// loss on, micro-batches of one row, step k on the synthetic batch of seed 200 + k; optionally
// with the optimizer state sharded (expert_parallel_zero_test.cpp), and optionally a bf16 model
// with float32 master weights (expert_parallel_masters_test.cpp), optionally ZeRO-3 with the
// experts left to expert parallelism (expert_parallel_zero3_test.cpp).
#pragma once
#include <memory>
#include <string>

#include "tests/policy/learner/trainer_test_util.h"

namespace aha::parallel::testing {

inline constexpr int64_t kExpertParallelSteps = 2;
inline constexpr int64_t kExpertParallelRows = 8;

// The run's trainer options (expert_parallel_trainer's arguments).
inline policy::TrainerOptions expert_parallel_options(bool expert_parallel, bool activation_checkpointing = false,
                                                      int64_t micro_batch_tokens = 0, double beta = 0,
                                                      policy::Sharding sharding = policy::Sharding::none,
                                                      bool fp32_master = false) {
  policy::TrainerOptions o;
  // 1e-4: AdamW divides by sqrt(v), so a near-zero gradient's float32 summation-order noise
  // becomes ~1e-3 of lr in its update (2e-6 at lr 1e-3 on an AMD EPYC); a lost gradient still
  // moves weights by ~lr, far above the 1e-6 the tests compare within.
  o.optimizer.lr = 1e-4;
  o.optimizer.max_grad_norm = 0.5;
  o.optimizer.eps = 1e-6;  // as zero_run.h: above the rounding noise of summation orders
  o.weight_decay = 0.1;
  o.micro_batch_size = 1;
  o.router_aux_loss_coef = 0.01;
  o.expert_parallel = expert_parallel;
  o.sharding = sharding;  // zero1/zero2: the replicated parameters' state sharded
  o.activation_checkpointing = activation_checkpointing;
  o.loss.beta = beta;  // > 0: a reference model, whose log-prob pass is collective too
  if (micro_batch_tokens > 0) {  // packed micro-batches instead of one row each
    o.micro_batch_size = 0;
    o.micro_batch_tokens = micro_batch_tokens;
  }
  o.optimizer.fp32_master = fp32_master;  // with the model in bf16
  return o;
}

inline std::unique_ptr<policy::GrpoTrainer> expert_parallel_trainer(const std::string& model_dir, bool expert_parallel,
                                                                    bool activation_checkpointing = false,
                                                                    int64_t micro_batch_tokens = 0, double beta = 0,
                                                                    policy::Sharding sharding = policy::Sharding::none,
                                                                    bool fp32_master = false) {
  const auto o = expert_parallel_options(expert_parallel, activation_checkpointing, micro_batch_tokens, beta, sharding,
                                         fp32_master);
  LoadOptions load;
  if (fp32_master) load.dtype = torch::kBFloat16;
  return std::make_unique<policy::GrpoTrainer>(load_model(model_dir, load), o);
}

inline policy::PolicyBatch expert_parallel_batch(const std::string& model_dir, int64_t step) {
  auto model = load_model(model_dir);
  return policy::testing::synthetic_batch(*model, 200 + static_cast<uint64_t>(step), kExpertParallelRows);
}

}  // namespace aha::parallel::testing
