#include "policy/model/cuda_swiglu.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "policy/model/cuda_element.cuh"

namespace aha::cuda {
namespace {

// ATen's silu: x / (1 + exp(-x)) in float32.
__device__ inline float silu(float g) { return g / (1.0f + expf(-g)); }

// Block b takes rows b, b + gridDim.x, ...; its threads stride over the row's columns, so that
// neighbouring threads touch neighbouring elements and no index is divided per element.
template <typename T>
__global__ void forward_kernel(const T* gate, int64_t gate_stride, const T* up, int64_t up_stride, T* out,
                               int64_t out_stride, int64_t rows, int64_t intermediate) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* g_row = gate + r * gate_stride;
    const T* u_row = up + r * up_stride;
    T* o_row = out + r * out_stride;
    for (int64_t i = threadIdx.x; i < intermediate; i += blockDim.x) {
      const float s = widen(narrow_to<T>(silu(widen(g_row[i]))));
      o_row[i] = narrow_to<T>(__fmul_rn(s, widen(u_row[i])));
    }
  }
}

template <typename T>
__global__ void backward_kernel(const T* d_out, int64_t d_out_stride, const T* gate, int64_t gate_stride, const T* up,
                                int64_t up_stride, T* d_gate, int64_t d_gate_stride, T* d_up, int64_t d_up_stride,
                                int64_t rows, int64_t intermediate) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* dy_row = d_out + r * d_out_stride;
    const T* g_row = gate + r * gate_stride;
    const T* u_row = up + r * up_stride;
    T* dg_row = d_gate + r * d_gate_stride;
    T* du_row = d_up + r * d_up_stride;
    for (int64_t i = threadIdx.x; i < intermediate; i += blockDim.x) {
      const float g = widen(g_row[i]), u = widen(u_row[i]), dy = widen(dy_row[i]);
      const float s = widen(narrow_to<T>(silu(g)));
      du_row[i] = narrow_to<T>(__fmul_rn(dy, s));
      const float ds = widen(narrow_to<T>(__fmul_rn(dy, u)));
      // ATen's silu_backward: dy * sig * (1 + x * (1 - sig)).
      const float sig = 1.0f / (1.0f + expf(-g));
      dg_row[i] = narrow_to<T>(ds * sig * (1.0f + g * (1.0f - sig)));
    }
  }
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>(std::min<int64_t>(rows, 65535)); }

template <typename T>
const T* in(const SwigluOperand& o) {
  return static_cast<const T*>(o.data);
}
template <typename T>
T* out(const SwigluOperand& o) {
  return static_cast<T*>(o.data);
}

template <typename T>
const char* forward(SwigluOperand gate, SwigluOperand up, SwigluOperand o, int64_t rows, int64_t inter,
                    cudaStream_t stream) {
  const int64_t n = rows * inter;
  if (n == 0) return nullptr;
  forward_kernel<T><<<blocks_for(rows), 256, 0, stream>>>(in<T>(gate), gate.row_stride, in<T>(up), up.row_stride,
                                                        out<T>(o), o.row_stride, rows, inter);
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

template <typename T>
const char* backward(SwigluOperand d_out, SwigluOperand gate, SwigluOperand up, SwigluOperand d_gate,
                     SwigluOperand d_up, int64_t rows, int64_t inter, cudaStream_t stream) {
  const int64_t n = rows * inter;
  if (n == 0) return nullptr;
  backward_kernel<T><<<blocks_for(rows), 256, 0, stream>>>(in<T>(d_out), d_out.row_stride, in<T>(gate), gate.row_stride,
                                                         in<T>(up), up.row_stride, out<T>(d_gate), d_gate.row_stride,
                                                         out<T>(d_up), d_up.row_stride, rows, inter);
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace

const char* launch_swiglu_forward(SwigluDtype type, SwigluOperand gate, SwigluOperand up, SwigluOperand o,
                                  int64_t rows, int64_t inter, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case SwigluDtype::kBFloat16: return forward<__nv_bfloat16>(gate, up, o, rows, inter, s);
    case SwigluDtype::kFloat16: return forward<__half>(gate, up, o, rows, inter, s);
    case SwigluDtype::kFloat32: return forward<float>(gate, up, o, rows, inter, s);
  }
  return "launch_swiglu_forward: unknown element type";
}

const char* launch_swiglu_backward(SwigluDtype type, SwigluOperand d_out, SwigluOperand gate, SwigluOperand up,
                                   SwigluOperand d_gate, SwigluOperand d_up, int64_t rows, int64_t inter,
                                   void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case SwigluDtype::kBFloat16: return backward<__nv_bfloat16>(d_out, gate, up, d_gate, d_up, rows, inter, s);
    case SwigluDtype::kFloat16: return backward<__half>(d_out, gate, up, d_gate, d_up, rows, inter, s);
    case SwigluDtype::kFloat32: return backward<float>(d_out, gate, up, d_gate, d_up, rows, inter, s);
  }
  return "launch_swiglu_backward: unknown element type";
}

}  // namespace aha::cuda
