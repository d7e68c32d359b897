// Benchmark: one whole GRPO step in aha (issue #19), split into rollout / reward / learn, on a
// workload with long-tailed completion lengths; the C++ side of tools/bench/grpo_step_vs_trl.py,
// which runs TRL's GRPOTrainer on the same workload (written by --workload-out) beside it.
//
//   bench_grpo_step --model DIR [--prompts 32] [--group 16] [--prompt-len 128] [--prompt-spread 32]
//                   [--median 256] [--sigma 0.9] [--new 2048] [--seed 0] [--device cuda]
//                   [--rows 0 (all)] [--micro-tokens 16384 | --micro 0] [--autocast] [--no-graphs]
//                   [--warmup 1] [--steps 2] [--workload-out FILE] [--workload-only]
// Workload, drawn exactly as bench_rollout_longtail draws it (the same std::mt19937_64 stream,
// seeded with --seed: prompts first, then the lengths): --prompts prompts of token ids uniform
// over the vocabulary (an id that is one of the model's EOS ids is moved to the next id that is
// not, so that a tokenizer cannot end a prompt early), lengths uniform in
// [prompt-len - spread, prompt-len + spread]; --group completions each, of log-normal lengths
// round(median * exp(sigma * z)), z standard normal, clamped to [1, --new] (defaults: mean about
// 375 tokens, 90th percentile about 810, about 1% at the cap of 2048). A random model never
// stops by itself, so each completion is forced to its drawn length
// (RolloutRequest::max_new_tokens_each, EOS ignored). --workload-out writes the workload as JSON
// ({"vocab", "eos_id", "group", "cap", "median", "sigma", "seed", "prompts": [[ids]],
// "lengths": [N*G, prompt-major]}) atomically; --workload-only stops there (no model is loaded:
// the vocabulary and EOS ids come from DIR/config.json).
//
// Every completion is checked to be its drawn length (else the run stops with an error).
// One step, as the GRPO stage runs it (recipes/runner/grpo_stage.cpp), timed in three parts:
//   rollout  RolloutEngine::generate over all N x G completions at temperature 1 (continuous
//            batching with --rows > 0 rows; all rows at once with 0), behaviour log-probs kept
//   reward   a trivial rule reward per completion (the fraction of its tokens with an even id;
//            the Python side scores the same rule), GRPO advantages per group
//            (policy/learner/advantages.h), the learner's batch (recipes/runner/batch_builder.h)
//   learn    GrpoTrainer::train_step: beta 0, one optimizer step over the whole batch (AdamW,
//            lr 1e-6, grad-norm clip 1), micro-batches packed to --micro-tokens token slots
//            (or --micro rows each, padded, with --micro > 0)
// The engine reads the trainer's live weights (as the GRPO stage does without ZeRO-3). Without
// --autocast the weights train in the checkpoint's dtype (bf16, as TRL with a bf16 model);
// with it they are float32 masters under bf16 autocast (the GPU recipes' mode), and the engine
// decodes from them. --warmup steps run first (CUDA graphs, allocator, optimizer state), then
// --steps timed ones; each step synchronises the device at its ends.
// Prints one JSON line per step ({"step", "warmup", "step_s", "rollout_s", "reward_s",
// "learn_s", "generated_tokens", ...}) and a last one with the means over the timed steps.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/advantages.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"
#include "recipes/runner/batch_builder.h"
#include "rollout/rollout_engine.h"
#include "tools/cli.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

// Waits for the device's queued work, so that a timer read after it counts that work.
void sync(const torch::Device& device) {
#ifdef AHA_WITH_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Workload {
  std::vector<std::vector<int64_t>> prompts;
  std::vector<int64_t> lengths;  // N * G, prompt-major
};

bool is_eos(int64_t id, const std::vector<int64_t>& eos) { return std::find(eos.begin(), eos.end(), id) != eos.end(); }

// The draws of bench_rollout_longtail.cpp, in its order, with EOS ids moved off (see above).
Workload draw_workload(int64_t N, int64_t G, int64_t prompt_len, int64_t spread, double median, double sigma,
                       int64_t cap, uint64_t seed, int64_t vocab, const std::vector<int64_t>& eos) {
  aha::require(static_cast<int64_t>(eos.size()) < vocab, "the vocabulary has no id that is not an EOS id");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(0, vocab - 1), length(prompt_len - spread, prompt_len + spread);
  Workload w;
  for (int64_t i = 0; i < N; ++i) {
    std::vector<int64_t> prompt(length(rng));
    for (auto& id : prompt) {
      id = token(rng);
      while (is_eos(id, eos)) id = (id + 1) % vocab;
    }
    w.prompts.push_back(std::move(prompt));
  }
  std::normal_distribution<double> z;
  for (int64_t k = 0; k < N * G; ++k) {
    const double l = std::round(median * std::exp(sigma * z(rng)));
    w.lengths.push_back(static_cast<int64_t>(std::clamp(l, 1.0, double(cap))));
  }
  return w;
}

void write_workload(const std::filesystem::path& path, const Workload& w, int64_t vocab, int64_t eos_id, int64_t G,
                    int64_t cap, double median, double sigma, uint64_t seed) {
  std::ostringstream s;
  s << "{\"vocab\": " << vocab << ", \"eos_id\": " << eos_id << ", \"group\": " << G << ", \"cap\": " << cap
    << ", \"median\": " << median << ", \"sigma\": " << sigma << ", \"seed\": " << seed << ", \"prompts\": [";
  for (size_t i = 0; i < w.prompts.size(); ++i) {
    s << (i ? ", [" : "[");
    for (size_t j = 0; j < w.prompts[i].size(); ++j) s << (j ? ", " : "") << w.prompts[i][j];
    s << "]";
  }
  s << "], \"lengths\": [";
  for (size_t k = 0; k < w.lengths.size(); ++k) s << (k ? ", " : "") << w.lengths[k];
  s << "]}\n";
  aha::write_file_atomic(path, s.str());
}

// The rule reward both sides score: the fraction of the completion's tokens with an even id.
float even_token_fraction(const std::vector<int64_t>& tokens) {
  if (tokens.empty()) return 0.0f;
  int64_t even = 0;
  for (int64_t id : tokens) even += (id % 2 == 0);
  return static_cast<float>(double(even) / double(tokens.size()));
}

struct StepTimes {
  double step = 0, rollout = 0, reward = 0, learn = 0;
  int64_t generated = 0;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                        aha::cli::Spec::of_names({"model", "prompts", "group", "prompt-len", "prompt-spread", "median",
                                                  "sigma", "new", "seed", "device", "rows", "micro-tokens", "micro",
                                                  "autocast!", "no-graphs!", "warmup", "steps", "workload-out",
                                                  "workload-only!"}),
                        "bench_grpo_step");
    const std::filesystem::path model_dir = args.required("model");
    const int64_t N = args.get_int("prompts", 32, 1), G = args.get_int("group", 16, 1);
    const int64_t prompt_len = args.get_int("prompt-len", 128, 1), spread = args.get_int("prompt-spread", 32, 0);
    aha::require(spread < prompt_len, "--prompt-spread must be below --prompt-len");
    const int64_t cap = args.get_int("new", 2048, 1);
    const double median = args.get_double("median", 256), sigma = args.get_double("sigma", 0.9);
    aha::require(median >= 1 && sigma >= 0, "--median must be >= 1 and --sigma >= 0");
    const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
    const int64_t warmup = args.get_int("warmup", 1, 0), steps = args.get_int("steps", 2, 1);

    const auto config = aha::ModelConfig::from_file(model_dir / "config.json");
    aha::require(!config.eos_token_ids.empty(), (model_dir / "config.json").string() + ": no eos_token_id");
    const auto work = draw_workload(N, G, prompt_len, spread, median, sigma, cap, seed, config.vocab_size,
                                    config.eos_token_ids);
    int64_t drawn = 0, longest = 0;
    for (int64_t l : work.lengths) drawn += l, longest = std::max(longest, l);
    std::cerr << "workload: " << N << " prompts x G " << G << ", " << drawn << " completion tokens (mean "
              << double(drawn) / double(N * G) << ", longest " << longest << ", cap " << cap << ")\n";
    if (auto out = args.get("workload-out"))
      write_workload(*out, work, config.vocab_size, config.eos_token_ids.front(), G, cap, median, sigma, seed);
    if (args.flag("workload-only")) return 0;

    const torch::Device device(args.get("device", "cuda"));
    const bool autocast = args.flag("autocast");
    aha::LoadOptions load{device, autocast ? std::optional(torch::kFloat32) : std::nullopt};
    aha::policy::TrainerOptions o;
    o.optimizer.lr = 1e-6;
    o.optimizer.max_grad_norm = 1.0;
    o.loss.beta = 0.0;
    o.mini_batch_size = 0;  // the whole batch: one optimizer step
    const int64_t micro = args.get_int("micro", 0, 0);
    if (micro > 0)
      o.micro_batch_size = micro;
    else
      o.micro_batch_tokens = args.get_int("micro-tokens", 16384, 1);
    o.autocast_bf16 = autocast;
    aha::policy::GrpoTrainer trainer(aha::load_model(model_dir, load), o);

    aha::EngineOptions engine_options;
    engine_options.use_cuda_graphs = !args.flag("no-graphs");
    engine_options.max_rows = args.get_int("rows", 0, 0);
    aha::RolloutEngine engine(trainer.policy(), engine_options);
    const int64_t pad_id = config.eos_token_ids.front();

    aha::RolloutRequest request;
    request.prompts = work.prompts;
    request.group_size = G;
    request.settings.sampler.temperature = 1.0;
    request.settings.stop.max_new_tokens = cap;
    request.settings.stop.ignore_eos = true;
    request.max_new_tokens_each = work.lengths;

    StepTimes total;
    for (int64_t step = 0; step < warmup + steps; ++step) {
      StepTimes t;
      sync(device);
      const auto start = Clock::now();
      request.settings.seed = seed + static_cast<uint64_t>(step);
      auto rollout = engine.generate(request);
      t.rollout = seconds_since(start);
      t.generated = rollout.stats.generated_tokens;

      const auto t_reward = Clock::now();
      std::vector<float> rewards;
      std::vector<aha::recipes::BatchRow> rows;
      for (const auto& c : rollout.completions) {
        const auto drawn_length = work.lengths[static_cast<size_t>(c.prompt_index * G + c.sample_index)];
        aha::require(static_cast<int64_t>(c.tokens.size()) == drawn_length,
                     "a completion of " + std::to_string(c.tokens.size()) + " tokens where " +
                         std::to_string(drawn_length) + " were forced");
        rewards.push_back(even_token_fraction(c.tokens));
      }
      for (size_t k = 0; k < rollout.completions.size(); ++k) {
        const auto& c = rollout.completions[k];
        const auto& prompt = request.prompts[static_cast<size_t>(c.prompt_index)];
        rows.push_back({&prompt, &c.tokens, &c.logprobs, 0.0f, rewards[k]});
      }
      auto batch = aha::recipes::build_policy_batch(rows, pad_id);
      batch.advantages = aha::policy::compute_advantages(torch::tensor(rewards), G, aha::policy::AdvantageOptions{})
                             .to(torch::kFloat32)
                             .contiguous();
      batch.rewards = torch::tensor(rewards);
      t.reward = seconds_since(t_reward);

      const auto t_learn = Clock::now();
      const auto m = trainer.train_step(batch);
      sync(device);
      t.learn = seconds_since(t_learn);
      t.step = seconds_since(start);
      const bool is_warmup = step < warmup;
      std::cout << "{\"step\": " << step << ", \"warmup\": " << (is_warmup ? "true" : "false")
                << ", \"step_s\": " << t.step << ", \"rollout_s\": " << t.rollout << ", \"reward_s\": " << t.reward
                << ", \"learn_s\": " << t.learn << ", \"generated_tokens\": " << t.generated
                << ", \"prefill_s\": " << rollout.stats.prefill_seconds
                << ", \"decode_s\": " << rollout.stats.decode_seconds << ", \"loss\": " << m.loss
                << ", \"optimizer_steps\": " << m.optimizer_steps << ", \"skipped\": " << m.skipped_steps << "}"
                << std::endl;
      if (is_warmup) continue;
      total.step += t.step, total.rollout += t.rollout, total.reward += t.reward, total.learn += t.learn;
      total.generated += t.generated;
    }
    const double n = double(steps);
    std::cout << "{\"mean\": true, \"steps\": " << steps << ", \"step_s\": " << total.step / n
              << ", \"rollout_s\": " << total.rollout / n << ", \"reward_s\": " << total.reward / n
              << ", \"learn_s\": " << total.learn / n << ", \"generated_tokens\": " << total.generated / steps
              << ", \"completion_tokens_per_s\": " << double(total.generated) / total.step
              << ", \"autocast\": " << (autocast ? "true" : "false") << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_grpo_step: " << e.what() << "\n";
    return 1;
  }
}
