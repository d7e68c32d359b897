#include "policy/model/cuda_rope.h"

#include <cuda_runtime.h>

#include "policy/model/cuda_element.cuh"

namespace aha::cuda {
namespace {

// r(a * b) as LibTorch's product of two T: computed in float, rounded to T. __fmul_rn and
// __fadd_rn keep the compiler from contracting the product and the sum into one FMA, which for
// float would round once where LibTorch rounds twice.
template <typename T>
__device__ inline float product(T a, T b) {
  return widen(narrow_to<T>(__fmul_rn(widen(a), widen(b))));
}

struct Dims {
  int64_t heads, tokens, half;
  int64_t in[3], cos[3], sin[3], out[3];
};

template <typename T>
__global__ void rope_kernel(const T* __restrict__ in, const T* __restrict__ cos, const T* __restrict__ sin,
                            T* __restrict__ out, Dims d, int64_t pairs, bool backward) {
  const int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= pairs) return;
  const int64_t i = index % d.half;
  int64_t rest = index / d.half;
  const int64_t t = rest % d.tokens;
  rest /= d.tokens;
  const int64_t h = rest % d.heads, b = rest / d.heads;
  const T* a = in + b * d.in[0] + h * d.in[1] + t * d.in[2];
  const T* c = cos + b * d.cos[0] + h * d.cos[1] + t * d.cos[2];
  const T* s = sin + b * d.sin[0] + h * d.sin[1] + t * d.sin[2];
  T* o = out + b * d.out[0] + h * d.out[1] + t * d.out[2];
  const T lo = a[i], hi = a[i + d.half];
  const T s_lo = backward ? s[i + d.half] : s[i], s_hi = backward ? s[i] : s[i + d.half];
  o[i] = narrow_to<T>(__fadd_rn(product(lo, c[i]), product(hi, s_lo)));
  o[i + d.half] = narrow_to<T>(__fadd_rn(product(hi, c[i + d.half]), product(lo, s_hi)));
}

template <typename T>
const char* launch(RopeOperand in, RopeOperand cos, RopeOperand sin, void* out, const int64_t out_stride[3],
                   int64_t batch, int64_t heads, int64_t tokens, int64_t head_dim, bool backward, cudaStream_t stream) {
  Dims d{heads, tokens, head_dim / 2, {}, {}, {}, {}};
  for (int k = 0; k < 3; ++k) {
    d.in[k] = in.stride[k];
    d.cos[k] = cos.stride[k];
    d.sin[k] = sin.stride[k];
    d.out[k] = out_stride[k];
  }
  const int64_t pairs = batch * heads * tokens * d.half;
  if (pairs == 0) return nullptr;
  constexpr int threads = 256;
  const int64_t blocks = (pairs + threads - 1) / threads;
  rope_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      static_cast<const T*>(in.data), static_cast<const T*>(cos.data), static_cast<const T*>(sin.data),
      static_cast<T*>(out), d, pairs, backward);
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace

const char* launch_rope(RopeDtype type, RopeOperand in, RopeOperand cos, RopeOperand signed_sin, void* out,
                        const int64_t out_stride[3], int64_t batch, int64_t heads, int64_t tokens, int64_t head_dim,
                        bool backward, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case RopeDtype::kBFloat16:
      return launch<__nv_bfloat16>(in, cos, signed_sin, out, out_stride, batch, heads, tokens, head_dim, backward, s);
    case RopeDtype::kFloat16:
      return launch<__half>(in, cos, signed_sin, out, out_stride, batch, heads, tokens, head_dim, backward, s);
    case RopeDtype::kFloat32:
      return launch<float>(in, cos, signed_sin, out, out_stride, batch, heads, tokens, head_dim, backward, s);
  }
  return "launch_rope: unknown element type";
}

}  // namespace aha::cuda
