// Transformer's decode step on the CUDA kernels of cuda_decode.h: one new token per row, the
// residual stream kept in one [B, H] buffer and updated in place, each layer
//   qkv product -> rotary + cache write -> attention -> o product -> add + RMSNorm
//   -> gate/up product -> SiLU * up -> down product -> add + RMSNorm (the next layer's input norm,
//   or the final norm after the last layer)
// i.e. 8 launches a layer instead of about 20. Products stay cuBLAS through LibTorch; the
// attention is SDPA unless the decode attention kernel is switched on (see transformer.h).
#include "core/error.h"
#include "policy/model/transformer.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "policy/model/cuda_decode.h"
#include "policy/model/cuda_decode_args.h"
#endif

#include <cmath>
#include <string>

namespace aha {

bool Transformer::uses_decode_kernels(int64_t new_tokens, const FusedProjections* fused) const {
#ifdef AHA_WITH_CUDA
  const auto& c = config_;
  // The kernels know neither Qwen3's q/k norms (the rotary kernel reads q and k straight from
  // the qkv product) nor routed experts: such models take the LibTorch path.
  return decode_kernels_ && new_tokens == 1 && fused != nullptr && device_.is_cuda() &&
         (dtype_ == torch::kBFloat16 || dtype_ == torch::kHalf) && c.head_dim % 2 == 0 && !c.qk_norm && !c.is_moe();
#else
  (void)new_tokens, (void)fused;
  return false;
#endif
}

#ifdef AHA_WITH_CUDA
namespace {

void check_launch(const char* failure, const char* kernel) {
  if (failure) throw Error(std::string("transformer decode kernels: ") + kernel + " failed: " + failure);
}

}  // namespace

torch::Tensor Transformer::decode_step_cuda(const torch::Tensor& input_ids, const torch::Tensor& cos,
                                            const torch::Tensor& sin, const torch::Tensor& slots,
                                            const torch::Tensor& key_mask, KVCache& cache,
                                            const FusedProjections& fused) const {
  const auto& c = config_;
  const int64_t B = input_ids.size(0), H = c.hidden_size, D = c.head_dim, L = key_mask.size(1);
  const int64_t nh = c.num_attention_heads, kvh = c.num_key_value_heads, I = c.intermediate_size;
  const auto type = dtype_ == torch::kBFloat16 ? aha::cuda::Dtype::kBFloat16 : aha::cuda::Dtype::kFloat16;
  void* stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  const float eps = static_cast<float>(c.rms_norm_eps);
  const bool kernel_attention = decode_attention_kernel_ && aha::cuda::decode_attention_supports(D, nh / kvh);

  // The slot is read on the device (a captured graph follows it); the mask row by row.
  auto slot = slots.to(device_, torch::kInt64).contiguous();
  auto mask = key_mask.to(device_, torch::kBool);
  if (mask.stride(1) != 1) mask = mask.contiguous();
  auto cos_rows = cos.reshape({B, D}).contiguous();
  auto sin_rows = sin.reshape({B, D}).contiguous();

  auto x = torch::embedding(embed_, input_ids).reshape({B, H}).contiguous();  // the residual stream
  auto h = torch::empty_like(x);                                              // its normalised copy
  check_launch(aha::cuda::launch_add_rms_norm(type, x.data_ptr(), nullptr, layers_[0].input_norm.data_ptr(),
                                              h.data_ptr(), B, H, eps, stream),
               "RMSNorm");
  auto q = torch::empty({B, nh, D}, x.options());
  auto attention = torch::empty({B, nh * D}, x.options());
  auto gated = torch::empty({B, I}, x.options());
  torch::Tensor additive_mask;  // for SDPA
  // Each row's first slot: the kernel skips the slots below it unread, SDPA masks them.
  torch::Tensor first_slots;
  if (cache.first_slots.defined()) first_slots = cache.first_slots.to(device_, torch::kInt64).contiguous();
  if (!kernel_attention) additive_mask = attention_mask(mask, slot, first_slots);
  const int splits = kernel_attention ? aha::cuda::decode_attention_splits(B, kvh, L) : 1;
  torch::Tensor partial_out, partial_lse;
  if (splits > 1) {
    partial_out = torch::empty({B * nh * splits * D}, x.options().dtype(torch::kFloat32));
    partial_lse = torch::empty({B * nh * splits}, x.options().dtype(torch::kFloat32));
  }

  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto& w = layers_[l];
    auto& keys = cache.keys[l];
    auto& values = cache.values[l];
    require(keys.stride(3) == 1 && keys.stride(2) == D && values.strides() == keys.strides(),
            "transformer decode kernels: the KV cache must be [B, kv_heads, capacity, head_dim] with rows of slots");
    auto qkv = torch::linear(h, fused.qkv_weight[l], fused.qkv_bias[l]);  // [B, (nh + 2 kvh) D]
    check_launch(aha::cuda::launch_rope_and_cache_write(type, qkv.data_ptr(), qkv.stride(0), cos_rows.data_ptr(),
                                                        sin_rows.data_ptr(), slot.data_ptr<int64_t>(), B, nh, kvh, D,
                                                        q.data_ptr(), keys.data_ptr(), values.data_ptr(),
                                                        keys.stride(0), keys.stride(1), stream),
                 "rotary + cache write");
    if (kernel_attention) {
      auto args = decode_attention_args(q, keys, values, mask, slot, L, attention, first_slots);
      args.splits = splits;
      if (splits > 1) {
        args.partial_out = partial_out.data_ptr<float>();
        args.partial_lse = partial_lse.data_ptr<float>();
      }
      check_launch(aha::cuda::launch_decode_attention(type, args, stream), "decode attention");
    } else {
      auto out = at::scaled_dot_product_attention(q.view({B, kvh, nh / kvh, D}), keys.narrow(2, 0, L),
                                                  values.narrow(2, 0, L), additive_mask, 0.0, false,
                                                  1.0 / std::sqrt(double(D)));
      attention.copy_(out.reshape({B, nh * D}));
    }
    auto o = torch::linear(attention, w.o_weight, w.o_bias);
    check_launch(aha::cuda::launch_add_rms_norm(type, x.data_ptr(), o.data_ptr(), w.post_attention_norm.data_ptr(),
                                                h.data_ptr(), B, H, eps, stream),
                 "add + RMSNorm");
    auto gate_up = torch::linear(h, fused.gate_up_weight[l], fused.gate_up_bias[l]);  // [B, 2I]
    check_launch(aha::cuda::launch_silu_mul(type, gate_up.data_ptr(), gated.data_ptr(), B, I, stream), "SiLU * up");
    auto down = torch::linear(gated, w.down_weight, w.down_bias);
    const auto& next_norm = l + 1 < layers_.size() ? layers_[l + 1].input_norm : final_norm_;
    check_launch(aha::cuda::launch_add_rms_norm(type, x.data_ptr(), down.data_ptr(), next_norm.data_ptr(),
                                                h.data_ptr(), B, H, eps, stream),
                 "add + RMSNorm");
  }
  return h.view({B, 1, H});
}
#else
torch::Tensor Transformer::decode_step_cuda(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                            const torch::Tensor&, const torch::Tensor&, KVCache&,
                                            const FusedProjections&) const {
  throw Error("transformer decode kernels: this build has no CUDA");
}
#endif

}  // namespace aha
