// expert_parallel_test.cpp's run (expert_parallel_run.h) as one rank of a data-parallel world,
// with expert parallelism when AHA_TEST_EXPERT_PARALLEL is set (activation checkpointing with
// AHA_TEST_CHECKPOINTING, packed micro-batches of AHA_TEST_MICRO_BATCH_TOKENS, a reference model with AHA_TEST_BETA,
// the optimizer sharded by AHA_TEST_SHARDING, a bf16 model with float32 masters with
// AHA_TEST_MASTERS, the clipping threshold AHA_TEST_MAX_GRAD_NORM, a reference refresh every
// AHA_TEST_REF_REFRESH steps, zero3's sharded load with AHA_TEST_SHARDED_LOAD): writes the whole weights after
// the steps (experts gathered; optionally resumed from a checkpoint and saved), the bytes of routed-expert parameters this rank holds,
// the last step's moe/ metrics and gradient norm, the bytes of optimizer state this rank holds,
// and the bytes of its replicated parameters' storage and of its zero3 master range.
#include <cstdlib>
#include <fstream>
#include <iomanip>

#include "policy/learner/checkpoint.h"
#include "policy/learner/expert_parallel.h"
#include "policy/learner/fully_sharded.h"
#include "policy/learner/grpo_packing.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/cpu_peak.h"
#include "tests/policy/parallel/expert_parallel_run.h"
#include "tests/policy/parallel/whole_save.h"

namespace aha::parallel::testing {

int expert_parallel_scenario() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  if (std::getenv("AHA_TEST_SAVE_PEAK")) count_cpu_allocations();  // the parameters' storage too
  const std::string model_dir = std::getenv("AHA_TEST_MODEL_DIR");
  const bool expert_parallel = std::getenv("AHA_TEST_EXPERT_PARALLEL") != nullptr;
  const char* tokens = std::getenv("AHA_TEST_MICRO_BATCH_TOKENS");
  auto options = expert_parallel_options(expert_parallel, std::getenv("AHA_TEST_CHECKPOINTING") != nullptr,
                                         tokens ? std::stoll(tokens) : 0,
                                         std::getenv("AHA_TEST_BETA") ? std::stod(std::getenv("AHA_TEST_BETA")) : 0.0,
                                         policy::parse_sharding(std::getenv("AHA_TEST_SHARDING") ? std::getenv("AHA_TEST_SHARDING")
                                                                                                 : "none"),
                                         std::getenv("AHA_TEST_MASTERS") != nullptr);
  if (const char* norm = std::getenv("AHA_TEST_MAX_GRAD_NORM")) options.optimizer.max_grad_norm = std::stod(norm);
  if (const char* refresh = std::getenv("AHA_TEST_REF_REFRESH")) options.ref_refresh_steps = std::stoll(refresh);
  std::unique_ptr<policy::GrpoTrainer> trainer;
  if (std::getenv("AHA_TEST_SHARDED_LOAD")) {  // zero3: each rank reads its range (and its experts) only
    trainer = std::make_unique<policy::GrpoTrainer>(
        policy::load_model_sharded(model_dir, comm->rank(), comm->size(), torch::kCPU, expert_parallel), options, comm);
  } else {
    LoadOptions load;
    if (options.optimizer.fp32_master) load.dtype = torch::kBFloat16;
    trainer = std::make_unique<policy::GrpoTrainer>(load_model(model_dir, load), options);
    trainer->set_data_parallel(comm);
  }
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
  if (const char* save = std::getenv("AHA_TEST_SAVE")) {
    // AHA_TEST_SAVE_PEAK: the CPU memory the save allocates at its peak, to a file of its own.
    const int64_t peak = peak_cpu_bytes([&] { policy::save_checkpoint(save, {trainer->steps_done(), 0}, *trainer); });
    if (std::getenv("AHA_TEST_SAVE_PEAK"))
      std::ofstream(std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(comm->rank()) + ".save_peak") << peak;
  }
  // AHA_TEST_SAVE_WHOLE (zero3): the model directories as the save wrote them before it streamed.
  if (const char* whole = std::getenv("AHA_TEST_SAVE_WHOLE")) save_whole_as_before(*trainer, *comm, whole);
  int64_t expert_bytes = 0, replicated_bytes = 0;
  for (auto& [name, p] : trainer->policy().named_parameters())
    (policy::is_routed_expert_parameter(name) ? expert_bytes : replicated_bytes) += static_cast<int64_t>(p.storage().nbytes());
  const int64_t master_bytes = trainer->fully_sharded() ? trainer->fully_sharded()->master_bytes() : 0;
  Transformer whole(trainer->policy().config(), torch::kFloat32, torch::kCPU);
  trainer->copy_policy_into(whole);
  const std::string out = std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(comm->rank());
  torch::save(whole.parameters(), out + ".weights.pt");
  std::ofstream(out) << std::setprecision(17) << expert_bytes << " " << m.moe_aux_loss << " " << m.moe_expert_load_max
                     << " " << m.grad_norm << " " << trainer->optimizer().skipped_steps() << " " << packs << ". "
                     << trainer->optimizer().state_bytes() << " " << replicated_bytes << " " << master_bytes;
  comm->finish();
  return 0;
}

}  // namespace aha::parallel::testing
