#include "policy/model/moe.h"

#include <ATen/autocast_mode.h>
#include <ATen/ops/_grouped_mm.h>
#include <torch/autograd.h>

#ifdef AHA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include "core/error.h"
#include "policy/model/swiglu.h"

namespace aha {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// rows[i] = x[index[i]], whose backward gathers: grad_x = g[inverse].view(N, k, H).sum(1), where
// `inverse` lists, token by token, the k positions that read each row of x.
struct GatherRows : torch::autograd::Function<GatherRows> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& index,
                               const torch::Tensor& inverse, int64_t k) {
    ctx->save_for_backward({index, inverse});
    ctx->saved_data["k"] = k;
    ctx->saved_data["rows"] = x.size(0);
    return x.index_select(0, index);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    const auto saved = ctx->get_saved_variables();
    const int64_t k = ctx->saved_data["k"].toInt(), rows = ctx->saved_data["rows"].toInt();
    auto g = grad[0].index_select(0, saved[1]);
    if (k > 1) g = g.view({rows, k, g.size(1)}).sum(1);
    return {g, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// out[t] = sum over the k rows at positions inverse[t*k .. t*k+k) of `rows`; backward:
// grad_rows = g[index] (index: the token of each row).
struct SumRows : torch::autograd::Function<SumRows> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& rows, const torch::Tensor& inverse,
                               const torch::Tensor& index, int64_t k) {
    ctx->save_for_backward({index});
    const int64_t tokens = rows.size(0) / k;
    auto picked = rows.index_select(0, inverse);
    return k > 1 ? picked.view({tokens, k, picked.size(1)}).sum(1) : picked;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {grad[0].index_select(0, saved[0]), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

TokenPermutation TokenPermutation::of(const torch::Tensor& experts) {
  TokenPermutation p;
  p.k = experts.size(1);
  auto flat = experts.reshape({-1});
  p.order = std::get<1>(flat.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
  p.position_of = torch::empty_like(p.order).scatter_(0, p.order, torch::arange(p.order.size(0), p.order.options()));
  p.token_of = p.order.div(p.k, "floor");
  return p;
}

torch::Tensor TokenPermutation::dispatch(const torch::Tensor& x) const {
  return GatherRows::apply(x, token_of, position_of, k);
}

torch::Tensor TokenPermutation::combine(const torch::Tensor& rows) const {
  return SumRows::apply(rows, position_of, token_of, k);
}

bool grouped_experts_apply(torch::Device device, torch::ScalarType dtype, int64_t hidden, int64_t intermediate) {
#ifdef AHA_WITH_CUDA
  if (!device.is_cuda() || dtype != torch::kBFloat16 || hidden % 8 != 0 || intermediate % 8 != 0) return false;
  const auto* properties = at::cuda::getDeviceProperties(device.has_index() ? device.index() : at::cuda::current_device());
  return properties->major >= 9;
#else
  (void)device, (void)dtype, (void)hidden, (void)intermediate;
  return false;
#endif
}

torch::Tensor routed_experts(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                             const torch::Tensor& gate_up, const torch::Tensor& down, ExpertKernel kernel) {
  require(x.dim() == 2, "routed experts: x must be [N, H]");
  const int64_t N = x.size(0), H = x.size(1);
  require(experts.dim() == 2 && experts.size(0) == N && weights.sizes() == experts.sizes(),
          "routed experts: experts and weights must both be [N, k]");
  require(experts.scalar_type() == torch::kInt64, "routed experts: expert ids must be int64");
  require(gate_up.dim() == 3 && gate_up.size(2) == H && gate_up.size(1) % 2 == 0,
          "routed experts: gate_up must be [E, 2I, H]");
  const int64_t E = gate_up.size(0), I = gate_up.size(1) / 2, k = experts.size(1);
  require(down.dim() == 3 && down.size(0) == E && down.size(1) == H && down.size(2) == I,
          "routed experts: down must be [E, H, I]");
  if (N == 0 || k == 0) return torch::zeros_like(x);

  const auto permutation = TokenPermutation::of(experts);
  auto flat = experts.reshape({-1});            // [N*k]
  auto sorted_x = permutation.dispatch(x);      // [N*k, H]
  // Tokens per expert [E]. Not bincount: on CUDA it reads the largest id on the host, which a
  // CUDA graph cannot capture.
  auto counts = torch::zeros({E}, flat.options()).scatter_add_(0, flat, torch::ones_like(flat));

  // Under autocast (the learner's fp32 master weights), the experts' products run in the
  // autocast dtype as torch::linear's would: _grouped_mm has no autocast rule of its own, so
  // the casts are explicit here (autograd carries the gradients back to the fp32 weights).
  const auto device_type = x.device().type();
  const bool autocast = at::autocast::is_autocast_enabled(device_type);
  const auto compute_dtype = autocast ? at::autocast::get_autocast_dtype(device_type) : x.scalar_type();
  if (kernel == ExpertKernel::automatic) {
    kernel = grouped_experts_apply(x.device(), compute_dtype, H, I) ? ExpertKernel::grouped : ExpertKernel::loop;
  }
  torch::Tensor out;  // [N*k, H], row i the output of pair order[i]
  if (kernel == ExpertKernel::grouped) {
    auto offsets = counts.cumsum(0).to(torch::kInt32);  // end of each expert's slice
    auto in = sorted_x.to(compute_dtype);
    auto gate_up_w = gate_up.to(compute_dtype), down_w = down.to(compute_dtype);
    auto gate_up_out = at::_grouped_mm(in, gate_up_w.transpose(1, 2), offsets);  // [N*k, 2I]
    auto hidden = swiglu_concatenated(gate_up_out);
    out = at::_grouped_mm(hidden, down_w.transpose(1, 2), offsets);  // [N*k, H]
  } else {
    // The counts are read on the host: the slices' sizes decide the products' shapes.
    auto host_counts = counts.to(torch::kCPU);
    const auto* count = host_counts.data_ptr<int64_t>();
    std::vector<torch::Tensor> pieces;
    int64_t begin = 0;
    for (int64_t e = 0; e < E; ++e) {
      if (count[e] == 0) continue;
      auto rows = sorted_x.narrow(0, begin, count[e]);
      auto projected = torch::linear(rows, gate_up[e]);  // [n, 2I]
      auto hidden = swiglu_concatenated(projected);
      pieces.push_back(torch::linear(hidden, down[e]));  // [n, H]
      begin += count[e];
    }
    out = torch::cat(pieces);
  }
  // The product in the weights' precision, rounded to x's dtype once: Qwen3-MoE's weights are
  // x's dtype already; DeepSeek-V3's are float32, and transformers multiplies its bf16 expert
  // outputs by them in float32 before the cast.
  auto scale = weights.reshape({-1}).index_select(0, permutation.order).unsqueeze(1);  // [N*k, 1]
  return permutation.combine((out * scale).to(x.scalar_type()));
}

}  // namespace aha
