// The rotary embedding of a whole sequence batch (prefill and the learner) in one CUDA launch,
// forward and backward (policy/model/cuda_rope.cu, compiled only in a CUDA build; rotary.cpp's
// apply_rope calls it). No LibTorch here: raw device pointers, as in cuda_decode.h.
//
// LibTorch's x * cos + swap_halves(x) * signed_sin is four kernels forward (a flip, two
// broadcast products, a sum) and as many backward, each reading and writing the whole [B, heads,
// T, D] tensor. This kernel reads each element once and rounds exactly where those ops round:
//   out[i]     = r(r(a[i]     * cos[i])     + r(a[i + h] * t[i]))
//   out[i + h] = r(r(a[i + h] * cos[i + h]) + r(a[i]     * t[i + h]))      (h = D / 2)
// with r() the rounding to the element type, t the signed sin table forward, and backward (where
// a is the incoming gradient) the same table with its halves exchanged: d/dx of the swapped
// product reads the partner's sin. So both directions equal LibTorch's results bit for bit.
#pragma once
#include <cstdint>

namespace aha::cuda {

enum class RopeDtype { kBFloat16, kFloat16, kFloat32 };

// Shapes and element strides of a [B, heads, T, D] operand (its last dimension contiguous); the
// tables' strides may be 0 on broadcast dimensions.
struct RopeOperand {
  const void* data = nullptr;
  int64_t stride[3] = {0, 0, 0};  // B, heads, T
};

// out (strides out_stride) = the rotation of `in` by the tables, as above; backward exchanges
// the sin table's halves. Returns null on success, otherwise CUDA's error string.
const char* launch_rope(RopeDtype type, RopeOperand in, RopeOperand cos, RopeOperand signed_sin, void* out,
                        const int64_t out_stride[3], int64_t batch, int64_t heads, int64_t tokens, int64_t head_dim,
                        bool backward, void* stream);

}  // namespace aha::cuda
