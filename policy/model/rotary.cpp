#include "policy/model/rotary.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "policy/model/cuda_rope.h"
#endif

namespace aha {
namespace {

#ifdef AHA_WITH_CUDA
// Whether cuda_rope.h's kernel takes these operands: CUDA, one floating dtype for all three, a
// [B, heads, T, D] x with D even, tables that broadcast to it, every last dimension contiguous,
// and tables outside autograd (they are functions of the positions only).
bool rope_kernel_applies(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto type = x.scalar_type();
  if (!x.is_cuda() || x.dim() != 4 || x.size(3) % 2 != 0 || cos.dim() != 4 || sin.dim() != 4) return false;
  if (type != torch::kBFloat16 && type != torch::kHalf && type != torch::kFloat32) return false;
  if (cos.scalar_type() != type || sin.scalar_type() != type || !cos.is_cuda() || !sin.is_cuda()) return false;
  if (cos.requires_grad() || sin.requires_grad()) return false;
  for (int d = 0; d < 4; ++d)
    for (const auto* t : {&cos, &sin})
      if (t->size(d) != x.size(d) && t->size(d) != 1) return false;
  return x.stride(3) == 1 && cos.stride(3) == 1 && sin.stride(3) == 1;
}

// out = the rotation of `in` (forward) or its transpose (backward: the gradient), in one launch.
torch::Tensor rope_with_kernel(const torch::Tensor& in, const torch::Tensor& cos, const torch::Tensor& sin,
                               bool backward) {
  auto source = in.stride(3) == 1 ? in : in.contiguous();
  auto out = torch::empty_like(source);  // x's own layout when it is dense (the usual transpose)
  if (out.stride(3) != 1) out = torch::empty(source.sizes(), source.options());
  auto operand = [&](const torch::Tensor& t) {
    auto e = t.expand(source.sizes());
    return cuda::RopeOperand{e.data_ptr(), {e.stride(0), e.stride(1), e.stride(2)}};
  };
  const int64_t out_stride[3] = {out.stride(0), out.stride(1), out.stride(2)};
  const auto type = in.scalar_type() == torch::kBFloat16 ? cuda::RopeDtype::kBFloat16
                    : in.scalar_type() == torch::kHalf   ? cuda::RopeDtype::kFloat16
                                                         : cuda::RopeDtype::kFloat32;
  const char* error = cuda::launch_rope(type, operand(source), operand(cos), operand(sin), out.data_ptr(), out_stride,
                                        source.size(0), source.size(1), source.size(2), source.size(3), backward,
                                        c10::cuda::getCurrentCUDAStream(source.device().index()).stream());
  if (error) throw Error(std::string("rotary embedding kernel: ") + error);
  return out;
}

struct RopeFunction : torch::autograd::Function<RopeFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rope_with_kernel(x, cos, sin, /*backward=*/false);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad) {
    const auto saved = ctx->get_saved_variables();
    return {rope_with_kernel(grad[0], saved[0], saved[1], /*backward=*/true), torch::Tensor(), torch::Tensor()};
  }
};
#endif

}  // namespace

torch::Tensor rope_inv_freq(const ModelConfig& config, int64_t max_position, torch::Device device) {
  const int64_t dim = config.head_dim;
  const auto& s = config.rope_scaling;
  double base = config.rope_theta;
  if (s.type == "dynamic") {
    int64_t seq_len = max_position + 1;
    if (seq_len > config.max_position_embeddings) {
      base *= std::pow(s.factor * seq_len / config.max_position_embeddings - (s.factor - 1),
                       double(dim) / double(dim - 2));
    }
  }
  // transformers: 1 / base ** (arange(0, dim, 2, int64).float() / dim), in float32.
  auto exponents = torch::arange(0, dim, 2, torch::TensorOptions().dtype(torch::kInt64)).to(torch::kFloat32) / dim;
  auto inv_freq = 1.0 / torch::pow(torch::scalar_tensor(base, torch::kFloat32), exponents);
  if (s.type == "linear") {
    inv_freq = inv_freq / s.factor;
  } else if (s.type == "llama3") {
    const double old_len = double(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor;
    const double high_wavelen = old_len / s.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    // Long wavelengths are scaled down by factor, short ones kept, the band between blended.
    auto scaled = torch::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
    auto smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    auto blended = (1 - smooth) * scaled / s.factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv_freq = torch::where(medium, blended, scaled);
  } else if (s.type == "yarn") {
    // transformers' _compute_yarn_parameters: frequencies above the ramp kept (extrapolated),
    // below it divided by factor (interpolated), blended linearly in between.
    auto pos_freqs = torch::pow(torch::scalar_tensor(base, torch::kFloat32), exponents);
    auto extrapolation = 1.0 / pos_freqs;
    auto interpolation = 1.0 / (s.factor * pos_freqs);
    const double orig = double(s.original_max_position_embeddings);
    auto correction_dim = [&](double rotations) {
      return (double(dim) * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(base));
    };
    double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
    if (s.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;  // transformers: prevents a division by zero
    auto ramp = ((torch::arange(dim / 2, torch::TensorOptions().dtype(torch::kFloat32)) - low) / (high - low)).clamp(0, 1);
    auto extrapolation_factor = 1 - ramp;
    inv_freq = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return inv_freq.to(device);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                     torch::ScalarType dtype, double attention_factor) {
  // freqs[b, t, i] = positions[b, t] * inv_freq[i], then duplicated to the full head_dim.
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq.view({1, 1, -1});
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [B, 1, T, D]
  auto sin = emb.sin();
  auto cos = emb.cos();
  if (attention_factor != 1.0) {  // yarn: transformers scales both tables in float32
    sin = sin * attention_factor;
    cos = cos * attention_factor;
  }
  sin = sin.to(dtype);
  const int64_t half = sin.size(-1) / 2;
  // [-sin, sin] by halves: rotate_half(x) * sin == swap_halves(x) * signed_sin, exactly (a
  // negation is exact and commutes with rounding), with one kernel less per use.
  auto signed_sin = torch::cat({-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)}, -1);
  return {cos.to(dtype), signed_sin};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin) {
#ifdef AHA_WITH_CUDA
  if (rope_kernel_applies(x, cos, signed_sin)) return RopeFunction::apply(x, cos, signed_sin);
#endif
  return apply_rope_unfused(x, cos, signed_sin);
}

torch::Tensor apply_rope_unfused(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& signed_sin) {
  // transformers' x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1). The halves are
  // swapped by a flip of the [2, D/2] view; the products and the sum round as there.
  auto swapped = x.unflatten(-1, {2, x.size(-1) / 2}).flip(-2).flatten(-2);
  return x * cos + swapped * signed_sin;
}

}  // namespace aha
