#include "policy/model/varlen_attention.h"

#include <ATen/autocast_mode.h>
#include <ATen/ops/_flash_attention_forward.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace aha {
namespace {

void check_qkv(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const VarlenLayout& layout) {
  require(layout.defined(), "varlen attention: the layout is undefined");
  require(q.defined() && k.defined() && v.defined() && q.dim() == 3 && k.dim() == 3 && v.dim() == 3,
          "varlen attention: q, k and v must be [N, heads, head_dim]");
  require(q.size(0) == layout.tokens && k.size(0) == layout.tokens && v.size(0) == layout.tokens,
          "varlen attention: q, k and v must have the layout's " + std::to_string(layout.tokens) +
              " tokens, got q " + c10::str(q.sizes()) + ", k " + c10::str(k.sizes()) + ", v " + c10::str(v.sizes()));
  require(k.sizes() == v.sizes(), "varlen attention: k " + c10::str(k.sizes()) + " and v " + c10::str(v.sizes()) +
                                      " differ in shape");
  require(q.size(2) == k.size(2), "varlen attention: q and k differ in head_dim");
  require(k.size(1) > 0 && q.size(1) % k.size(1) == 0,
          "varlen attention: q's " + std::to_string(q.size(1)) + " heads are not a multiple of k's " +
              std::to_string(k.size(1)));
}

}  // namespace

VarlenLayout varlen_layout(const torch::Tensor& segment_ids, torch::Device device) {
  require(segment_ids.defined() && segment_ids.dim() == 2 && segment_ids.numel() > 0,
          "varlen layout: segment_ids must be a non-empty [B, T] tensor");
  require(!segment_ids.is_floating_point(), "varlen layout: segment_ids must be integers");
  const int64_t B = segment_ids.size(0), T = segment_ids.size(1), N = B * T;
  require(N < std::numeric_limits<int32_t>::max(), "varlen layout: more tokens than the kernel's int32 offsets hold");
  auto seg = segment_ids.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* s = seg.data_ptr<int64_t>();
  std::vector<int32_t> starts;
  int64_t longest = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (i % T == 0 || s[i] != s[i - 1]) {
      if (!starts.empty()) longest = std::max<int64_t>(longest, i - starts.back());
      starts.push_back(static_cast<int32_t>(i));
    }
  }
  longest = std::max<int64_t>(longest, N - starts.back());
  starts.push_back(static_cast<int32_t>(N));
  VarlenLayout layout;
  layout.cu_seqlens = torch::tensor(starts, torch::kInt32).to(device);
  layout.max_seqlen = longest;
  layout.tokens = N;
  return layout;
}

bool varlen_attention_supported(torch::Device device, torch::ScalarType dtype, int64_t head_dim) {
  if (!device.is_cuda() || head_dim % 8 != 0 || head_dim > 256) return false;
  if (dtype == torch::kBFloat16 || dtype == torch::kHalf) return true;
  if (dtype != torch::kFloat32 || !at::autocast::is_autocast_enabled(at::kCUDA)) return false;
  const auto cast = at::autocast::get_autocast_dtype(at::kCUDA);
  return cast == torch::kBFloat16 || cast == torch::kHalf;
}

torch::Tensor varlen_causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const VarlenLayout& layout, double scale) {
  check_qkv(q, k, v, layout);
  require(q.is_cuda() && k.device() == q.device() && v.device() == q.device() &&
              layout.cu_seqlens.device() == q.device(),
          "varlen attention: q, k, v and the layout must be on one CUDA device (q is on " + q.device().str() + ")");
  auto dtype = q.scalar_type();
  if (dtype == torch::kFloat32 && at::autocast::is_autocast_enabled(at::kCUDA))
    dtype = at::autocast::get_autocast_dtype(at::kCUDA);
  require(dtype == torch::kBFloat16 || dtype == torch::kHalf,
          "varlen attention: the flash kernel needs bfloat16 or float16 inputs (or CUDA autocast), got " +
              std::string(c10::toString(q.scalar_type())));
  require(q.size(2) % 8 == 0 && q.size(2) <= 256,
          "varlen attention: head_dim must be a multiple of 8 up to 256, got " + std::to_string(q.size(2)));
  // The kernel reads rows with unit stride in head_dim; rotary embeddings leave q and k
  // transposed views, and under autocast in float32 (the rotary tables are float32).
  auto prepare = [&](const torch::Tensor& t) { return t.to(dtype).contiguous(); };
  auto result = at::_flash_attention_forward(prepare(q), prepare(k), prepare(v), layout.cu_seqlens,
                                             layout.cu_seqlens, layout.max_seqlen, layout.max_seqlen,
                                             /*dropout_p=*/0.0, /*is_causal=*/true, /*return_debug_mask=*/false,
                                             std::optional<double>(scale));
  return std::get<0>(result);
}

torch::Tensor varlen_masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const VarlenLayout& layout, double scale) {
  check_qkv(q, k, v, layout);
  const int64_t N = layout.tokens;
  // Sequence number of every token, from the boundaries.
  auto cu = layout.cu_seqlens.to(torch::kCPU, torch::kInt64);
  auto lengths = cu.narrow(0, 1, cu.size(0) - 1) - cu.narrow(0, 0, cu.size(0) - 1);
  auto sequence = torch::repeat_interleave(torch::arange(lengths.size(0), torch::kInt64), lengths).to(q.device());
  auto index = torch::arange(N, torch::TensorOptions().dtype(torch::kInt64).device(q.device()));
  auto mask = sequence.view({N, 1}).eq(sequence.view({1, N})).logical_and(index.view({N, 1}) >= index.view({1, N}));
  const int64_t rep = q.size(1) / k.size(1);
  auto heads_first = [](const torch::Tensor& t) { return t.to(torch::kFloat32).transpose(0, 1).unsqueeze(0); };
  auto out = at::scaled_dot_product_attention(heads_first(q), heads_first(k.repeat_interleave(rep, 1)),
                                              heads_first(v.repeat_interleave(rep, 1)), mask.view({1, 1, N, N}), 0.0,
                                              false, scale);
  return out.squeeze(0).transpose(0, 1).contiguous();  // [N, Hq, D] float32
}

}  // namespace aha
