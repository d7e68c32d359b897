// Benchmark: one rank of the data-parallel GRPO learner under a sharding mode (none, zero1,
// zero2, zero3), for tools/bench/gpu_zero.sh, which starts the ranks (torchrun's variables) and
// compares the modes. A randomly initialised model of --config's shape (default Qwen2.5-0.5B),
// float32 master weights, bf16 autocast, NCCL.
//
//   RANK=.. WORLD_SIZE=.. LOCAL_RANK=.. LOCAL_WORLD_SIZE=.. MASTER_ADDR=.. MASTER_PORT=..
//   bench_zero --sharding zero3 [--config recipes/models/qwen2.5-0.5b.json] [--batch 16]
//              [--prompt 256] [--completion 768] [--micro 4] [--steps 5] [--checkpointing]
//              [--backend nccl|gloo] [--device cpu]
//
// --batch rows per rank (weak scaling). One train_step = forward + backward over the rank's rows
// in micro-batches + one AdamW step (one mini-batch). Under zero3 every step also gathers the
// weights into the rollout's bf16 copy, as aha train does (its time is gather_s, its memory is
// in the peak). Prints one JSON line per rank: step_s (mean over --steps after a warm-up step),
// gather_s, peak_bytes (the CUDA allocator's peak over those steps), resident_bytes (allocated
// after them: weights, optimizer state, rollout copy).
#include <chrono>
#include <iostream>

#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/world.h"
#include "tools/cli.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

void cuda_sync() {
#ifdef AHA_WITH_CUDA
  c10::cuda::device_synchronize();
#endif
}

void reset_peak(int device) {
#ifdef AHA_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
#else
  (void)device;
#endif
}

std::pair<int64_t, int64_t> peak_and_current(int device) {
#ifdef AHA_WITH_CUDA
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device).allocated_bytes[0];
  return {stats.peak, stats.current};
#else
  (void)device;
  return {-1, -1};
#endif
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                        aha::cli::Spec::of_names({"sharding", "config", "batch", "prompt", "completion", "micro",
                                                  "steps", "checkpointing!", "backend", "device"}),
                        "bench_zero");
    const auto world = aha::parallel::world_from_environment();
    const auto sharding = aha::policy::parse_sharding(args.get("sharding", "none"));
    // --device cpu (with --backend gloo): a smoke test of this driver and gpu_zero.sh without a GPU.
    const bool on_cpu = args.get("device", "cuda") == "cpu";
    const torch::Device device = on_cpu ? torch::Device(torch::kCPU)
                                        : torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank));
    const int64_t B = args.get_int("batch", 16, 1), P = args.get_int("prompt", 256, 1);
    const int64_t C = args.get_int("completion", 768, 1), steps = args.get_int("steps", 5, 1);
    const int64_t T = P + C;
    const auto config = aha::ModelConfig::from_file(args.get("config", "recipes/models/qwen2.5-0.5b.json"));

    std::shared_ptr<aha::parallel::Communicator> comm;
    if (world.distributed()) {
      aha::parallel::ParallelOptions po;
      po.backend = aha::parallel::parse_backend(args.get("backend", "nccl"));
      comm = aha::parallel::Communicator::connect(world, po, device);
    }
    aha::policy::TrainerOptions o;
    o.optimizer.lr = 1e-6;
    o.micro_batch_size = args.get_int("micro", 4, 1);
    o.mini_batch_size = B * world.world_size;  // one optimizer step per train_step
    o.autocast_bf16 = !on_cpu;
    o.activation_checkpointing = args.flag("checkpointing");
    o.sharding = sharding;
    aha::policy::GrpoTrainer trainer(aha::init_model(config, 1, torch::kFloat32, device), o);
    if (comm) trainer.set_data_parallel(comm);
    std::unique_ptr<aha::Transformer> rollout;  // zero3: the rollout's whole bf16 copy, as aha train keeps it
    if (trainer.fully_sharded())
      rollout = std::make_unique<aha::Transformer>(config, on_cpu ? torch::kFloat32 : torch::kBFloat16, device);

    torch::manual_seed(1000 + world.rank);
    aha::policy::PolicyBatch batch;
    auto on = torch::TensorOptions().device(device);
    batch.input_ids = torch::randint(0, config.vocab_size, {B, T}, on.dtype(torch::kInt64));
    batch.attention_mask = torch::ones({B, T}, on.dtype(torch::kInt64));
    batch.completion_mask = torch::zeros({B, T - 1}, on.dtype(torch::kFloat32));
    batch.completion_mask.narrow(1, P - 1, C).fill_(1);
    batch.advantages = torch::randn({B}, on);
    batch.old_logprobs = -torch::rand({B, T - 1}, on) - 1.0;  // ratios far from 1 do not change the cost

    double loss = 0;
    auto one_step = [&](double& gather_s) {
      loss = trainer.train_step(batch).loss;
      if (rollout) {
        cuda_sync();
        const auto t = std::chrono::steady_clock::now();
        trainer.fully_sharded()->copy_into(*rollout);
        cuda_sync();
        gather_s += seconds_since(t);
      }
    };
    double unused = 0;
    one_step(unused);  // warm-up: allocator, optimizer state, NCCL communicators
    cuda_sync();
    reset_peak(world.local_rank);
    double gather_s = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) one_step(gather_s);
    cuda_sync();
    const double total_s = seconds_since(start) / double(steps);
    const auto [peak, current] = peak_and_current(world.local_rank);
    std::cout << "{\"rank\": " << world.rank << ", \"world\": " << world.world_size << ", \"sharding\": \""
              << aha::policy::sharding_name(sharding) << "\", \"parameters\": " << config.parameter_count()
              << ", \"step_s\": " << total_s - gather_s / double(steps) << ", \"gather_s\": " << gather_s / double(steps)
              << ", \"tokens_per_s\": " << double(B * C) / total_s << ", \"peak_bytes\": " << peak
              << ", \"resident_bytes\": " << current << ", \"loss\": " << loss << "}" << std::endl;
    if (comm) comm->finish();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_zero: " << e.what() << "\n";
    return 1;
  }
}
