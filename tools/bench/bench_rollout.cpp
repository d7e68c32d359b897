// Benchmark: rollout throughput of aha's engine (the C++ side of
// tools/bench/rollout_throughput.py, which runs transformers' generate() beside it).
//
//   bench_rollout --model DIR --prompt-file ids.txt [--group 8] [--new 512] [--device cuda]
//                 [--dtype bfloat16] [--iters 2] [--temperature 1.0] [--no-graphs] [--no-fuse]
//                 [--span-bucket 128] [--no-fused-sampler] [--no-decode-kernels]
//                 [--sdpa-decode-attention]
// The prompt file has one prompt per line as comma-separated token ids. EOS is ignored, so
// every completion is exactly --new tokens. The first generate() call also captures the CUDA
// graphs; the figures are the best of the --iters calls after it. --no-fuse decodes with the
// separate projection weights (EngineOptions::fuse_projections off); --span-bucket sets
// EngineOptions::span_bucket; --no-fused-sampler samples with the ATen path
// (EngineOptions::fused_sampler off); --no-decode-kernels decodes with the LibTorch ops instead of
// the decode kernels (Transformer::set_decode_kernels(false)); --sdpa-decode-attention keeps the
// other decode kernels but attends with SDPA instead of the decode attention kernel
// (Transformer::set_decode_attention_kernel(false)). Prints one JSON line.
#include <algorithm>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "policy/model/model_io.h"
#include "rollout/rollout_engine.h"
#include "tools/cli.h"

namespace {

std::vector<std::vector<int64_t>> read_prompts(const std::string& path) {
  std::vector<std::vector<int64_t>> prompts;
  std::stringstream in(aha::read_file(path));
  std::string line, item;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<int64_t> ids;
    std::stringstream fields(line);
    while (std::getline(fields, item, ',')) ids.push_back(std::stoll(item));
    prompts.push_back(std::move(ids));
  }
  aha::require(!prompts.empty(), path + ": no prompts");
  return prompts;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                        aha::cli::Spec::of_names({"model", "prompt-file", "group", "new", "device", "dtype", "iters", "temperature", "no-graphs!",
                         "no-fuse!", "span-bucket", "no-fused-sampler!",
                         "no-decode-kernels!", "sdpa-decode-attention!"}),
                        "bench_rollout");
    const torch::Device device(args.get("device", "cuda"));
    auto model = aha::load_model(args.required("model"), {device, aha::parse_dtype(args.get("dtype", "bfloat16"))});
    model->set_decode_kernels(!args.flag("no-decode-kernels"));
    model->set_decode_attention_kernel(!args.flag("sdpa-decode-attention"));
    aha::RolloutRequest request;
    request.prompts = read_prompts(args.required("prompt-file"));
    request.group_size = args.get_int("group", 8);
    request.settings.sampler.temperature = args.get_double("temperature", 1.0);
    request.settings.stop.max_new_tokens = args.get_int("new", 512);
    request.settings.stop.ignore_eos = true;
    aha::EngineOptions options;
    options.use_cuda_graphs = !args.flag("no-graphs");
    options.fuse_projections = !args.flag("no-fuse");
    options.span_bucket = args.get_int("span-bucket", options.span_bucket);
    options.fused_sampler = !args.flag("no-fused-sampler");
    aha::RolloutEngine engine(*model, options);

    const int64_t iters = std::max<int64_t>(1, args.get_int("iters", 2));
    auto first = engine.generate(request);  // captures the graphs
    aha::RolloutStats best = first.stats;
    double best_total = 1e300;
    for (int64_t i = 0; i < iters; ++i) {
      request.settings.seed = static_cast<uint64_t>(i + 1);
      auto r = engine.generate(request);
      const double total = r.stats.prefill_seconds + r.stats.decode_seconds;
      if (total < best_total) {
        best_total = total;
        best = r.stats;
      }
    }
    const auto& c = model->config();
    const int64_t elem = static_cast<int64_t>(c10::elementSize(model->dtype()));
    int64_t prompt_tokens = 0, longest = 0;
    for (const auto& p : request.prompts) {
      prompt_tokens += static_cast<int64_t>(p.size());
      longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
    }
    const int64_t rows = static_cast<int64_t>(request.prompts.size()) * request.group_size;
    // Bytes a decode step must read at the least: every weight once, and each row's keys and
    // values of its context so far (on average the prompt plus half the new tokens).
    const double kv_per_token = double(c.num_hidden_layers) * 2 * c.num_key_value_heads * c.head_dim * elem;
    const double mean_context = double(prompt_tokens) / request.prompts.size() + request.settings.stop.max_new_tokens / 2.0;
    const double bytes_per_step = double(c.parameter_count()) * elem + rows * mean_context * kv_per_token;
    const double step_s = best.decode_seconds / std::max<int64_t>(1, best.decode_steps);
    std::cout << "{\"generated_tokens\": " << best.generated_tokens << ", \"rows\": " << rows
              << ", \"prompt_tokens\": " << longest << ", \"prefill_s\": " << best.prefill_seconds
              << ", \"decode_s\": " << best.decode_seconds << ", \"decode_steps\": " << best.decode_steps
              << ", \"tokens_per_s\": " << best.generated_tokens / best_total << ", \"step_s\": " << step_s
              << ", \"bytes_per_step\": " << bytes_per_step << ", \"achieved_bytes_per_s\": " << bytes_per_step / step_s
              << ", \"graphs\": " << best.graphs_captured << ", \"first_call_s\": "
              << first.stats.prefill_seconds + first.stats.decode_seconds << ", \"parameters\": " << c.parameter_count()
              << ", \"memory_plan\": \"" << first.memory.describe() << "\"}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_rollout: " << e.what() << "\n";
    return 1;
  }
}
