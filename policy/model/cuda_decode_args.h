// The launch arguments of cuda::launch_decode_attention (cuda_decode.h) for LibTorch tensors, so
// that the decode step, its tests and its benchmark describe the tensors to the kernel one way.
// CUDA builds only.
#pragma once
#ifdef AHA_WITH_CUDA
#include <torch/torch.h>

#include <cmath>

#include "policy/model/cuda_decode.h"

namespace aha {

//   q, out   [B, kv_heads * rep, D] contiguous
//   keys, values  a layer's cache [B, kv_heads, capacity, D] with rows of slots
//   key_mask [B, >= span] bool, unit column stride; slot [1] int64 on the device
//   first_slot  undefined, or [B] int64 contiguous on the device (each row's first slot)
// One key range (splits = 1): callers that split set splits and the partial buffers.
inline cuda::DecodeAttention decode_attention_args(const torch::Tensor& q, const torch::Tensor& keys,
                                                   const torch::Tensor& values, const torch::Tensor& key_mask,
                                                   const torch::Tensor& slot, int64_t span, torch::Tensor& out,
                                                   const torch::Tensor& first_slot = {}) {
  const int64_t D = keys.size(3), kvh = keys.size(1);
  cuda::DecodeAttention a;
  a.q = q.data_ptr();
  a.keys = keys.data_ptr();
  a.values = values.data_ptr();
  a.cache_row_stride = keys.stride(0);
  a.cache_head_stride = keys.stride(1);
  a.key_mask = key_mask.data_ptr<bool>();
  a.mask_row_stride = key_mask.stride(0);
  a.slot = slot.data_ptr<int64_t>();
  if (first_slot.defined()) {
    TORCH_CHECK(first_slot.dim() == 1 && first_slot.size(0) == keys.size(0) && first_slot.is_contiguous() &&
                    first_slot.scalar_type() == torch::kInt64 && first_slot.device() == keys.device(),
                "decode attention: first_slot must be [rows] int64, contiguous, on the cache's device");
    a.first_slot = first_slot.data_ptr<int64_t>();
  }
  a.rows = keys.size(0);
  a.kv_heads = kvh;
  a.rep = q.size(1) / kvh;
  a.head_dim = D;
  a.span = span;
  a.scale = static_cast<float>(1.0 / std::sqrt(double(D)));
  a.out = out.data_ptr();
  return a;
}

}  // namespace aha
#endif
