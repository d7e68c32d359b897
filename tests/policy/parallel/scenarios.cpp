// What each rank of a test's world does (world_runner.h); results go to files named by
// AHA_PARALLEL_OUT plus ".rank<r>", errors to stderr.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "core/error.h"
#include "policy/learner/checkpoint.h"
#include "policy/learner/sharded_adamw.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/gradient_sync.h"
#include "policy/parallel/metric_reduction.h"
#include "policy/parallel/shard_layout.h"
#include "policy/model/model_io.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/cpu_peak.h"
#include "tests/policy/parallel/gradient_sync_run.h"
#include "tests/policy/parallel/whole_save.h"
#include "tests/policy/parallel/zero_run.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

std::string out_path(int rank) { return std::string(std::getenv("AHA_PARALLEL_OUT")) + ".rank" + std::to_string(rank); }

// The hand-worked case of gradient_sync_test.cpp: two micro-batches, the second armed, and a
// parameter (a) that gets no gradient in the armed one.
int grad_average() {
  auto comm = connect_scenario_rank();
  auto a = torch::zeros({2}).requires_grad_(true);
  auto b = torch::zeros({3}).requires_grad_(true);
  const bool r0 = comm->rank() == 0;
  GradientSync sync(comm, {a, b}, GradientReduction::average, /*bucket_bytes=*/12);
  auto xa = r0 ? torch::tensor({1.f, 2.f}) : torch::tensor({3.f, -4.f});
  auto xb1 = r0 ? torch::tensor({1.f, 1.f, 1.f}) : torch::tensor({0.f, 2.f, 4.f});
  auto xb2 = r0 ? torch::tensor({2.f, 0.f, 0.f}) : torch::tensor({0.f, 0.f, 2.f});
  ((a * xa).sum() + (b * xb1).sum()).backward();
  sync.arm();
  (b * xb2).sum().backward();
  sync.finish();
  std::ofstream out(out_path(comm->rank()));
  out << sync.bucket_count() << " " << sync.launched_during_backward();
  for (const auto& p : {a, b})
    for (int64_t i = 0; i < p.numel(); ++i) out << " " << p.grad()[i].item<float>();
  comm->finish();
  return 0;
}

// gradient_sync_test.cpp's mixed-dtype model (gradient_sync_run.h), its gradients summed: p3's
// from a first backward, the others' from the armed one. AHA_TEST_BUCKET_BYTES: the bucket size;
// AHA_TEST_ZERO2 ("1"): reduced to the shards. Writes the bucket count, the buckets launched
// during backward, the bytes given to the collectives and how many parameters still have a
// .grad; and the gradients (.grads.pt), or under ZeRO-2 the rank's shard (.shard.pt).
int grad_mixed() {
  auto comm = connect_scenario_rank();
  const int rank = comm->rank();
  std::vector<torch::Tensor> params;
  std::vector<int64_t> numels;
  for (const auto& spec : mixed_params()) {
    params.push_back(torch::zeros({spec.numel}, torch::TensorOptions().dtype(spec.dtype)).requires_grad_(true));
    numels.push_back(spec.numel);
  }
  GradientSync sync(comm, params, GradientReduction::sum, std::stoll(std::getenv("AHA_TEST_BUCKET_BYTES")));
  const char* zero2_env = std::getenv("AHA_TEST_ZERO2");
  const bool zero2 = zero2_env && std::string(zero2_env) == "1";
  if (zero2) sync.reduce_to_shard(ShardLayout(numels, comm->size()));
  auto loss_of = [&](size_t k) { return (params[k] * mixed_grad_tensor(rank, k)).sum(); };
  loss_of(3).backward();
  sync.arm();
  auto loss = loss_of(0);
  for (size_t k = 1; k < params.size(); ++k)
    if (k != 3) loss = loss + loss_of(k);
  loss.backward();
  sync.finish();
  int64_t grads_left = 0;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    grads_left += p.grad().defined();
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (zero2)
    torch::save(sync.take_shard_grad(), out_path(rank) + ".shard.pt");
  else
    torch::save(grads, out_path(rank) + ".grads.pt");
  std::ofstream(out_path(rank)) << sync.bucket_count() << " " << sync.launched_during_backward() << " "
                                << sync.reduced_bytes() << " " << grads_left;
  comm->finish();
  return 0;
}

// One data-parallel GRPO learner step on this rank's rows of the shared synthetic batch.
int trainer_step() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  auto model = policy::testing::tiny_model();
  auto batch = policy::testing::synthetic_batch(*model, 7, /*B=*/4);
  policy::TrainerOptions o;
  o.optimizer.lr = kTrainerStepLr;
  o.micro_batch_size = 1;
  if (const char* mini = std::getenv("AHA_TEST_MINI_BATCH")) o.mini_batch_size = std::atoi(mini);
  if (const char* tokens = std::getenv("AHA_TEST_MICRO_TOKENS")) {  // packed micro-batches
    o.micro_batch_size = 0;
    o.micro_batch_tokens = std::atoi(tokens);
  }
  policy::GrpoTrainer trainer(std::move(model), o);
  trainer.set_data_parallel(comm);
  const auto [begin, end] = share_of(batch.size(), comm->rank(), comm->size());
  auto mine = batch.rows(begin, end - begin);
  // Gradients of the whole local share (not stepped), then a full step.
  auto acc = trainer.accumulate_gradients(mine, {});
  std::vector<torch::Tensor> grads;
  for (auto& p : trainer.policy().parameters()) grads.push_back(p.grad().clone());
  for (auto& p : trainer.policy().parameters()) p.mutable_grad() = torch::Tensor();
  auto metrics = trainer.train_step(mine);
  std::vector<torch::Tensor> weights;
  for (auto& p : trainer.policy().parameters()) weights.push_back(p.detach().clone());
  torch::save(grads, out_path(comm->rank()) + ".grads.pt");
  torch::save(weights, out_path(comm->rank()) + ".weights.pt");
  std::ofstream(out_path(comm->rank())) << acc.loss << " " << metrics.loss << " " << metrics.tokens << " "
                                        << metrics.grad_norm;
  comm->finish();
  return 0;
}

// The tiny DeepSeek-V3 policy with a non-zero routing bias, the same on every rank and in the
// test's one-process reference.
std::unique_ptr<Transformer> biased_deepseek() {
  auto model = init_model(ModelConfig::from_file(std::string(AHA_SOURCE_DIR) + "/recipes/models/tiny-deepseek-v3.json"), 5);
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  for (auto& [name, b] : model->named_buffers()) b.copy_(torch::randn({b.size(0)}, gen) * 0.01);
  return model;
}

// One data-parallel learner step with routing_bias_update_rate > 0: the routing biases after it.
int routing_bias_step() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  auto model = biased_deepseek();
  auto batch = policy::testing::synthetic_batch(*model, 7, /*B=*/4);
  policy::TrainerOptions o;
  o.optimizer.lr = 1e-3;
  o.micro_batch_size = 1;
  o.routing_bias_update_rate = 0.01;
  policy::GrpoTrainer trainer(std::move(model), o);
  trainer.set_data_parallel(comm);
  const auto [begin, end] = share_of(batch.size(), comm->rank(), comm->size());
  trainer.train_step(batch.rows(begin, end - begin));
  std::vector<torch::Tensor> biases;
  for (auto& [name, b] : trainer.policy().named_buffers()) biases.push_back(b.clone());
  torch::save(biases, out_path(comm->rank()) + ".bias.pt");
  comm->finish();
  return 0;
}

// zero_test.cpp's training run (zero_run.h) as one rank of a data-parallel world: sharding
// AHA_TEST_SHARDING, AHA_TEST_STEPS steps, optionally resumed from AHA_TEST_LOAD and saved
// under the stage directory AHA_TEST_SAVE (AHA_TEST_SAVE_PEAK: and the save's peak CPU allocation
// written; AHA_TEST_SAVE_WHOLE: the model directories also saved as before the save streamed, see
// whole_save.h); writes its weights and byte counts. With
// AHA_TEST_BETA (> 0), AHA_TEST_REF_REFRESH, AHA_TEST_MICRO_TOKENS, AHA_TEST_PREFETCH (0 or 1):
// zero_run.h's variations, and the reference model's bytes too. AHA_TEST_SHARDED_LOAD (zero3):
// the policy from load_model_sharded instead of a whole load, with the rollout's bf16 copy loaded
// from the files and gathered from the masters at start, both written; AHA_TEST_ROWS: the
// batch's rows (4).
int zero_train() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  const std::string model_dir = env("AHA_TEST_MODEL_DIR");
  if (!env("AHA_TEST_SAVE_PEAK").empty()) count_cpu_allocations();  // the parameters' storage too
  ZeroRunOptions run;
  if (!env("AHA_TEST_BETA").empty()) run.beta = std::stod(env("AHA_TEST_BETA"));
  if (!env("AHA_TEST_REF_REFRESH").empty()) run.ref_refresh_steps = std::stoll(env("AHA_TEST_REF_REFRESH"));
  if (!env("AHA_TEST_MICRO_TOKENS").empty()) run.micro_batch_tokens = std::stoll(env("AHA_TEST_MICRO_TOKENS"));
  if (!env("AHA_TEST_PREFETCH").empty()) run.prefetch = env("AHA_TEST_PREFETCH") == "1";
  if (!env("AHA_TEST_EPS").empty()) run.eps = std::stod(env("AHA_TEST_EPS"));
  const auto sharding = policy::parse_sharding(env("AHA_TEST_SHARDING"));
  const int64_t rows = env("AHA_TEST_ROWS").empty() ? 4 : std::stoll(env("AHA_TEST_ROWS"));
  const std::string dir = model_dir.empty() ? policy::testing::kTinyModel.string() : model_dir;
  auto trainer = env("AHA_TEST_SHARDED_LOAD").empty()
                     ? zero_trainer(sharding, model_dir, run)
                     : std::make_unique<policy::GrpoTrainer>(
                           policy::load_model_sharded(dir, comm->rank(), comm->size(), torch::kCPU),
                           zero_options(sharding, run), comm);
  if (!env("AHA_TEST_SHARDED_LOAD").empty()) {
    // The rollout's copy as the GRPO stage loads it, and as gathering the masters makes it.
    auto from_files = load_model(dir, {torch::kCPU, torch::kBFloat16});
    Transformer gathered(trainer->policy().config(), torch::kBFloat16, torch::kCPU);
    trainer->fully_sharded()->copy_into(gathered);
    torch::save(from_files->parameters(), out_path(comm->rank()) + ".rollout_files.pt");
    torch::save(gathered.parameters(), out_path(comm->rank()) + ".rollout_gathered.pt");
  }
  // Activation checkpointing: the layers recompute in backward (the same gradients).
  if (!env("AHA_TEST_CHECKPOINTING").empty()) trainer->policy().set_activation_checkpointing(true);
  if (env("AHA_TEST_SHARDED_LOAD").empty()) trainer->set_data_parallel(comm);
  if (!env("AHA_TEST_GATHER_ROUND").empty() && trainer->optimizer().sharded())
    trainer->optimizer().sharded()->set_gather_round_elements(std::stoll(env("AHA_TEST_GATHER_ROUND")));
  if (!env("AHA_TEST_LOAD").empty()) policy::load_checkpoint(env("AHA_TEST_LOAD"), *trainer);
  const int64_t steps = std::stoll(env("AHA_TEST_STEPS"));
  int64_t gradient_bytes = -1;
  for (int64_t k = 0; k < steps; ++k) {
    auto batch = zero_batch(trainer->steps_done(), model_dir, rows);
    const auto [begin, end] = share_of(batch.size(), comm->rank(), comm->size());
    auto mine = batch.rows(begin, end - begin);
    if (k == 0) {
      // The first step by hand, to count the gradient bytes held between backward and update.
      auto acc = trainer->accumulate_gradients(mine, trainer->reference_logprobs(mine));
      gradient_bytes = trainer->optimizer().gradient_bytes();
      trainer->optimizer().step(torch::tensor(acc.loss, torch::kFloat64));
      trainer->set_steps_done(trainer->steps_done() + 1);
    } else {
      trainer->train_step(mine);
    }
  }
  if (!env("AHA_TEST_SAVE").empty()) {
    // AHA_TEST_SAVE_PEAK: the CPU memory the save allocates at its peak, to a file of its own.
    const int64_t peak = peak_cpu_bytes([&] { policy::save_checkpoint(env("AHA_TEST_SAVE"), {trainer->steps_done(), 0}, *trainer); });
    if (!env("AHA_TEST_SAVE_PEAK").empty()) std::ofstream(out_path(comm->rank()) + ".save_peak") << peak;
  }
  // AHA_TEST_SAVE_WHOLE (zero3): the model directories as the save wrote them before it streamed.
  if (!env("AHA_TEST_SAVE_WHOLE").empty()) save_whole_as_before(*trainer, *comm, env("AHA_TEST_SAVE_WHOLE"));
  // What this rank holds between steps, from the tensors' storage: the parameters (nothing under
  // ZeRO-3) and ZeRO-3's float32 master range.
  int64_t parameter_bytes = 0, master_bytes = 0;
  for (auto& p : trainer->policy().parameters()) parameter_bytes += static_cast<int64_t>(p.storage().nbytes());
  auto* sharded = trainer->fully_sharded();
  if (sharded) {
    master_bytes = sharded->master_bytes();
    // The rollout's copy in bf16, gathered in bf16 block by block.
    Transformer rollout(trainer->policy().config(), torch::kBFloat16, torch::kCPU);
    sharded->copy_into(rollout);
    torch::save(rollout.parameters(), out_path(comm->rank()) + ".rollout.pt");
    sharded->gather_all();
  }
  std::vector<torch::Tensor> weights;
  for (auto& p : trainer->policy().parameters()) weights.push_back(p.detach().clone());
  if (sharded) sharded->release_all();
  torch::save(weights, out_path(comm->rank()) + ".weights.pt");
  // The reference model's: its parameters' storage (nothing under ZeRO-3) and master range.
  int64_t reference_parameter_bytes = 0, reference_master_bytes = 0;
  if (trainer->reference()) {
    for (auto& p : trainer->reference()->parameters())
      reference_parameter_bytes += static_cast<int64_t>(p.storage().nbytes());
    if (trainer->reference_sharded()) reference_master_bytes = trainer->reference_sharded()->master_bytes();
  }
  std::ofstream(out_path(comm->rank())) << trainer->optimizer().state_bytes() << " " << gradient_bytes << " "
                                        << trainer->optimizer().skipped_steps() << " " << parameter_bytes << " "
                                        << master_bytes << " " << reference_parameter_bytes << " "
                                        << reference_master_bytes;
  comm->finish();
  return 0;
}

// zero3_test.cpp's bad configurations on a world of 2: each error's message, one per line.
int zero3_bad_config() {
  policy::testing::one_thread();
  auto comm = connect_scenario_rank();
  std::ofstream out(out_path(comm->rank()));
  auto attempt = [&](const std::function<void()>& f) {
    try {
      f();
      out << "no error\n";
    } catch (const Error& e) {
      out << e.what() << "\n";
    }
  };
  attempt([&] {  // bf16 weights: no float32 master
    policy::TrainerOptions o;
    o.sharding = policy::Sharding::zero3;
    auto model = policy::testing::tiny_model();
    auto bf16 = std::make_unique<Transformer>(model->config(), torch::kBFloat16, torch::kCPU);
    policy::copy_weights(*model, *bf16);
    policy::GrpoTrainer trainer(std::move(bf16), o);
    trainer.set_data_parallel(comm);
  });
  comm->finish();
  return 0;
}

// metric_reduction_test.cpp's hand-worked metrics.
int metrics() {
  auto comm = connect_scenario_rank();
  const bool r0 = comm->rank() == 0;
  std::vector<std::pair<std::string, double>> m = {
      {"reward/total", r0 ? 1.0 : 3.0},         {"reward/total_std", 0.0},
      {"response/length_max", r0 ? 5.0 : 7.0},  {"ratio_min", r0 ? 2.0 : 1.0},
      {"perf/step_seconds", r0 ? 0.5 : 0.8},    {"perf/tokens_per_s", r0 ? 10.0 : 20.0},
      {"train/loss", r0 ? 0.25 : 0.75},         {"data/degenerate_group_frac", r0 ? 0.5 : 0.0}};
  reduce_metrics(*comm, m, {"train/loss"});
  std::ofstream out(out_path(comm->rank()));
  for (const auto& [name, v] : m) out << name << " " << v << "\n";
  comm->finish();
  return 0;
}

// Meets the others and all-reduces its rank + 1; writes the sum and whether the launcher
// served the store (World::agent_store).
int rendezvous() {
  auto comm = connect_scenario_rank();
  auto t = torch::full({1}, comm->rank() + 1.0);
  comm->all_reduce(t);
  std::ofstream(out_path(comm->rank())) << t.item<double>() << " " << comm->world().agent_store;
  comm->finish();
  return 0;
}

// Rank `AHA_TEST_VICTIM` kills itself (SIGKILL) or stops (SIGSTOP, a hang) after connecting;
// the others keep all-reducing and must stop with an error naming it.
int peer_failure(int signal) {
  auto comm = connect_scenario_rank();
  const int victim = std::atoi(std::getenv("AHA_TEST_VICTIM"));
  comm->set_activity("test all-reduce loop");
  auto t = torch::ones({4});
  comm->all_reduce(t);  // everyone is up
  if (comm->rank() == victim) ::raise(signal);
  try {
    for (int i = 0; i < 1000000; ++i) {
      comm->all_reduce(t);
      ::usleep(10000);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  }
  return 0;
}

}  // namespace

int weight_sync_scenario();      // weight_sync_scenario.cpp
int expert_parallel_scenario();  // expert_parallel_scenario.cpp
int zero_masters_scenario();     // zero_masters_scenario.cpp
int masters_lookup_scenario();   // zero_masters_scenario.cpp
int zero3_save_scenario();       // zero3_save_scenario.cpp

std::shared_ptr<Communicator> connect_scenario_rank() {
  ParallelOptions o;
  o.backend = BackendKind::gloo;
  o.timeout_seconds = 60;
  o.heartbeat_timeout_seconds = 10;
  o.heartbeat_interval_seconds = 0.2;
  if (const char* t = std::getenv("AHA_TEST_HEARTBEAT_TIMEOUT")) o.heartbeat_timeout_seconds = std::atof(t);
  return Communicator::connect(world_from_environment(), o, torch::kCPU);
}

int run_scenario(const std::string& name) {
  try {
    if (name == "rendezvous") return rendezvous();
    if (name == "weight_sync") return weight_sync_scenario();
    if (name == "expert_parallel") return expert_parallel_scenario();
    if (name == "grad_average") return grad_average();
    if (name == "grad_mixed") return grad_mixed();
    if (name == "trainer_step") return trainer_step();
    if (name == "metrics") return metrics();
    if (name == "routing_bias_step") return routing_bias_step();
    if (name == "zero_train") return zero_train();
    if (name == "zero_masters") return zero_masters_scenario();
    if (name == "masters_lookup") return masters_lookup_scenario();
    if (name == "zero3_bad_config") return zero3_bad_config();
    if (name == "zero3_save") return zero3_save_scenario();
    if (name == "killed_peer") return peer_failure(SIGKILL);
    if (name == "hung_peer") return peer_failure(SIGSTOP);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr, "unknown scenario %s\n", name.c_str());
  return 4;
}

}  // namespace aha::parallel::testing
