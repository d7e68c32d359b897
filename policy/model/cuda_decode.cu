// Decode-step kernels (see cuda_decode.h for the contracts). Elementwise results are rounded to
// the model dtype after every operation the unfused path rounds after, so that the fused step
// gives the same numbers up to the order of the float32 sums.
#include "policy/model/cuda_decode.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace aha::cuda {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
// Rounds a float32 value to T and back: the value a T tensor would hold.
template <typename T>
__device__ __forceinline__ float rounded(float x) {
  return to_float(from_float<T>(x));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
// ---- residual add + RMSNorm ------------------------------------------------------------------

constexpr int kNormThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    add_rms_norm_kernel(T* x, const T* delta, const T* weight, T* out, int64_t hidden, float eps) {
  T* row = x + blockIdx.x * hidden;
  const T* d = delta ? delta + blockIdx.x * hidden : nullptr;
  float squares = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += kNormThreads) {
    float v = to_float(row[i]);
    if (d) {
      v = rounded<T>(v + to_float(d[i]));
      row[i] = from_float<T>(v);  // read back below by this same thread only
    }
    squares += v * v;
  }
  __shared__ float warps[kNormThreads / 32];
  squares = warp_sum(squares);
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = squares;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kNormThreads / 32; ++w) total += warps[w];
  const float inv_rms = rsqrtf(total / static_cast<float>(hidden) + eps);
  T* o = out + blockIdx.x * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += kNormThreads) {
    const float normalised = rounded<T>(to_float(row[i]) * inv_rms);
    o[i] = from_float<T>(to_float(weight[i]) * normalised);
  }
}

// ---- SiLU(gate) * up -------------------------------------------------------------------------

template <typename T>
__global__ void silu_mul_kernel(const T* gate_up, T* out, int64_t rows, int64_t intermediate) {
  const int64_t n = rows * intermediate;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / intermediate, i = e % intermediate;
    const float g = to_float(gate_up[r * 2 * intermediate + i]);
    const float u = to_float(gate_up[r * 2 * intermediate + intermediate + i]);
    const float silu = rounded<T>(g / (1.0f + expf(-g)));  // as ATen's silu, then rounded
    out[e] = from_float<T>(silu * u);
  }
}

// ---- rotary embedding + cache write ------------------------------------------------------------

template <typename T>
__global__ void rope_cache_kernel(const T* qkv, int64_t qkv_stride, const T* cos, const T* signed_sin,
                                  const int64_t* slot, int heads, int kv_heads, int head_dim, T* q_out, T* keys,
                                  T* values, int64_t cache_row_stride, int64_t cache_head_stride) {
  const int64_t r = blockIdx.x;
  const T* in = qkv + r * qkv_stride;
  const T* c = cos + r * head_dim;
  const T* s = signed_sin + r * head_dim;
  const int64_t at = *slot * head_dim;
  const int half = head_dim / 2, total = (heads + 2 * kv_heads) * head_dim;
  for (int e = threadIdx.x; e < total; e += blockDim.x) {
    const int h = e / head_dim, d = e % head_dim;
    if (h >= heads + kv_heads) {
      values[r * cache_row_stride + (h - heads - kv_heads) * cache_head_stride + at + d] = in[e];
      continue;
    }
    // x * cos + swap_halves(x) * signed_sin, each product and the sum rounded to T.
    const float partner = to_float(in[h * head_dim + (d + half) % head_dim]);
    const float y = rounded<T>(to_float(in[e]) * to_float(c[d])) + rounded<T>(partner * to_float(s[d]));
    if (h < heads) {
      q_out[r * heads * head_dim + e] = from_float<T>(y);
    } else {
      keys[r * cache_row_stride + (h - heads) * cache_head_stride + at + d] = from_float<T>(y);
    }
  }
}

// ---- decode attention ------------------------------------------------------------------------
//
// One block per (row, kv head, key range); four warps take turns over tiles of 32 slots. A tile's
// keys and values are copied to shared memory asynchronously one tile ahead (cp.async), so the
// loads of the next tile overlap the arithmetic of this one. The arithmetic runs on tensor cores
// (mma m16n8k16, float32 accumulation), as in FlashAttention-2: the group's query heads (up to 16)
// are the 16 rows of A, so each key and value is read once for all of them; scores stay in
// registers, an online softmax per head rescales the output, and the probabilities (rounded to
// the dtype, as flash attention does) are the A operand of the value product. The four warps'
// states are merged at the end; with several key ranges a second kernel merges those.

constexpr int kAttnWarps = 4;
constexpr int kTile = 32;
constexpr int kMaxRep = 16;
constexpr int kPad = 8;  // elements of padding per shared row: the 8 rows of an ldmatrix hit different banks

template <int D>
struct AttnLayout {
  static constexpr int kPitch = D + kPad;                            // elements per shared row
  static constexpr int kTileElems = kTile * kPitch;                  // one K or V tile
  static constexpr size_t kWarpBytes = 4 * size_t(kTileElems) * 2;   // K, V x double buffer, 2-byte elements
  static constexpr size_t kMergeBytes = size_t(kMaxRep) * (D + 2) * sizeof(float);  // reuses the tiles
  static constexpr size_t kBytes = kAttnWarps * kWarpBytes;
  static_assert(kMergeBytes <= kWarpBytes, "merge state must fit in a warp's tiles");
};

__device__ __forceinline__ unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void copy_16_async(void* shared, const void* global, bool fill) {
  const int bytes = fill ? 16 : 0;  // 0: zero-fill, nothing is read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared)), "l"(global),
               "r"(bytes));
}
__device__ __forceinline__ void commit_async() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void wait_async() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
// Four 8x8 b16 matrices; lane i gives the address of row i % 8 of matrix i / 8.
template <bool kTranspose>
__device__ __forceinline__ void load_matrices(uint32_t (&r)[4], const void* row) {
  if constexpr (kTranspose) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
  }
}
// c += a (16x16, row-major fragments) * b (16x8, column-major fragments), float32 accumulation.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}
// Two values as one 32-bit register of two T, the first in the low half (fragment order).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  uint32_t out;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    memcpy(&out, &v, 4);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    memcpy(&out, &v, 4);
  }
  return out;
}

template <typename T, int D>
__global__ void __launch_bounds__(kAttnWarps * 32) decode_attention_kernel(DecodeAttention a) {
  using L = AttnLayout<D>;
  constexpr int kSteps = D / 16;  // k-steps of the score product
  constexpr int kBlocks = D / 8;  // n-blocks of the output
  extern __shared__ __align__(16) unsigned char smem[];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = lane / 4, pair = lane % 4;  // the fragment coordinates of mma m16n8k16
  const int64_t row = blockIdx.x / a.kv_heads, kv = blockIdx.x % a.kv_heads;
  const int split = blockIdx.y, rep = static_cast<int>(a.rep);
  T* tiles = reinterpret_cast<T*>(smem + warp * L::kWarpBytes);  // [K0, V0, K1, V1]

  // Slots [begin, end) of this block's range.
  // The ranges divide the visible slots (not the span), so that they stay even as the context grows.
  // A row's first slot (continuous batching: a row refilled late) moves the start of what is
  // divided up to a multiple of kAttnWarps tiles at or below it, and each warp skips its tiles
  // wholly below it: tile t stays warp t % kAttnWarps's, so a warp's online softmax sees the same
  // tiles in the same order as without a first slot, less tiles that held only slots it must not
  // attend to (which changed nothing): with one range the result is bit for bit the same.
  const int64_t visible = min(a.span, *a.slot + 1);
  const int64_t first = a.first_slot ? min(visible, max(a.first_slot[row], static_cast<int64_t>(0))) : 0;
  const int64_t base = first / (kTile * kAttnWarps) * (kTile * kAttnWarps);
  const int64_t per_split = ((visible - base + a.splits - 1) / a.splits + kTile - 1) / kTile * kTile;
  const int64_t begin = base + split * per_split, end = min(visible, begin + per_split);
  const int64_t tiles_total = end > begin ? (end - begin + kTile - 1) / kTile : 0;
  // This range's tiles below the one holding `first` are skipped (begin and first / kTile * kTile
  // are both multiples of kTile); this warp starts at its first tile at or above them.
  const int64_t tiles_skipped = max(static_cast<int64_t>(0), (first / kTile * kTile - begin) / kTile);
  const int64_t first_tile = tiles_skipped + ((warp - tiles_skipped) % kAttnWarps + kAttnWarps) % kAttnWarps;
  const T* keys = static_cast<const T*>(a.keys) + row * a.cache_row_stride + kv * a.cache_head_stride;
  const T* values = static_cast<const T*>(a.values) + row * a.cache_row_stride + kv * a.cache_head_stride;
  const bool* mask = a.key_mask + row * a.mask_row_stride;

  auto load_tile = [&](int64_t tile, int buffer) {
    T* k_dst = tiles + (2 * buffer) * L::kTileElems;
    T* v_dst = tiles + (2 * buffer + 1) * L::kTileElems;
    constexpr int kChunksPerRow = D / 8;  // 16-byte chunks
    const int64_t tile_start = begin + tile * kTile;
    for (int c = lane; c < kTile * kChunksPerRow; c += 32) {
      const int r = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
      const bool inside = tile_start + r < end;
      const int64_t slot = inside ? tile_start + r : begin;
      copy_16_async(k_dst + r * L::kPitch + col, keys + slot * D + col, inside);
      copy_16_async(v_dst + r * L::kPitch + col, values + slot * D + col, inside);
    }
  };
  // The first tile is on its way while the queries are read.
  if (first_tile < tiles_total) load_tile(first_tile, 0);
  commit_async();

  // Query fragments (A of the score product): head rows `group` and `group + 8`, zero past rep.
  const T* q = static_cast<const T*>(a.q) + (row * a.kv_heads + kv) * rep * D;
  auto q_pair = [&](int head, int col) -> uint32_t {
    return head < rep ? *reinterpret_cast<const uint32_t*>(q + head * D + col) : 0u;
  };
  uint32_t qa[kSteps][4];
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
    qa[s][0] = q_pair(group, s * 16 + pair * 2);
    qa[s][1] = q_pair(group + 8, s * 16 + pair * 2);
    qa[s][2] = q_pair(group, s * 16 + 8 + pair * 2);
    qa[s][3] = q_pair(group + 8, s * 16 + 8 + pair * 2);
  }

  // Per head row (group, group + 8): running max, this lane's share of the sum, output columns
  // b * 8 + pair * 2 + {0, 1} (o[b][0..1] for row group, o[b][2..3] for row group + 8).
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float o[kBlocks][4];
#pragma unroll
  for (int b = 0; b < kBlocks; ++b) o[b][0] = o[b][1] = o[b][2] = o[b][3] = 0.0f;

  int buffer = 0;
  for (int64_t tile = first_tile; tile < tiles_total; tile += kAttnWarps, buffer ^= 1) {
    if (tile + kAttnWarps < tiles_total) load_tile(tile + kAttnWarps, buffer ^ 1);
    commit_async();
    wait_async<1>();  // this tile's copies (all but the newest group) are done
    __syncwarp();
    const T* k_tile = tiles + (2 * buffer) * L::kTileElems;
    const T* v_tile = tiles + (2 * buffer + 1) * L::kTileElems;

    // Scores [16 heads, 32 slots] as four 16x8 blocks: s[n][0..1] row group, [2..3] row group + 8,
    // slots n * 8 + pair * 2 + {0, 1}.
    float s[4][4];
#pragma unroll
    for (int n = 0; n < 4; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int k = 0; k < kSteps; k += 2) {
        uint32_t b[4];
        load_matrices<false>(b, k_tile + (n * 8 + lane % 8) * L::kPitch + k * 16 + (lane / 8) * 8);
        mma_16816<T>(s[n], qa[k], b[0], b[1]);
        mma_16816<T>(s[n], qa[k + 1], b[2], b[3]);
      }
    }
    const int64_t tile_start = begin + tile * kTile;
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 4; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t slot = tile_start + n * 8 + pair * 2 + e;
        const bool valid = slot >= first && slot < end && mask[slot];
        s[n][e] = valid ? s[n][e] * a.scale : -INFINITY;
        s[n][2 + e] = valid ? s[n][2 + e] * a.scale : -INFINITY;
        tile_max[0] = fmaxf(tile_max[0], s[n][e]);
        tile_max[1] = fmaxf(tile_max[1], s[n][2 + e]);
      }
    }
    float correction[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // The four lanes of a group hold one head row's 32 slots.
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullMask, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullMask, tile_max[h], 2));
      const float m_new = fmaxf(m[h], tile_max[h]);
      correction[h] = m_new == -INFINITY ? 1.0f : __expf(m[h] - m_new);
      m[h] = m_new;
    }
    float p_sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < 4; ++n) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int h = c / 2;
        s[n][c] = m[h] == -INFINITY ? 0.0f : __expf(s[n][c] - m[h]);  // masked slots: exp(-inf) = 0
        p_sum[h] += s[n][c];
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) l[h] = l[h] * correction[h] + p_sum[h];
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      o[b][0] *= correction[0];
      o[b][1] *= correction[0];
      o[b][2] *= correction[1];
      o[b][3] *= correction[1];
    }

    // Output += P [16, 32] V [32, D]: P's score fragments are already in A's layout.
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const uint32_t pa[4] = {pack_pair<T>(s[2 * k][0], s[2 * k][1]), pack_pair<T>(s[2 * k][2], s[2 * k][3]),
                              pack_pair<T>(s[2 * k + 1][0], s[2 * k + 1][1]),
                              pack_pair<T>(s[2 * k + 1][2], s[2 * k + 1][3])};
#pragma unroll
      for (int b = 0; b < kBlocks; b += 2) {
        uint32_t v[4];
        load_matrices<true>(v, v_tile + (k * 16 + lane % 8 + ((lane / 8) % 2) * 8) * L::kPitch + (b + lane / 16) * 8);
        mma_16816<T>(o[b], pa, v[0], v[1]);
        mma_16816<T>(o[b + 1], pa, v[2], v[3]);
      }
    }
    __syncwarp();  // the next iteration's copies overwrite this buffer
  }
  wait_async<0>();
  __syncwarp();

  // Merge the warps: each writes (m, l, output) per head row over its own tiles, then the block
  // combines them.
  auto merge_of = [&](int w) { return reinterpret_cast<float*>(smem + w * L::kWarpBytes); };  // [16][m, l, o[D]]
  float* mine = merge_of(warp);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(kFullMask, l[h], 1);
    l[h] += __shfl_xor_sync(kFullMask, l[h], 2);
    const int head = group + 8 * h;
    if (head >= rep) continue;
    float* dst = mine + head * (D + 2);
    if (pair == 0) {
      dst[0] = m[h];
      dst[1] = l[h];
    }
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      dst[2 + b * 8 + pair * 2] = o[b][2 * h];
      dst[2 + b * 8 + pair * 2 + 1] = o[b][2 * h + 1];
    }
  }
  __syncthreads();
  const int64_t heads = a.kv_heads * rep;
  for (int e = threadIdx.x; e < rep * D; e += blockDim.x) {
    const int r = e / D, d = e % D;
    float best = -INFINITY;
    for (int w = 0; w < kAttnWarps; ++w) best = fmaxf(best, merge_of(w)[r * (D + 2)]);
    float sum = 0.0f, out = 0.0f;
    if (best != -INFINITY) {
      for (int w = 0; w < kAttnWarps; ++w) {
        const float* theirs = merge_of(w) + r * (D + 2);
        if (theirs[0] == -INFINITY) continue;
        const float weight = __expf(theirs[0] - best);
        sum += theirs[1] * weight;
        out += theirs[2 + d] * weight;
      }
    }
    const int64_t head = kv * rep + r;
    const float value = sum > 0.0f ? out / sum : 0.0f;
    if (a.splits == 1) {
      static_cast<T*>(a.out)[(row * heads + head) * D + d] = from_float<T>(value);
    } else {
      const int64_t at = (row * heads + head) * a.splits + split;
      a.partial_out[at * D + d] = value;
      if (d == 0) a.partial_lse[at] = sum > 0.0f ? best + logf(sum) : -INFINITY;
    }
  }
}

// Merges the key ranges of a split attention: weights exp(lse_s - max lse).
template <typename T>
__global__ void merge_splits_kernel(const float* partial_out, const float* partial_lse, int splits, int head_dim,
                                    T* out) {
  const int64_t rh = blockIdx.x;  // row * heads + head
  const float* lse = partial_lse + rh * splits;
  float best = -INFINITY;
  for (int s = 0; s < splits; ++s) best = fmaxf(best, lse[s]);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f, value = 0.0f;
    if (best != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        if (lse[s] == -INFINITY) continue;
        const float w = __expf(lse[s] - best);
        sum += w;
        value += w * partial_out[(rh * splits + s) * head_dim + d];
      }
    }
    out[rh * head_dim + d] = from_float<T>(sum > 0.0f ? value / sum : 0.0f);
  }
}

template <typename T, int D>
cudaError_t launch_attention(const DecodeAttention& a, cudaStream_t stream) {
  constexpr size_t bytes = AttnLayout<D>::kBytes;
  // More than 48 KiB of dynamic shared memory must be allowed once per device (not a stream
  // operation, so it is also safe while a graph is being captured).
  static bool configured[64] = {};
  int device = 0;
  if (cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  if (device < 64 && !configured[device]) {
    cudaError_t e = cudaFuncSetAttribute(decode_attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(bytes));
    if (e != cudaSuccess) return e;
    configured[device] = true;
  }
  const dim3 grid(static_cast<unsigned>(a.rows * a.kv_heads), static_cast<unsigned>(a.splits));
  decode_attention_kernel<T, D><<<grid, kAttnWarps * 32, bytes, stream>>>(a);
  if (a.splits > 1) {
    merge_splits_kernel<T><<<static_cast<unsigned>(a.rows * a.kv_heads * a.rep), D, 0, stream>>>(
        a.partial_out, a.partial_lse, a.splits, D, static_cast<T*>(a.out));
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_attention_for_dim(const DecodeAttention& a, cudaStream_t stream) {
  switch (a.head_dim) {
    case 32: return launch_attention<T, 32>(a, stream);
    case 64: return launch_attention<T, 64>(a, stream);
    case 128: return launch_attention<T, 128>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

const char* status_of(cudaError_t status) { return status == cudaSuccess ? nullptr : cudaGetErrorString(status); }

}  // namespace

bool decode_attention_supports(int64_t head_dim, int64_t heads_per_kv_head) {
  return (head_dim == 32 || head_dim == 64 || head_dim == 128) && heads_per_kv_head >= 1 &&
         heads_per_kv_head <= kMaxRep;
}

int decode_attention_splits(int64_t rows, int64_t kv_heads, int64_t span) {
  static const int sms = [] {
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      return 132;
    }
    return count;
  }();
  const int64_t blocks = rows * kv_heads;
  if (blocks >= 2 * sms) return 1;
  // At least four tiles (one per warp) per range.
  const int64_t most = std::max<int64_t>(1, span / (kAttnWarps * kTile));
  return static_cast<int>(std::min<int64_t>(most, (2 * sms + blocks - 1) / blocks));
}

const char* launch_add_rms_norm(Dtype type, void* x, const void* delta, const void* weight, void* out, int64_t rows,
                                int64_t hidden, float eps, void* stream) {
  if (rows == 0) return nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  if (type == Dtype::kBFloat16) {
    using T = __nv_bfloat16;
    add_rms_norm_kernel<T><<<rows, kNormThreads, 0, s>>>(static_cast<T*>(x), static_cast<const T*>(delta),
                                                         static_cast<const T*>(weight), static_cast<T*>(out), hidden,
                                                         eps);
  } else {
    using T = __half;
    add_rms_norm_kernel<T><<<rows, kNormThreads, 0, s>>>(static_cast<T*>(x), static_cast<const T*>(delta),
                                                         static_cast<const T*>(weight), static_cast<T*>(out), hidden,
                                                         eps);
  }
  return status_of(cudaGetLastError());
}

const char* launch_silu_mul(Dtype type, const void* gate_up, void* out, int64_t rows, int64_t intermediate,
                            void* stream) {
  const int64_t n = rows * intermediate;
  if (n == 0) return nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + threads - 1) / threads, 65535));
  if (type == Dtype::kBFloat16) {
    using T = __nv_bfloat16;
    silu_mul_kernel<T><<<blocks, threads, 0, s>>>(static_cast<const T*>(gate_up), static_cast<T*>(out), rows,
                                                  intermediate);
  } else {
    using T = __half;
    silu_mul_kernel<T><<<blocks, threads, 0, s>>>(static_cast<const T*>(gate_up), static_cast<T*>(out), rows,
                                                  intermediate);
  }
  return status_of(cudaGetLastError());
}

const char* launch_rope_and_cache_write(Dtype type, const void* qkv, int64_t qkv_stride, const void* cos,
                                        const void* signed_sin, const int64_t* slot, int64_t rows, int64_t heads,
                                        int64_t kv_heads, int64_t head_dim, void* q_out, void* keys, void* values,
                                        int64_t cache_row_stride, int64_t cache_head_stride, void* stream) {
  if (rows == 0) return nullptr;
  auto s = static_cast<cudaStream_t>(stream);
  const int threads = 256;
  const int h = static_cast<int>(heads), kvh = static_cast<int>(kv_heads), d = static_cast<int>(head_dim);
  if (type == Dtype::kBFloat16) {
    using T = __nv_bfloat16;
    rope_cache_kernel<T><<<rows, threads, 0, s>>>(static_cast<const T*>(qkv), qkv_stride, static_cast<const T*>(cos),
                                                  static_cast<const T*>(signed_sin), slot, h, kvh, d,
                                                  static_cast<T*>(q_out), static_cast<T*>(keys),
                                                  static_cast<T*>(values), cache_row_stride, cache_head_stride);
  } else {
    using T = __half;
    rope_cache_kernel<T><<<rows, threads, 0, s>>>(static_cast<const T*>(qkv), qkv_stride, static_cast<const T*>(cos),
                                                  static_cast<const T*>(signed_sin), slot, h, kvh, d,
                                                  static_cast<T*>(q_out), static_cast<T*>(keys),
                                                  static_cast<T*>(values), cache_row_stride, cache_head_stride);
  }
  return status_of(cudaGetLastError());
}

const char* launch_decode_attention(Dtype type, const DecodeAttention& args, void* stream) {
  if (args.rows == 0) return nullptr;
  if (!decode_attention_supports(args.head_dim, args.rep) || args.splits < 1) return "unsupported attention shape";
  auto s = static_cast<cudaStream_t>(stream);
  return status_of(type == Dtype::kBFloat16 ? launch_attention_for_dim<__nv_bfloat16>(args, s)
                                            : launch_attention_for_dim<__half>(args, s));
}

}  // namespace aha::cuda
