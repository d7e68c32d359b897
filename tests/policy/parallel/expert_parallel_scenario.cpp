// expert_parallel_test.cpp's run (expert_parallel_run.h) as one rank of a data-parallel world,
// with expert parallelism when AHA_TEST_EXPERT_PARALLEL is set (activation checkpointing with
// AHA_TEST_CHECKPOINTING, packed micro-batches of AHA_TEST_MICRO_BATCH_TOKENS, a reference model with AHA_TEST_BETA,
// the optimizer sharded by AHA_TEST_SHARDING, a bf16 model with float32 masters with
// AHA_TEST_MASTERS): writes the whole weights after
// the steps (experts gathered; optionally resumed from a checkpoint and saved), the bytes of routed-expert parameters this rank holds,
// the last step's moe/ metrics and gradient norm, and the bytes of optimizer state this rank holds.
#include <cstdlib>
#include <fstream>
#include <iomanip>

#include "policy/learner/checkpoint.h"
#include "policy/learner/expert_parallel.h"
#include "policy/learner/grpo_packing.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/expert_parallel_run.h"

namespace aha::parallel::testing {

int expert_parallel_scenario() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  const std::string model_dir = std::getenv("AHA_TEST_MODEL_DIR");
  const bool expert_parallel = std::getenv("AHA_TEST_EXPERT_PARALLEL") != nullptr;
  const char* tokens = std::getenv("AHA_TEST_MICRO_BATCH_TOKENS");
  auto trainer = expert_parallel_trainer(model_dir, expert_parallel, std::getenv("AHA_TEST_CHECKPOINTING") != nullptr,
                                         tokens ? std::stoll(tokens) : 0,
                                         std::getenv("AHA_TEST_BETA") ? std::stod(std::getenv("AHA_TEST_BETA")) : 0.0,
                                         policy::parse_sharding(std::getenv("AHA_TEST_SHARDING") ? std::getenv("AHA_TEST_SHARDING")
                                                                                                 : "none"),
                                         std::getenv("AHA_TEST_MASTERS") != nullptr);
  trainer->set_data_parallel(comm);
  // A checkpoint to resume from (AHA_TEST_LOAD), and how many steps to train (AHA_TEST_STEPS).
  if (const char* load = std::getenv("AHA_TEST_LOAD")) policy::load_checkpoint(load, *trainer);
  const char* steps = std::getenv("AHA_TEST_STEPS");
  const int64_t last = steps ? std::stoll(steps) : kExpertParallelSteps;
  policy::TrainStepMetrics m;
  std::string packs;  // the packed micro-batches of this rank's share, step by step
  while (trainer->steps_done() < last) {
    auto batch = expert_parallel_batch(model_dir, trainer->steps_done());
    const auto [begin, end] = share_of(batch.size(), comm->rank(), comm->size());
    const auto share = batch.rows(begin, end - begin);
    if (tokens) packs += std::to_string(policy::pack_micro_batches(share, std::stoll(tokens), torch::kCPU).size()) + ",";
    m = trainer->train_step(share);
  }
  if (const char* save = std::getenv("AHA_TEST_SAVE"))
    policy::save_checkpoint(save, {trainer->steps_done(), 0}, *trainer);
  int64_t expert_bytes = 0;
  for (auto& [name, p] : trainer->policy().named_parameters())
    if (policy::is_routed_expert_parameter(name)) expert_bytes += static_cast<int64_t>(p.storage().nbytes());
  Transformer whole(trainer->policy().config(), torch::kFloat32, torch::kCPU);
  if (auto* ep = trainer->expert_parallel()) {
    ep->gather_into(whole);
  } else {
    policy::copy_weights(trainer->policy(), whole);
  }
  const std::string out = std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(comm->rank());
  torch::save(whole.parameters(), out + ".weights.pt");
  std::ofstream(out) << std::setprecision(17) << expert_bytes << " " << m.moe_aux_loss << " " << m.moe_expert_load_max
                     << " " << m.grad_norm << " " << trainer->optimizer().skipped_steps() << " " << packs << ". "
                     << trainer->optimizer().state_bytes();
  comm->finish();
  return 0;
}

}  // namespace aha::parallel::testing
