// Decode kernels (policy/model/cuda_decode.h) against the LibTorch ops they replace, one at a time and
// as a whole decode step, on a random model of a given shape (default Qwen2.5-0.5B):
//   bench_decode_kernels [--config recipes/models/qwen2.5-0.5b.json] [--rows 512] [--context 384]
//                        [--span 512]
// Each figure is the time of one call inside a CUDA graph of 20 calls (launch overhead excluded,
// as in the graph-captured rollout), median of 7 replays. Prints one line per figure with the
// ratio LibTorch / kernel. CUDA builds only.
#include <iostream>

#ifdef AHA_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

#include "core/error.h"
#include "core/files.h"
#include "policy/model/cuda_decode.h"
#include "policy/model/cuda_decode_args.h"
#include "policy/model/model_io.h"
#include "policy/model/rotary.h"
#include "tools/cli.h"

namespace {

// Microseconds per call of fn, captured 20 times into one graph on a side stream.
double time_us(const std::function<void()>& fn) {
  auto stream = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard guard(stream);
  fn();
  torch::cuda::synchronize();
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  for (int i = 0; i < 20; ++i) fn();
  graph.capture_end();
  std::vector<double> times;
  for (int r = 0; r < 7; ++r) {
    torch::cuda::synchronize();
    auto t0 = std::chrono::steady_clock::now();
    graph.replay();
    torch::cuda::synchronize();
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 20);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void report(const char* what, double torch_us, double kernel_us) {
  std::printf("%-26s libtorch %8.1f us   kernel %8.1f us   ratio %.2fx\n", what, torch_us, kernel_us,
              torch_us / kernel_us);
}

void check(const char* failure) { aha::require(failure == nullptr, failure ? failure : ""); }

}  // namespace

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc), aha::cli::Spec::of_names({"config", "rows", "context", "span"}),
                        "bench_decode_kernels");
    aha::require(torch::cuda::is_available(), "bench_decode_kernels needs a CUDA device");
    auto config = aha::ModelConfig::from_json(aha::read_file(args.get("config", "recipes/models/qwen2.5-0.5b.json")),
                                              "--config");
    const int64_t B = args.get_int("rows", 512), context = args.get_int("context", 384);
    const int64_t span = args.get_int("span", 512), cap = span;
    aha::require(context < span, "--context must be below --span");
    const int64_t H = config.hidden_size, D = config.head_dim, nh = config.num_attention_heads;
    const int64_t kvh = config.num_key_value_heads, I = config.intermediate_size;
    torch::NoGradGuard no_grad;
    auto opt = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
    void* stream_of = nullptr;
    auto stream = [&] { return (stream_of = c10::cuda::getCurrentCUDAStream().stream()); };
    const auto bf16 = aha::cuda::Dtype::kBFloat16;

    // Attention: the cache full of context tokens, slot = context.
    auto q = torch::randn({B, nh, D}, opt);
    auto keys = torch::randn({B, kvh, cap, D}, opt), values = torch::randn({B, kvh, cap, D}, opt);
    auto key_mask = torch::zeros({B, cap}, opt.dtype(torch::kBool));
    key_mask.narrow(1, 0, context + 1).fill_(true);
    auto slot = torch::tensor({context}, opt.dtype(torch::kInt64));
    auto additive = torch::zeros({B, 1, 1, span}, opt).masked_fill_(key_mask.logical_not().view({B, 1, 1, span}),
                                                                     -INFINITY);
    auto out = torch::empty({B, nh, D}, opt);
    const double scale = 1.0 / std::sqrt(double(D));
    const double sdpa = time_us([&] {
      at::scaled_dot_product_attention(q.view({B, kvh, nh / kvh, D}), keys, values, additive, 0.0, false, scale);
    });
    auto a = aha::decode_attention_args(q, keys, values, key_mask, slot, span, out);
    const double mine = time_us([&] { check(aha::cuda::launch_decode_attention(bf16, a, stream())); });
    report("attention", sdpa, mine);
    const double bytes = 2.0 * B * kvh * (context + 1) * D * 2;
    std::printf("%-26s kernel reads %.0f MB of keys and values: %.2f TB/s (SDPA over the span: %.2f TB/s)\n", "",
                bytes / 1e6, bytes / mine / 1e6, 2.0 * B * kvh * span * D * 2 / sdpa / 1e6);
    // The same attention divided into 1-4 key ranges (one range is the call timed above);
    // "(chosen)" marks what decode_attention_splits picks for this batch.
    for (int splits = 1; splits <= 4; ++splits) {
      double us = mine;
      if (splits > 1) {
        auto partial_out = torch::empty({B * nh * splits * D}, opt.dtype(torch::kFloat32));
        auto partial_lse = torch::empty({B * nh * splits}, opt.dtype(torch::kFloat32));
        auto split = a;
        split.splits = splits;
        split.partial_out = partial_out.data_ptr<float>();
        split.partial_lse = partial_lse.data_ptr<float>();
        us = time_us([&] { check(aha::cuda::launch_decode_attention(bf16, split, stream())); });
      }
      std::printf("%-26s %d key range%s: %8.1f us, %.2f TB/s%s\n", "", splits, splits > 1 ? "s" : " ", us,
                  bytes / us / 1e6, splits == aha::cuda::decode_attention_splits(B, kvh, span) ? " (chosen)" : "");
    }

    // Residual add + RMSNorm.
    auto x = torch::randn({B, H}, opt), delta = torch::randn({B, H}, opt), weight = torch::randn({H}, opt);
    auto h = torch::empty_like(x);
    const double norm_ops = time_us([&] {
      auto y = x + delta;
      aha::rms_norm(y, weight, 1e-6);
    });
    const double norm_kernel = time_us([&] {
      check(aha::cuda::launch_add_rms_norm(bf16, x.data_ptr(), delta.data_ptr(), weight.data_ptr(), h.data_ptr(), B,
                                           H, 1e-6f, stream()));
    });
    report("add + RMSNorm", norm_ops, norm_kernel);

    // SiLU * up.
    auto gate_up = torch::randn({B, 2 * I}, opt);
    auto gated = torch::empty({B, I}, opt);
    const double silu_ops = time_us([&] { torch::silu(gate_up.narrow(1, 0, I)) * gate_up.narrow(1, I, I); });
    const double silu_kernel =
        time_us([&] { check(aha::cuda::launch_silu_mul(bf16, gate_up.data_ptr(), gated.data_ptr(), B, I, stream())); });
    report("SiLU * up", silu_ops, silu_kernel);

    // Rotary + cache write.
    auto qkv = torch::randn({B, (nh + 2 * kvh) * D}, opt);
    auto positions = torch::full({B, 1}, context, opt.dtype(torch::kInt64));
    auto [cos, sin] = aha::rope_cos_sin(aha::rope_inv_freq(config, context, torch::kCUDA), positions,
                                        torch::kBFloat16);
    const double rope_ops = time_us([&] {
      auto view = qkv.view({B, 1, nh + 2 * kvh, D}).transpose(1, 2);
      auto qk = aha::apply_rope(view.narrow(1, 0, nh + kvh), cos, sin);
      keys.index_copy_(2, slot, qk.narrow(1, nh, kvh));
      values.index_copy_(2, slot, view.narrow(1, nh + kvh, kvh));
    });
    const double rope_kernel = time_us([&] {
      check(aha::cuda::launch_rope_and_cache_write(bf16, qkv.data_ptr(), qkv.stride(0), cos.data_ptr(), sin.data_ptr(),
                                                   slot.data_ptr<int64_t>(), B, nh, kvh, D, q.data_ptr(),
                                                   keys.data_ptr(), values.data_ptr(), keys.stride(0), keys.stride(1),
                                                   stream()));
    });
    report("rotary + cache write", rope_ops, rope_kernel);

    // A whole decode step of the model (random weights), kernels off and on.
    auto model = aha::init_model(config, 1, torch::kBFloat16, torch::kCUDA);
    auto fused = model->fuse_projections();
    auto cache = aha::KVCache::allocate(config, B, cap, torch::kBFloat16, torch::kCUDA);
    auto ids = torch::randint(3, config.vocab_size, {B, 1}, opt.dtype(torch::kInt64));
    auto step = [&] { model->hidden_states_cached(ids, positions, slot, key_mask, cache, &fused); };
    model->set_decode_kernels(false);
    const double step_ops = time_us(step);
    model->set_decode_kernels(true);
    model->set_decode_attention_kernel(false);  // SDPA attention
    const double step_kernels = time_us(step);
    report("decode step (no LM head)", step_ops, step_kernels);
    model->set_decode_attention_kernel(true);
    const double step_attention = time_us(step);
    report("  + attention kernel (default)", step_ops, step_attention);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_decode_kernels: " << e.what() << "\n";
    return 1;
  }
}
#else
int main() {
  std::cerr << "bench_decode_kernels: this build has no CUDA\n";
  return 1;
}
#endif
