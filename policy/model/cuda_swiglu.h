// The SiLU-gated product of an MLP, silu(gate) * up, in one CUDA launch forward and one backward
// (policy/model/cuda_swiglu.cu, compiled only in a CUDA build; swiglu.cpp calls it). No LibTorch
// here: raw device pointers, as in cuda_decode.h.
//
// LibTorch runs silu, the product, and backward the two products of the product's gradient and
// silu's own backward: five kernels, each a full pass over [rows, I]. These two read and write
// each element once and compute as ATen's kernels do, in float32 from the element type:
//   forward   s = r(g / (1 + exp(-g))),  out = r(s * u)
//   backward  d_up = r(dout * s),  ds = r(dout * u),
//             d_gate = r(ds * sig * (1 + g * (1 - sig))),  sig = 1 / (1 + exp(-g))
// with r() the rounding to the element type and s recomputed rather than kept.
#pragma once
#include <cstdint>

namespace aha::cuda {

enum class SwigluDtype { kBFloat16, kFloat16, kFloat32 };

// A [rows, I] operand: its last dimension contiguous, rows `row_stride` elements apart.
struct SwigluOperand {
  void* data = nullptr;
  int64_t row_stride = 0;
};

// out = r(r(silu(gate)) * up). Returns null on success, otherwise CUDA's error string.
const char* launch_swiglu_forward(SwigluDtype type, SwigluOperand gate, SwigluOperand up, SwigluOperand out,
                                  int64_t rows, int64_t intermediate, void* stream);
// d_gate and d_up from d_out, gate and up, as above.
const char* launch_swiglu_backward(SwigluDtype type, SwigluOperand d_out, SwigluOperand gate, SwigluOperand up,
                                   SwigluOperand d_gate, SwigluOperand d_up, int64_t rows, int64_t intermediate,
                                   void* stream);

}  // namespace aha::cuda
