// The runs expert_parallel_test.cpp and expert_parallel_zero_test.cpp compare: one process on
// the whole batch (reference(), computed once per model and test process), and a world of
// ranks running expert_parallel_scenario.cpp (train(): with or without expert parallelism,
// more settings as AHA_TEST_* environment variables), each rank's results read back.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "policy/learner/expert_parallel.h"
#include "tests/policy/parallel/expert_parallel_run.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {

inline const std::string kFixtures = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/models/";

struct Run {
  std::vector<torch::Tensor> weights;
  int64_t expert_bytes = 0, skipped = 0;
  double aux_loss = 0, load_max = 0, grad_norm = 0;
  std::string packs;  // packed micro-batches per step ("3,2,." ), "." when not packed
  int64_t state_bytes = 0;  // optimizer state this rank holds (moments)
  int64_t replicated_bytes = 0, master_bytes = 0;  // the other parameters' storage; zero3's master range
  int64_t save_peak = -1;  // AHA_TEST_SAVE_PEAK: the CPU memory the checkpoint save allocated at its peak
};

// One process, the whole batch, no expert parallelism.
inline const Run& reference(const std::string& model) {
  static std::map<std::string, Run> runs;
  auto& r = runs[model];
  if (r.weights.empty()) {
    auto trainer = expert_parallel_trainer(kFixtures + model, false);
    policy::TrainStepMetrics m;
    for (int64_t k = 0; k < kExpertParallelSteps; ++k) m = trainer->train_step(expert_parallel_batch(kFixtures + model, k));
    for (auto& p : trainer->policy().parameters()) r.weights.push_back(p.detach().clone());
    for (auto& [name, p] : trainer->policy().named_parameters())
      if (policy::is_routed_expert_parameter(name)) r.expert_bytes += static_cast<int64_t>(p.storage().nbytes());
    r.aux_loss = m.moe_aux_loss;
    r.load_max = m.moe_expert_load_max;
    r.grad_norm = m.grad_norm;
    r.skipped = trainer->optimizer().skipped_steps();
  }
  return r;
}

inline std::vector<Run> train(const std::string& model, int world, bool expert_parallel,
                              const std::map<std::string, std::string>& more = {}) {
  std::map<std::string, std::string> env = {{"AHA_TEST_MODEL_DIR", kFixtures + model}};
  if (expert_parallel) env["AHA_TEST_EXPERT_PARALLEL"] = "1";
  env.insert(more.begin(), more.end());
  return run_world_results<Run>("expert_parallel", world, env, [](const RankFiles& files, Run& run) {
    torch::load(run.weights, files.path(".weights.pt"));
    files.numbers() >> run.expert_bytes >> run.aux_loss >> run.load_max >> run.grad_norm >> run.skipped >> run.packs >>
        run.state_bytes >> run.replicated_bytes >> run.master_bytes;
    if (files.has(".save_peak")) std::ifstream(files.path(".save_peak")) >> run.save_peak;
  });
}

// Trains `model` for one step on 2 ranks with expert parallelism under `env` and saves a
// checkpoint into a fresh temporary directory (`tag`-PID); returns that directory, whose step-1
// is the checkpoint, or an empty path when training failed (the failure is reported).
inline std::filesystem::path save_after_one_step(const std::string& model, std::map<std::string, std::string> env,
                                                 const std::string& tag) {
  const auto dir = std::filesystem::temp_directory_path() / (tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  env["AHA_TEST_STEPS"] = "1";
  env["AHA_TEST_SAVE"] = dir.string();
  if (train(model, 2, true, env).size() != 2u) return {};
  return dir;
}

}  // namespace aha::parallel::testing
