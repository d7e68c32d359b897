// CUDA kernels for one decode step of the transformer (policy/cuda_decode.cu, compiled only in
// a CUDA build; Transformer's cached forward calls them through transformer_decode_cuda.cpp).
// No LibTorch here: raw device pointers, so that the .cu file needs only the CUDA runtime.
//
// At decode time every row has one new token, so each layer is a few small products and about
// twenty tiny elementwise kernels, plus an attention that reads the whole cache. These kernels
// replace the elementwise chains by one launch each, rounding every intermediate to the model
// dtype exactly where the unfused LibTorch path (and transformers) rounds, and replace SDPA by
// a grouped-query decode attention on tensor cores that reads each key and value once for all
// the query heads sharing it (up to 16), and only up to the new token's slot.
//
// Every launcher takes a cudaStream_t as void*, returns null when the launch succeeded and
// otherwise CUDA's error string. Element types are bf16 or fp16 (`Dtype`).
#pragma once
#include <cstdint>

namespace aha::cuda {

enum class Dtype { kBFloat16, kFloat16 };

// Head sizes and query heads per key/value head that decode_attention supports.
bool decode_attention_supports(int64_t head_dim, int64_t heads_per_kv_head);

// x <- x + delta (rounded to the dtype), then out = weight * round(x * rsqrt(mean(x^2) + eps)),
// the normalisation in float32: transformers' residual add followed by its RMSNorm. With
// delta null, x is only read. x, delta, out: [rows, hidden] contiguous; weight [hidden].
const char* launch_add_rms_norm(Dtype type, void* x, const void* delta, const void* weight, void* out, int64_t rows,
                                int64_t hidden, float eps, void* stream);

// out[n, i] = round(round(silu(g)) * u) for g = gate_up[n, i], u = gate_up[n, I + i]: the
// SiLU-gated product over a concatenated [gate; up] projection. gate_up [rows, 2I], out [rows, I].
const char* launch_silu_mul(Dtype type, const void* gate_up, void* out, int64_t rows, int64_t intermediate,
                            void* stream);

// Rotary embedding of the new token's q and k, and the cache write of k and v at slot[0]:
//   qkv      [rows, (heads + 2 kv_heads) * D] the concatenated projection, row stride qkv_stride
//   cos, signed_sin [rows, D] (rope_cos_sin's tables: sin negated on the first half)
//   q_out    [rows, heads, D] contiguous: q * cos + swap_halves(q) * signed_sin, rounded as there
//   keys, values: the layer's cache, row r's head h slot s at r * cache_row_stride +
//            h * cache_head_stride + s * D
const char* launch_rope_and_cache_write(Dtype type, const void* qkv, int64_t qkv_stride, const void* cos,
                                        const void* signed_sin, const int64_t* slot, int64_t rows, int64_t heads,
                                        int64_t kv_heads, int64_t head_dim, void* q_out, void* keys, void* values,
                                        int64_t cache_row_stride, int64_t cache_head_stride, void* stream);

// Grouped-query attention of one new token per row over its cache:
//   out[r, h, :] = softmax_j(scale * q[r, h] . k[r, h / rep, j]) v[r, h / rep, j]
// over the slots j <= slot[0] (read on the device, so a captured graph follows the step) with
// j < span and key_mask[r * mask_row_stride + j], and j >= first_slot[r] when first_slot (a
// [rows] int64 device array, read on the device like slot) is given. A row with no such slot
// gets zeros. The first slot is what lets a row placed late into a running batch (continuous
// batching) cost its own context: whole tiles of 32 slots below it are never read. With one key
// range the result is bit for bit the one without first_slot and with key_mask false below it.
// q [rows, kv_heads * rep, D] contiguous; out likewise. `splits` > 1 divides each row's slots
// into that many ranges worked on in parallel (for batches too small to fill the GPU) and needs
// scratch partial_out [rows * heads * splits * D] and partial_lse [rows * heads * splits].
struct DecodeAttention {
  const void* q = nullptr;
  const void* keys = nullptr;
  const void* values = nullptr;
  int64_t cache_row_stride = 0, cache_head_stride = 0;
  const bool* key_mask = nullptr;
  int64_t mask_row_stride = 0;
  const int64_t* slot = nullptr;
  const int64_t* first_slot = nullptr;  // optional, [rows]
  int64_t rows = 0, kv_heads = 0, rep = 0, head_dim = 0, span = 0;
  float scale = 1.0f;
  int splits = 1;
  float* partial_out = nullptr;
  float* partial_lse = nullptr;
  void* out = nullptr;
};
const char* launch_decode_attention(Dtype type, const DecodeAttention& args, void* stream);

// The number of key ranges per row that keeps the GPU busy for this batch (1 for large ones).
int decode_attention_splits(int64_t rows, int64_t kv_heads, int64_t span);

}  // namespace aha::cuda
