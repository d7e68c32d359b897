// Benchmark: whole-data-set rollout throughput with long-tailed completion lengths (issue #19),
// three ways in one run, on the same prompts:
//   continuous      the engine with EngineOptions::max_rows = --rows over the whole set (finished
//                   rows refilled with waiting groups; rows attend from their own first slot)
//   batch_by_batch  the old windowed way: one generate() per --rows / G prompts, each waiting for
//                   its longest completion (the same lengths)
//   fixed_length    the same windows with every completion at the workload's mean length (or
//                   --fixed-new): the engine's fixed-length steady state, the yardstick
//
//   bench_rollout_longtail --model DIR [--prompts 1024] [--prompt-len 128] [--prompt-spread 32]
//                          [--group 8] [--rows 512] [--median 256] [--sigma 0.9] [--new 2048]
//                          [--fixed-new 0 (the mean)] [--device cuda] [--dtype bfloat16] [--seed 0]
//                          [--refill-fraction 0.0625] [--no-graphs]
//                          [--modes continuous,batch_by_batch,fixed_length]  (a subset: the others print 0)
// Workload: --prompts random prompts (token ids uniform over the vocabulary, lengths uniform in
// [prompt-len - spread, prompt-len + spread], seeded), G = --group samples each. Completion
// lengths are log-normal: round(median * exp(sigma * z)), z standard normal (std::mt19937_64
// seeded with --seed), clamped to [1, --new]; with the defaults (median 256, sigma 0.9, cap
// 2048) the mean is about 375 tokens, the median 257, the 90th percentile 810, and 1% of
// completions run to the cap. The lengths are forced with
// RolloutRequest::max_new_tokens_each and EOS ignored, so each completion is exactly its drawn
// length in the first two modes. Sampling at temperature 1.
// "windows" > 1 in the continuous line means the engine fell back to windows because the
// refilling cache (prompt + 2 x --new slots per row) did not fit: lower --rows or --new.
// Warm-up runs (the first 2 * rows / G prompts continuously, then one fixed-length window)
// capture the CUDA graphs first (the engine is shared, so the later modes reuse the graphs the
// earlier ones captured). Wall time is measured around the generate() calls (prefill, decode,
// refills, host bookkeeping).
// Prints a table, then one JSON line per mode and one with the ratios:
//   continuous / fixed_length (issue #19 target >= 0.85), continuous / batch_by_batch.
// occupancy: kept tokens per computed row step (near 1: no row idle or finished in the batch;
// it can pass 1 because each completion's first token comes from the prefill);
// attended_per_row_step: the cache slots a row's attention covers per step, on average
// (RolloutStats::attended_slots / row_steps). events: refill events (the JSON line also has
// the groups refilled, "refills", and "refill_events"); prefills: prefill forward passes
// (RolloutStats::prefill_calls, first fills included); prefill_s: host time placing groups
// (a refill queues its prefill without waiting for the device: its device time is in decode).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include "core/error.h"
#include "policy/model/model_io.h"
#include "rollout/rollout_engine.h"
#include "tools/cli.h"

namespace {

struct Measured {
  std::string mode;
  double seconds = 0, prefill_seconds = 0, decode_seconds = 0;
  int64_t tokens = 0, decode_steps = 0, row_steps = 0, attended = 0, refills = 0, refill_events = 0,
          prefill_calls = 0, slot_shifts = 0, graphs = 0, windows = 0;
  void add(const aha::RolloutResult& r, double wall) {
    seconds += wall;
    prefill_seconds += r.stats.prefill_seconds;
    decode_seconds += r.stats.decode_seconds;
    tokens += r.stats.generated_tokens;
    decode_steps += r.stats.decode_steps;
    row_steps += r.stats.row_steps;
    attended += r.stats.attended_slots;
    refills += r.stats.refills;
    refill_events += r.stats.refill_events;
    prefill_calls += r.stats.prefill_calls;
    slot_shifts += r.stats.slot_shifts;
    windows += r.stats.windows;
    graphs = r.stats.graphs_captured;
  }
  double tokens_per_s() const { return seconds > 0 ? tokens / seconds : 0.0; }
  double occupancy() const { return row_steps ? double(tokens) / double(row_steps) : 0.0; }
  double attended_per_row_step() const { return row_steps ? double(attended) / double(row_steps) : 0.0; }
  void print_json() const {
    std::cout << "{\"mode\": \"" << mode << "\", \"tokens_per_s\": " << tokens_per_s() << ", \"wall_s\": " << seconds
              << ", \"prefill_s\": " << prefill_seconds << ", \"decode_s\": " << decode_seconds
              << ", \"generated_tokens\": " << tokens << ", \"decode_steps\": " << decode_steps
              << ", \"row_steps\": " << row_steps << ", \"occupancy\": " << occupancy()
              << ", \"attended_per_row_step\": " << attended_per_row_step() << ", \"windows\": " << windows
              << ", \"refills\": " << refills << ", \"refill_events\": " << refill_events
              << ", \"prefill_calls\": " << prefill_calls << ", \"slot_shifts\": " << slot_shifts << ", \"graphs\": " << graphs
              << "}" << std::endl;
  }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                        aha::cli::Spec::of_names({"model", "prompts", "prompt-len", "prompt-spread", "group", "rows",
                                                  "median", "sigma", "new", "fixed-new", "device", "dtype", "seed",
                                                  "refill-fraction", "no-graphs!", "modes"}),
                        "bench_rollout_longtail");
    const torch::Device device(args.get("device", "cuda"));
    auto model = aha::load_model(args.required("model"), {device, aha::parse_dtype(args.get("dtype", "bfloat16"))});
    const int64_t N = args.get_int("prompts", 1024, 1), G = args.get_int("group", 8, 1);
    const int64_t prompt_len = args.get_int("prompt-len", 128, 1), spread = args.get_int("prompt-spread", 32, 0);
    aha::require(spread < prompt_len, "--prompt-spread must be below --prompt-len");
    const int64_t rows = args.get_int("rows", 512, 1), cap = args.get_int("new", 2048, 1);
    const int64_t fixed_arg = args.get_int("fixed-new", 0, 0);  // 0: the drawn lengths' mean
    const double median = args.get_double("median", 256), sigma = args.get_double("sigma", 0.9);
    aha::require(median >= 1 && sigma >= 0, "--median must be >= 1 and --sigma >= 0");
    const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
    const auto modes = aha::cli::parse_name_list(args.get("modes", "continuous,batch_by_batch,fixed_length"), "modes",
                                                 {"continuous", "batch_by_batch", "fixed_length"});

    std::mt19937_64 rng(seed);
    const int64_t vocab = model->config().vocab_size;
    aha::RolloutRequest whole;
    whole.group_size = G;
    whole.settings.sampler.temperature = 1.0;
    whole.settings.stop.max_new_tokens = cap;
    whole.settings.stop.ignore_eos = true;
    whole.settings.seed = seed;
    std::uniform_int_distribution<int64_t> token(0, vocab - 1), length(prompt_len - spread, prompt_len + spread);
    for (int64_t i = 0; i < N; ++i) {
      std::vector<int64_t> prompt(length(rng));
      for (auto& id : prompt) id = token(rng);
      whole.prompts.push_back(std::move(prompt));
    }
    std::normal_distribution<double> z;
    int64_t drawn = 0;
    for (int64_t k = 0; k < N * G; ++k) {
      const double l = std::round(median * std::exp(sigma * z(rng)));
      whole.max_new_tokens_each.push_back(static_cast<int64_t>(std::clamp(l, 1.0, double(cap))));
      drawn += whole.max_new_tokens_each.back();
    }
    auto window = [&](int64_t first, int64_t count) {
      aha::RolloutRequest r = whole;
      r.prompts.assign(whole.prompts.begin() + first, whole.prompts.begin() + first + count);
      r.max_new_tokens_each.assign(whole.max_new_tokens_each.begin() + first * G,
                                   whole.max_new_tokens_each.begin() + (first + count) * G);
      r.first_prompt_index = first;
      return r;
    };

    aha::EngineOptions options;
    options.use_cuda_graphs = !args.flag("no-graphs");
    options.max_rows = rows;
    options.refill_fraction = args.get_double("refill-fraction", options.refill_fraction);
    aha::RolloutEngine engine(*model, options);
    const int64_t per_batch = std::max<int64_t>(1, rows / G);
    const int64_t mean = std::max<int64_t>(1, static_cast<int64_t>(std::llround(double(drawn) / double(N * G))));
    const int64_t fixed_new = fixed_arg > 0 ? fixed_arg : mean;
    aha::require(fixed_new <= cap, "--fixed-new must be at most --new");
    std::cerr << "workload: " << N << " prompts x G " << G << ", " << drawn << " completion tokens (mean "
              << double(drawn) / double(N * G) << ", cap " << cap << "), " << per_batch * G << " rows; fixed length "
              << fixed_new << "\n";
    // The fixed-length mode: the same prompts in the same windows, every completion fixed_new long.
    auto fixed_window = [&](int64_t first, int64_t count) {
      aha::RolloutRequest r = window(first, count);
      r.max_new_tokens_each.clear();
      r.settings.stop.max_new_tokens = fixed_new;
      return r;
    };
    {
      const auto t = std::chrono::steady_clock::now();
      engine.generate(window(0, std::min(N, 2 * per_batch)));
      engine.generate(fixed_window(0, std::min(N, per_batch)));
      std::cerr << "warm-up: " << seconds_since(t) << " s\n";
    }

    Measured continuous{"continuous"}, batches{"batch_by_batch"}, fixed{"fixed_length_" + std::to_string(fixed_new)};
    if (modes.count("continuous")) {
      const auto t = std::chrono::steady_clock::now();
      auto r = engine.generate(whole);
      continuous.add(r, seconds_since(t));
    }
    std::cerr << "continuous: " << continuous.seconds << " s\n";
    for (int64_t first = 0; modes.count("batch_by_batch") && first < N; first += per_batch) {
      const auto t = std::chrono::steady_clock::now();
      auto r = engine.generate(window(first, std::min(per_batch, N - first)));
      batches.add(r, seconds_since(t));
    }
    std::cerr << "batch by batch: " << batches.seconds << " s\n";
    for (int64_t first = 0; modes.count("fixed_length") && first < N; first += per_batch) {
      const auto t = std::chrono::steady_clock::now();
      auto r = engine.generate(fixed_window(first, std::min(per_batch, N - first)));
      fixed.add(r, seconds_since(t));
    }
    std::cerr << "fixed length: " << fixed.seconds << " s\n";

    std::printf("%-20s %12s %10s %10s %10s %10s %10s %8s %8s %14s\n", "mode", "tokens/s", "wall_s", "tokens",
                "occupancy", "attended", "prefill_s", "events", "prefills", "vs continuous");
    for (const auto* m : {&continuous, &batches, &fixed}) {
      std::printf("%-20s %12.0f %10.2f %10lld %10.3f %10.1f %10.3f %8lld %8lld %14.3f\n", m->mode.c_str(),
                  m->tokens_per_s(), m->seconds, static_cast<long long>(m->tokens), m->occupancy(),
                  m->attended_per_row_step(), m->prefill_seconds, static_cast<long long>(m->refill_events),
                  static_cast<long long>(m->prefill_calls),
                  m->tokens_per_s() > 0 ? continuous.tokens_per_s() / m->tokens_per_s() : 0.0);
    }
    std::fflush(stdout);
    for (const auto* m : {&continuous, &batches, &fixed}) m->print_json();
    auto ratio = [](double a, double b) { return a > 0 && b > 0 ? a / b : 0.0; };  // 0: a mode not run
    std::cout << "{\"continuous_vs_fixed\": " << ratio(continuous.tokens_per_s(), fixed.tokens_per_s())
              << ", \"continuous_vs_batch_by_batch\": " << ratio(continuous.tokens_per_s(), batches.tokens_per_s())
              << ", \"batch_by_batch_vs_fixed\": " << ratio(batches.tokens_per_s(), fixed.tokens_per_s())
              << ", \"fixed_new_tokens\": " << fixed_new << ", \"target_continuous_vs_fixed\": 0.85}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_rollout_longtail: " << e.what() << "\n";
    return 1;
  }
}
