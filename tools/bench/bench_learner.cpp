// Benchmark: learner throughput of GrpoTrainer (the C++ side of tools/bench/learner_throughput.py,
// which runs the same loss in plain PyTorch over transformers beside it and prints ratios).
//
//   bench_learner --model DIR [--device cuda:0] [--batch 64] [--prompt 256] [--completion 768] [--micro 8]
//                 [--steps 3] [--autocast] [--checkpointing]
// One train_step = forward + backward over the batch in micro-batches + one AdamW step.
// Without --autocast the model trains in its checkpoint dtype (bf16: as the PyTorch reference);
// with it the weights are loaded in float32 (master weights) and run under bf16 autocast.
// --checkpointing recomputes each decoder layer in backward (activation checkpointing).
// Prints one JSON line: {"step_s": ..., "completion_tokens_per_s": ..., "peak_bytes": ..., ...}.
#include <chrono>
#include <iostream>

#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"
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

void reset_peak() {
#ifdef AHA_WITH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
}

int64_t peak_bytes() {
#ifdef AHA_WITH_CUDA
  return c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].peak;
#else
  return -1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(
        std::vector<std::string>(argv + 1, argv + argc),
        aha::cli::Spec::of_names({"model", "device", "batch", "prompt", "completion", "micro", "steps", "autocast!", "checkpointing!"}),
        "bench_learner");
    const torch::Device device(args.get("device", "cuda:0"));
    const bool autocast = args.flag("autocast");
    const int64_t B = args.get_int("batch", 64), P = args.get_int("prompt", 256);
    const int64_t C = args.get_int("completion", 768), steps = args.get_int("steps", 3);
    const int64_t T = P + C;
    aha::LoadOptions load{device, autocast ? std::optional(torch::kFloat32) : std::nullopt};
    auto model = aha::load_model(args.required("model"), load);
    const auto config = model->config();

    aha::policy::TrainerOptions o;
    o.optimizer.lr = 1e-6;
    o.mini_batch_size = B;
    o.micro_batch_size = args.get_int("micro", 8);
    o.autocast_bf16 = autocast;
    o.activation_checkpointing = args.flag("checkpointing");
    aha::policy::GrpoTrainer trainer(std::move(model), o);

    torch::manual_seed(0);
    aha::policy::PolicyBatch batch;
    auto on = torch::TensorOptions().device(device);
    batch.input_ids = torch::randint(0, config.vocab_size, {B, T}, on.dtype(torch::kInt64));
    batch.attention_mask = torch::ones({B, T}, on.dtype(torch::kInt64));
    batch.completion_mask = torch::zeros({B, T - 1}, on.dtype(torch::kFloat32));
    batch.completion_mask.narrow(1, P - 1, C).fill_(1);
    batch.advantages = torch::randn({B}, on);
    {  // behaviour log-probs from the policy itself, so ratios start at 1 as in a real step
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < B; i += o.micro_batch_size)
        parts.push_back(
            trainer.policy().token_logprobs(batch.input_ids.narrow(0, i, o.micro_batch_size),
                                            batch.attention_mask.narrow(0, i, o.micro_batch_size)));
      batch.old_logprobs = torch::cat(parts);
    }
    trainer.train_step(batch);  // warm-up: allocator, optimizer state
    cuda_sync();
    reset_peak();
    auto start = std::chrono::steady_clock::now();
    aha::policy::TrainStepMetrics m;
    for (int64_t i = 0; i < steps; ++i) m = trainer.train_step(batch);
    cuda_sync();
    const double step_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
    std::cout << "{\"step_s\": " << step_s << ", \"completion_tokens_per_s\": " << B * C / step_s
              << ", \"peak_bytes\": " << peak_bytes() << ", \"parameters\": " << config.parameter_count()
              << ", \"loss\": " << m.loss << ", \"skipped\": " << m.skipped_steps << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_learner: " << e.what() << "\n";
    return 1;
  }
}
