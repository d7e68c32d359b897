// Benchmark: learner throughput of GrpoTrainer (the C++ side of tools/bench/learner_throughput.py,
// which runs the same loss in plain PyTorch over transformers beside it and prints ratios).
//
//   bench_learner --model DIR [--device cuda:0] [--batch 64] [--prompt 256] [--completion 768] [--micro 8]
//                 [--steps 3] [--autocast] [--checkpointing] [--profile]
// One train_step = forward + backward over the batch in micro-batches + one AdamW step.
// Without --autocast the model trains in its checkpoint dtype (bf16: as the PyTorch reference);
// with it the weights are loaded in float32 (master weights) and run under bf16 autocast.
// --checkpointing recomputes each decoder layer in backward (activation checkpointing).
// Prints one JSON line: {"step_s": ..., "completion_tokens_per_s": ..., "peak_bytes": ..., ...}.
//
// Long-tailed lengths, padded against packed micro-batches (issue #19), side by side in one run:
//   bench_learner --model DIR --longtail [--device cuda:0] [--batch 64] [--prompt 256]
//                 [--completion 2048] [--median 256] [--sigma 0.9] [--seed 0] [--micro 8]
//                 [--micro-tokens 16384] [--steps 3] [--peak-tflops 989]
//                 [--configs bf16-padded,bf16-packed,autocast-padded,autocast-packed,master-packed]
//                 [--workload-out FILE]
// Workload: --batch sequences; prompt lengths uniform in [prompt * 3/4, prompt], left-padded to
// --prompt; completion lengths log-normal, round(median * exp(sigma * z)) with z standard normal
// (std::mt19937_64 seeded with --seed), clamped to [1, --completion]: with the defaults the mean
// is about 375 tokens, the median 256, the 90th percentile about 810, and about 1% run to the cap
// of 2048. The padded batch is as wide as the rollout makes it: --prompt + the longest drawn
// completion. Configurations, each its own trainer over a fresh copy of the weights of the bf16
// checkpoint --model: bf16 (the weights as they are), autocast (loaded as float32 weights, under
// bf16 autocast: algorithm.autocast_bf16) and master (bf16 weights with float32 master weights in
// the optimizer: algorithm.fp32_master_weights), each padded (--micro rows per micro-batch) and
// packed (--micro-tokens token slots per micro-batch, algorithm.micro_batch_tokens); the default
// runs all but master-padded. One step = forward + backward over
// the whole batch + one AdamW step. MFU counts the real tokens only (the same FLOPs for padded
// and packed): 6 x parameters x tokens, the LM head's on completion tokens only (what the loss
// scores) and no untied input embedding (a lookup), + 6 x layers x q_size x L^2 per sequence
// (causal attention forward and backward), against --peak-tflops (H100/H200 dense bf16: 989).
// "mfu_every_parameter_every_token" is the earlier count: every active parameter on every token.
// Prints one JSON line per configuration, then one with the ratios packed / padded (tokens/s)
// and autocast / bf16 and master / bf16 (packed), the targets: packed MFU >= 50%, float32
// master weights within 10% of bf16.
// MFU counts the active parameters (for a mixture of experts, the routed top-k experts only).
// --configs runs a subset; --workload-out writes the batch (token ids, lengths, advantages) as JSON
// so that learner_throughput.py --longtail runs transformers on the very same sequences.
// --profile (either mode) runs one more step under the Kineto profiler after the timed ones and
// prints to stderr the GPU's busy share of it and its costliest kernels (kernel_profile.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

#include "core/files.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"
#include "tools/bench/kernel_profile.h"
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

struct LongTail {
  aha::policy::PolicyBatch batch;  // on the CPU; old_logprobs filled per model
  int64_t real_tokens = 0, completion_tokens = 0;
  double attention_units = 0;  // sum over sequences of L^2
};

LongTail longtail_batch(int64_t B, int64_t P, int64_t C, double median, double sigma, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int64_t> prompt_len(P - P / 4, P);
  std::vector<int64_t> prompts(B), completions(B);
  int64_t longest = 1;
  for (int64_t i = 0; i < B; ++i) {
    prompts[i] = prompt_len(rng);
    const double drawn = std::round(median * std::exp(sigma * normal(rng)));
    completions[i] = std::clamp<int64_t>(static_cast<int64_t>(drawn), 1, C);
    longest = std::max(longest, completions[i]);
  }
  const int64_t T = P + longest;
  LongTail w;
  torch::manual_seed(static_cast<int64_t>(seed));
  auto& b = w.batch;
  b.input_ids = torch::randint(0, vocab, {B, T}, torch::kInt64);
  b.attention_mask = torch::zeros({B, T}, torch::kInt64);
  b.completion_mask = torch::zeros({B, T - 1}, torch::kFloat32);
  for (int64_t i = 0; i < B; ++i) {
    b.attention_mask[i].narrow(0, P - prompts[i], prompts[i] + completions[i]).fill_(1);
    b.completion_mask[i].narrow(0, P - 1, completions[i]).fill_(1);
    const double L = double(prompts[i] + completions[i]);
    w.real_tokens += prompts[i] + completions[i];
    w.completion_tokens += completions[i];
    w.attention_units += L * L;
  }
  b.input_ids.mul_(b.attention_mask);  // padding is token 0
  b.advantages = torch::randn({B});
  return w;
}

// The batch as JSON for the Python side: rows of token ids, the left padding (prompt offset) and
// completion length per row, the prompt width and the advantages.
void write_workload(const LongTail& w, int64_t P, const std::string& path) {
  const auto ids = w.batch.input_ids.contiguous();
  const auto mask = w.batch.attention_mask.contiguous();
  const auto cmask = w.batch.completion_mask.contiguous();
  const int64_t B = ids.size(0), T = ids.size(1);
  std::ostringstream o;
  o << "{\"prompt_width\": " << P << ", \"rows\": [";
  for (int64_t i = 0; i < B; ++i) {
    const int64_t real = mask[i].sum().item<int64_t>();
    const int64_t completion = cmask[i].sum().item<int64_t>();
    o << (i ? ", " : "") << "{\"start\": " << P - (real - completion) << ", \"completion\": " << completion
      << ", \"advantage\": " << w.batch.advantages[i].item<double>() << ", \"ids\": [";
    const auto* row = ids[i].data_ptr<int64_t>();
    for (int64_t t = 0; t < T; ++t) o << (t ? "," : "") << row[t];
    o << "]}";
  }
  o << "]}\n";
  aha::write_file_atomic(path, o.str());
}

// How the long-tailed comparison's learner keeps its weights: as loaded (bf16), float32 under bf16
// autocast, or bf16 with float32 masters in the optimizer.
enum class Precision { bf16, autocast, master };

// One configuration of the long-tailed comparison; prints its JSON line, returns tokens/s.
double run_longtail(const std::string& name, const std::string& model_dir, Precision precision, bool packed,
                    const LongTail& work, const aha::cli::Args& args, const torch::Device device, double peak_flops) {
  const bool autocast = precision == Precision::autocast;
  aha::LoadOptions load{device, autocast ? std::optional(torch::kFloat32) : std::nullopt};
  auto model = aha::load_model(model_dir, load);
  const auto config = model->config();
  aha::policy::TrainerOptions o;
  o.optimizer.lr = 1e-6;
  o.mini_batch_size = work.batch.size();
  if (packed)
    o.micro_batch_tokens = args.get_int("micro-tokens", 16384);
  else
    o.micro_batch_size = args.get_int("micro", 8);
  o.autocast_bf16 = autocast;
  o.optimizer.fp32_master = precision == Precision::master;
  aha::policy::GrpoTrainer trainer(std::move(model), o);
  auto batch = work.batch;
  // Behaviour log-probs from the policy itself through the trainer's own layout (packed or
  // padded, the same kernels as its training forward), so ratios start at exactly 1 and the
  // first step's loss is the closed form that learner_throughput.py checks.
  batch.old_logprobs = trainer.policy_logprobs(batch).cpu();
  // Warm-up (allocator, optimizer state); its loss is at ratio 1, before any update: the value
  // both sides of learner_throughput.py must share.
  const double first_loss = trainer.train_step(batch).loss;
  cuda_sync();
  reset_peak();
  const int64_t steps = args.get_int("steps", 3);
  auto start = std::chrono::steady_clock::now();
  aha::policy::TrainStepMetrics m;
  for (int64_t i = 0; i < steps; ++i) m = trainer.train_step(batch);
  cuda_sync();
  const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  if (args.flag("profile"))
    aha::bench::print_kernel_profile(name + " step", [&] { trainer.train_step(batch), cuda_sync(); }, std::cerr);
  // Model FLOPs of the step's products. The LM head scores the completion tokens only (a prompt
  // token's prediction is never read), and an untied input embedding is a lookup, not a product.
  const double head = double(config.vocab_size) * double(config.hidden_size);
  const double body = double(config.active_parameter_count()) - head - (config.tie_word_embeddings ? 0.0 : head);
  const double attention = 6.0 * double(config.num_hidden_layers) * double(config.q_size()) * work.attention_units;
  const double flops = 6.0 * body * double(work.real_tokens) + 6.0 * head * double(work.completion_tokens) + attention;
  // The earlier figure of record counted every active parameter (the head, and an untied
  // embedding) on every real token; printed beside it so the two series can be compared.
  const double flops_every_token = 6.0 * double(config.active_parameter_count()) * double(work.real_tokens) + attention;
  const double tokens_per_s = double(work.real_tokens) / step_s;
  std::cout << "{\"config\": \"" << name << "\", \"step_s\": " << step_s << ", \"tokens_per_s\": " << tokens_per_s
            << ", \"completion_tokens_per_s\": " << double(work.completion_tokens) / step_s
            << ", \"mfu\": " << flops / step_s / peak_flops
            << ", \"mfu_every_parameter_every_token\": " << flops_every_token / step_s / peak_flops
            << ", \"peak_bytes\": " << peak_bytes()
            << ", \"loss\": " << m.loss << ", \"first_loss\": " << first_loss << ", \"skipped\": " << m.skipped_steps
            << "}" << std::endl;
  return tokens_per_s;
}

int longtail_main(const aha::cli::Args& args) {
  const torch::Device device(args.get("device", "cuda:0"));
  const int64_t B = args.get_int("batch", 64), P = args.get_int("prompt", 256), C = args.get_int("completion", 2048);
  const double median = args.get_double("median", 256), sigma = args.get_double("sigma", 0.9);
  const double peak_flops = args.get_double("peak-tflops", 989) * 1e12;
  const auto bf16_dir = args.required("model"), fp32_dir = bf16_dir;
  const auto vocab = aha::ModelConfig::from_file(std::filesystem::path(bf16_dir) / "config.json").vocab_size;
  const auto work = longtail_batch(B, P, C, median, sigma, static_cast<uint64_t>(args.get_int("seed", 0)), vocab);
  std::cout << "{\"workload\": \"longtail\", \"sequences\": " << B << ", \"real_tokens\": " << work.real_tokens
            << ", \"completion_tokens\": " << work.completion_tokens
            << ", \"padded_slots\": " << work.batch.input_ids.numel() << ", \"median\": " << median
            << ", \"sigma\": " << sigma << ", \"cap\": " << C << "}" << std::endl;
  if (const auto path = args.get("workload-out")) write_workload(work, P, *path);
  const auto configs = aha::cli::parse_name_list(
      args.get("configs", "bf16-padded,bf16-packed,autocast-padded,autocast-packed,master-packed"), "configs",
      {"bf16-padded", "bf16-packed", "autocast-padded", "autocast-packed", "master-padded", "master-packed"});
  auto run = [&](const std::string& name, Precision precision, bool packed) {
    if (!configs.count(name)) return 0.0;
    std::string label = name;
    std::replace(label.begin(), label.end(), '-', ' ');
    return run_longtail(label, bf16_dir, precision, packed, work, args, device, peak_flops);
  };
  const double bf16_padded = run("bf16-padded", Precision::bf16, false);
  const double bf16_packed = run("bf16-packed", Precision::bf16, true);
  const double auto_padded = run("autocast-padded", Precision::autocast, false);
  const double auto_packed = run("autocast-packed", Precision::autocast, true);
  run("master-padded", Precision::master, false);
  const double master_packed = run("master-packed", Precision::master, true);
  auto ratio = [](double a, double b) { return a > 0 && b > 0 ? a / b : 0.0; };  // 0: not run
  std::cout << "{\"ratios\": true, \"bf16_packed_over_padded\": " << ratio(bf16_packed, bf16_padded)
            << ", \"autocast_packed_over_padded\": " << ratio(auto_packed, auto_padded)
            << ", \"packed_autocast_over_bf16\": " << ratio(auto_packed, bf16_packed)
            << ", \"packed_master_over_bf16\": " << ratio(master_packed, bf16_packed)
            << ", \"master_target_at_least\": 0.9}" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(
        std::vector<std::string>(argv + 1, argv + argc),
        aha::cli::Spec::of_names({"model", "device", "batch", "prompt", "completion", "micro", "steps", "autocast!",
                                  "checkpointing!", "longtail!", "median", "sigma", "seed",
                                  "micro-tokens", "peak-tflops", "configs", "workload-out", "profile!"}),
        "bench_learner");
    if (args.flag("longtail")) return longtail_main(args);
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
    if (args.flag("profile"))
      aha::bench::print_kernel_profile("step", [&] { trainer.train_step(batch), cuda_sync(); }, std::cerr);
    std::cout << "{\"step_s\": " << step_s << ", \"completion_tokens_per_s\": " << B * C / step_s
              << ", \"peak_bytes\": " << peak_bytes() << ", \"parameters\": " << config.parameter_count()
              << ", \"active_parameters\": " << config.active_parameter_count() << ", \"loss\": " << m.loss << ", \"skipped\": " << m.skipped_steps << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_learner: " << e.what() << "\n";
    return 1;
  }
}
