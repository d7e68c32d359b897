// Element conversions shared by the elementwise CUDA kernels of cuda_rope.cu and cuda_swiglu.cu:
// a bf16, fp16 or float32 element widened to float32, and a float32 result rounded to nearest
// (even) in the element type, as LibTorch rounds its bf16/fp16 results. Device code only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace aha::cuda {

__device__ inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ inline float widen(__half v) { return __half2float(v); }
__device__ inline float widen(float v) { return v; }

template <typename T>
__device__ inline T narrow_to(float v);
template <>
__device__ inline __nv_bfloat16 narrow_to<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ inline __half narrow_to<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ inline float narrow_to<float>(float v) { return v; }

}  // namespace aha::cuda
