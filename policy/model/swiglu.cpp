#include "policy/model/swiglu.h"

#include <torch/autograd.h>

#include <string>

#include "core/error.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "policy/model/cuda_swiglu.h"
#endif

namespace aha {
namespace {

#ifdef AHA_WITH_CUDA
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

bool kernel_applies(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return t.is_cuda() && t.dim() >= 1 && t.is_contiguous() &&
         (type == torch::kBFloat16 || type == torch::kHalf || type == torch::kFloat32);
}

cuda::SwigluDtype dtype_of(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? cuda::SwigluDtype::kBFloat16
         : t.scalar_type() == torch::kHalf   ? cuda::SwigluDtype::kFloat16
                                             : cuda::SwigluDtype::kFloat32;
}

// A [rows, I] window into t: I columns from `column`, rows t.size(-1) elements apart.
cuda::SwigluOperand window(const torch::Tensor& t, int64_t column) {
  return {static_cast<char*>(t.data_ptr()) + column * t.element_size(), t.size(-1)};
}

void check(const char* error) {
  if (error) throw Error(std::string("SiLU-gated product kernel: ") + error);
}

void* stream_of(const torch::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

// gate and up are the windows [0, I) and [up_column, up_column + I) of their tensors.
torch::Tensor forward_kernel(const torch::Tensor& gate, int64_t gate_column, const torch::Tensor& up,
                             int64_t up_column, int64_t I) {
  auto sizes = gate.sizes().vec();
  sizes.back() = I;
  auto out = torch::empty(sizes, gate.options());
  const int64_t rows = out.numel() / std::max<int64_t>(I, 1);
  check(cuda::launch_swiglu_forward(dtype_of(gate), window(gate, gate_column), window(up, up_column), window(out, 0),
                                    rows, I, stream_of(gate)));
  return out;
}

struct SwigluFunction : torch::autograd::Function<SwigluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate, const torch::Tensor& up) {
    ctx->save_for_backward({gate, up});
    return forward_kernel(gate, 0, up, 0, gate.size(-1));
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto &gate = saved[0], &up = saved[1];
    auto d_out = grad[0].contiguous();
    auto d_gate = torch::empty_like(gate), d_up = torch::empty_like(up);
    const int64_t I = gate.size(-1), rows = gate.numel() / std::max<int64_t>(I, 1);
    check(cuda::launch_swiglu_backward(dtype_of(gate), window(d_out, 0), window(gate, 0), window(up, 0),
                                       window(d_gate, 0), window(d_up, 0), rows, I, stream_of(gate)));
    return {d_gate, d_up};
  }
};

struct ConcatenatedSwigluFunction : torch::autograd::Function<ConcatenatedSwigluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_up) {
    ctx->save_for_backward({gate_up});
    const int64_t I = gate_up.size(-1) / 2;
    return forward_kernel(gate_up, 0, gate_up, I, I);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    const auto gate_up = ctx->get_saved_variables()[0];
    auto d_out = grad[0].contiguous();
    auto d_gate_up = torch::empty_like(gate_up);  // [..., 2I]: d_gate's columns, then d_up's
    const int64_t I = gate_up.size(-1) / 2, rows = d_out.numel() / std::max<int64_t>(I, 1);
    check(cuda::launch_swiglu_backward(dtype_of(gate_up), window(d_out, 0), window(gate_up, 0), window(gate_up, I),
                                       window(d_gate_up, 0), window(d_gate_up, I), rows, I, stream_of(gate_up)));
    return {d_gate_up};
  }
};
#endif

}  // namespace

torch::Tensor swiglu_unfused(const torch::Tensor& gate, const torch::Tensor& up) { return torch::silu(gate) * up; }

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) {
#ifdef AHA_WITH_CUDA
  if (kernel_applies(gate) && kernel_applies(up) && gate.sizes() == up.sizes() &&
      gate.scalar_type() == up.scalar_type() && gate.device() == up.device())
    return SwigluFunction::apply(gate, up);
#endif
  return swiglu_unfused(gate, up);
}

torch::Tensor swiglu_concatenated(const torch::Tensor& gate_up) {
  require(gate_up.dim() >= 1 && gate_up.size(-1) % 2 == 0,
          "SiLU-gated product: the concatenated projection's last dimension must be even (gate, then up)");
  const int64_t I = gate_up.size(-1) / 2;
#ifdef AHA_WITH_CUDA
  if (kernel_applies(gate_up)) return ConcatenatedSwigluFunction::apply(gate_up);
#endif
  return swiglu_unfused(gate_up.narrow(-1, 0, I), gate_up.narrow(-1, I, I));
}

}  // namespace aha
