// Benchmark: model load time and prefill throughput of aha's transformer (the C++ side of
// tools/bench/model_load_prefill.py, which runs transformers beside it and prints ratios).
//
//   bench_model --model DIR [--device cuda] [--dtype bfloat16] [--batch 16] [--seq 1024]
//               [--loads 3] [--iters 10]
// Prints one JSON line: {"load_s": [...], "prefill_tokens_per_s": X, ...}.
#include <chrono>
#include <iostream>

#include "policy/model/model_io.h"
#include "tools/cli.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

void sync(torch::Device device) {
#ifdef AHA_WITH_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#endif
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                        aha::cli::Spec::of_names({"model", "device", "dtype", "batch", "seq", "loads", "iters"}), "bench_model");
    const std::string dir = args.required("model");
    const torch::Device device(args.get("device", "cuda"));
    const auto dtype = aha::parse_dtype(args.get("dtype", "bfloat16"));
    const int64_t batch = args.get_int("batch", 16), seq = args.get_int("seq", 1024);
    const int64_t loads = args.get_int("loads", 3), iters = args.get_int("iters", 10);
    torch::zeros({1}, torch::TensorOptions().device(device));  // context creation is not load time
    sync(device);

    std::vector<double> load_s;
    aha::LoadTimings timings;
    std::unique_ptr<aha::Transformer> model;
    for (int64_t i = 0; i < loads; ++i) {
      model.reset();
      sync(device);
      auto start = std::chrono::steady_clock::now();
      model = aha::load_model(dir, {device, dtype, &timings});
      sync(device);
      load_s.push_back(seconds_since(start));
    }

    c10::InferenceMode inference;
    torch::manual_seed(0);
    auto ids = torch::randint(0, model->config().vocab_size, {batch, seq},
                              torch::TensorOptions().dtype(torch::kInt64).device(device));
    auto prefill = [&] {
      // As in generation: hidden states for every token, logits for the last one only.
      auto hidden = model->hidden_states(ids);
      return model->logits(hidden.select(1, seq - 1));
    };
    for (int i = 0; i < 2; ++i) prefill();
    sync(device);
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) prefill();
    sync(device);
    const double per_iter = seconds_since(start) / iters;
    std::cout << "{\"load_s\": [";
    for (size_t i = 0; i < load_s.size(); ++i) std::cout << (i ? ", " : "") << load_s[i];
    std::cout << "], \"last_load\": {\"open_s\": " << timings.open << ", \"allocate_s\": " << timings.allocate
              << ", \"upload_s\": " << timings.upload << "}, \"prefill_s\": " << per_iter << ", \"prefill_tokens_per_s\": " << batch * seq / per_iter
              << ", \"parameters\": " << model->config().parameter_count() << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_model: " << e.what() << "\n";
    return 1;
  }
}
