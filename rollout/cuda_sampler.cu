// The fused sampling kernel (see cuda_sampler.h for the contract): one block per row, each
// thread walks the row in groups of four logits (one Philox call gives four random words),
// keeping an online log-sum-exp and the best Gumbel-perturbed score; the block then merges
// the threads' partial results. Replaces a float32 copy, a softmax and a two-level inverse CDF
// (about six passes over [rows, vocab]) by one read of the logits.
#include "rollout/cuda_sampler.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

namespace aha::cuda {
namespace {

constexpr int kThreads = 512;
constexpr unsigned kFullMask = 0xffffffffu;

struct Words {
  uint32_t w[4];
};

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
__device__ __forceinline__ Words philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                               uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// A Gumbel variate -log(-log(u)) from the top 23 bits of a word, u centred in its bucket so that
// it lies strictly inside (0, 1) in float32 (as counter_uniforms in sampler.cpp).
__device__ __forceinline__ float gumbel(uint32_t word) {
  const float u = (static_cast<float>(word >> 9) + 0.5f) * (1.0f / 8388608.0f);
  return -__logf(-logf(u));  // the inner log is the accurate one: u may be within 2^-24 of 1
}

// Four consecutive logits in one load when the row allows it.
template <typename T>
struct alignas(4 * sizeof(T)) Four {
  T v[4];
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

// Per-thread, then per-block, partial results.
struct Partial {
  float max;    // of x
  float sum;    // of exp(x - max)
  float best;   // best score (x + gumbel, or x when greedy)
  float best_x; // x of the best token
  int64_t best_index;
};

__device__ __forceinline__ void add_logit(Partial& p, float x) {
  if (x == -INFINITY) return;  // masked: no mass (and exp(-inf - -inf) would be NaN)
  if (x > p.max) {
    p.sum = p.sum * __expf(p.max - x) + 1.0f;
    p.max = x;
  } else {
    p.sum += __expf(x - p.max);
  }
}

__device__ __forceinline__ void consider(Partial& p, float score, float x, int64_t index) {
  // Indices reach a thread in increasing order: strictly greater keeps the first maximum.
  if (score > p.best) {
    p.best = score;
    p.best_x = x;
    p.best_index = index;
  }
}

__device__ __forceinline__ Partial merge(const Partial& a, const Partial& b) {
  Partial r;
  r.max = fmaxf(a.max, b.max);
  const float sa = a.max == -INFINITY ? 0.0f : a.sum * __expf(a.max - r.max);
  const float sb = b.max == -INFINITY ? 0.0f : b.sum * __expf(b.max - r.max);
  r.sum = sa + sb;
  const bool take_b = b.best > a.best || (b.best == a.best && b.best_index < a.best_index);
  r.best = take_b ? b.best : a.best;
  r.best_x = take_b ? b.best_x : a.best_x;
  r.best_index = take_b ? b.best_index : a.best_index;
  return r;
}

__device__ __forceinline__ Partial shuffle_down(const Partial& p, int offset) {
  Partial r;
  r.max = __shfl_down_sync(kFullMask, p.max, offset);
  r.sum = __shfl_down_sync(kFullMask, p.sum, offset);
  r.best = __shfl_down_sync(kFullMask, p.best, offset);
  r.best_x = __shfl_down_sync(kFullMask, p.best_x, offset);
  r.best_index = __shfl_down_sync(kFullMask, p.best_index, offset);
  return r;
}

__device__ __forceinline__ Partial warp_reduce(Partial p) {
  for (int offset = 16; offset > 0; offset /= 2) p = merge(p, shuffle_down(p, offset));
  return p;
}

template <typename T, bool kGreedy>
__global__ void __launch_bounds__(kThreads) fused_sample_kernel(const T* __restrict__ logits, int64_t vocab,
                                                                int64_t row_stride, float temperature,
                                                                const int64_t* __restrict__ row_keys,
                                                                const int64_t* __restrict__ step,
                                                                int64_t step_stride,
                                                                int64_t* __restrict__ tokens,
                                                                float* __restrict__ logprobs) {
  const int64_t row = blockIdx.x;
  const T* x_row = logits + row * row_stride;
  const uint64_t key = static_cast<uint64_t>(row_keys[row]);
  const uint64_t t = static_cast<uint64_t>(step[row * step_stride]);
  const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  const uint32_t t0 = static_cast<uint32_t>(t), t1 = static_cast<uint32_t>(t >> 32);

  Partial p{-INFINITY, 0.0f, -INFINITY, -INFINITY, 0};
  const int64_t groups = (vocab + 3) / 4;
  const bool aligned = reinterpret_cast<uintptr_t>(x_row) % sizeof(Four<T>) == 0;
  for (int64_t g = threadIdx.x; g < groups; g += kThreads) {
    Words r{};
    if (!kGreedy) r = philox4x32_10(static_cast<uint32_t>(g), t0, t1, 0x5a4du, k0, k1);
    const int64_t base = g * 4;
    Four<T> four;
    if (aligned && base + 4 <= vocab) {
      four = *reinterpret_cast<const Four<T>*>(x_row + base);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) four.v[j] = base + j < vocab ? x_row[base + j] : x_row[0];
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t i = base + j;
      if (i < vocab) {
        const float x = kGreedy ? to_float(four.v[j]) : to_float(four.v[j]) / temperature;
        add_logit(p, x);
        consider(p, kGreedy ? x : x + gumbel(r.w[j]), x, i);
      }
    }
  }

  __shared__ Partial warps[kThreads / 32];
  p = warp_reduce(p);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warps[warp] = p;
  __syncthreads();
  if (warp == 0) {
    p = lane < kThreads / 32 ? warps[lane] : Partial{-INFINITY, 0.0f, -INFINITY, -INFINITY, vocab};
    p = warp_reduce(p);
    if (lane == 0) {
      tokens[row] = p.best_index;
      logprobs[row] = p.best_x - (p.max + logf(p.sum));
    }
  }
}

template <typename T>
cudaError_t launch(const T* logits, int64_t rows, int64_t vocab, int64_t row_stride, float temperature,
                   const int64_t* row_keys, const int64_t* step, int64_t step_stride, int64_t* tokens,
                   float* logprobs, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(rows)), block(kThreads);
  if (temperature == 0.0f) {
    fused_sample_kernel<T, true><<<grid, block, 0, stream>>>(logits, vocab, row_stride, 1.0f, row_keys, step,
                                                             step_stride, tokens, logprobs);
  } else {
    fused_sample_kernel<T, false><<<grid, block, 0, stream>>>(logits, vocab, row_stride, temperature, row_keys, step,
                                                              step_stride, tokens, logprobs);
  }
  return cudaGetLastError();
}

}  // namespace

const char* launch_fused_sample(const void* logits, LogitsType type, int64_t rows, int64_t vocab, int64_t row_stride,
                                float temperature, const int64_t* row_keys, const int64_t* step, int64_t step_stride,
                                int64_t* tokens, float* logprobs, void* stream) {
  if (rows == 0) return nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  cudaError_t status = cudaSuccess;
  switch (type) {
    case LogitsType::kFloat32:
      status = launch(static_cast<const float*>(logits), rows, vocab, row_stride, temperature, row_keys, step, step_stride,
                      tokens, logprobs, s);
      break;
    case LogitsType::kBFloat16:
      status = launch(static_cast<const __nv_bfloat16*>(logits), rows, vocab, row_stride, temperature, row_keys, step,
                      step_stride, tokens, logprobs, s);
      break;
    case LogitsType::kFloat16:
      status = launch(static_cast<const __half*>(logits), rows, vocab, row_stride, temperature, row_keys, step, step_stride,
                      tokens, logprobs, s);
      break;
  }
  return status == cudaSuccess ? nullptr : cudaGetErrorString(status);
}

}  // namespace aha::cuda
