#include "rollout/sampler.h"

#include <algorithm>

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "rollout/cuda_sampler.h"
#endif

#include "core/error.h"

namespace aha {
namespace {

// murmur3's 32-bit finaliser on int64 tensors holding values in [0, 2^32). Products may
// overflow int64, but the low 32 bits (all we keep) are those of the unsigned product.
torch::Tensor mix32(torch::Tensor h) {
  const int64_t mask = 0xffffffffLL;
  h = h.bitwise_xor(h.bitwise_right_shift(16));
  h = (h * 0x85ebca6bLL).bitwise_and(mask);
  h = h.bitwise_xor(h.bitwise_right_shift(13));
  h = (h * 0xc2b2ae35LL).bitwise_and(mask);
  return h.bitwise_xor(h.bitwise_right_shift(16));
}

// The largest divisor of V up to 512: the vocabulary splits into equal blocks.
int64_t block_width(int64_t V) {
  for (int64_t w = std::min<int64_t>(V, 512); w > 1; --w) {
    if (V % w == 0) return w;
  }
  return 1;
}

// Inverse CDF of unnormalised masses [B, V] at u * total: the first token whose cumulative mass
// exceeds the target. Done in two levels, blocks of the vocabulary then tokens within the
// chosen block, so that the [B, V] masses are only read once (block sums) and no [B, V]
// cumulative sum is written. Returns [B, 1] indices, always of a token with positive mass.
torch::Tensor inverse_cdf(const torch::Tensor& mass, const torch::Tensor& u) {
  const int64_t B = mass.size(0), V = mass.size(1), width = block_width(V), blocks = V / width;
  auto block_mass = mass.reshape({B, blocks, width}).sum(-1);  // [B, blocks]
  auto block_cdf = block_mass.cumsum(-1);
  auto total = block_cdf.narrow(-1, blocks - 1, 1).contiguous();
  auto target = u.view({B, 1}) * total;
  auto block = torch::searchsorted(block_cdf, target, /*out_int32=*/false, /*right=*/true);
  // u * total can round up to total: never step past the last block that carries mass (nor,
  // with NaN logits, past the vocabulary, which would be a device assert).
  block = torch::minimum(block, torch::searchsorted(block_cdf, total, false, false)).clamp_max(blocks - 1);
  // The mass before the block, from the same cumulative sums that chose it, so that the
  // target left for the block is never negative.
  auto before = torch::cat({torch::zeros({B, 1}, block_cdf.options()), block_cdf}, 1).gather(-1, block);
  auto columns = block * width + torch::arange(width, block.options()).view({1, width});  // [B, width]
  auto inner_cdf = mass.gather(-1, columns).cumsum(-1);
  auto inner_total = inner_cdf.narrow(-1, width - 1, 1).contiguous();
  auto position = torch::searchsorted(inner_cdf, (target - before).contiguous(), false, true);
  position = torch::minimum(position, torch::searchsorted(inner_cdf, inner_total, false, false)).clamp_max(width - 1);
  return block * width + position;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void validate(const SamplerSettings& s) {
  require(s.temperature >= 0.0, "sampling: temperature must be >= 0 (0 = greedy), got " + std::to_string(s.temperature));
  require(s.top_k >= 0, "sampling: top_k must be >= 0 (0 = off), got " + std::to_string(s.top_k));
  require(s.top_p > 0.0 && s.top_p <= 1.0, "sampling: top_p must be in (0, 1], got " + std::to_string(s.top_p));
}

int64_t sample_stream_key(uint64_t seed, int64_t prompt_index, int64_t sample_index) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(prompt_index));
  h = splitmix64(h ^ (static_cast<uint64_t>(sample_index) << 32));
  return static_cast<int64_t>(h & 0x7fffffffffffffffULL);
}

torch::Tensor counter_uniforms(const torch::Tensor& row_keys, const torch::Tensor& step) {
  const int64_t mask = 0xffffffffLL;
  auto lo = row_keys.bitwise_and(mask);
  auto hi = row_keys.bitwise_right_shift(32).bitwise_and(mask);
  auto t = step.reshape({-1}).bitwise_and(mask);
  auto h = mix32(lo.bitwise_xor(mix32((t + 0x68e31da4LL).bitwise_and(mask))).bitwise_xor(mix32(hi)));
  h = mix32((h.bitwise_xor(hi) + 0x1b56c4e9LL).bitwise_and(mask));  // a second round: nearby keys decorrelate
  // The top 23 bits, centred in their bucket: strictly inside (0, 1) and exact in float32.
  return (h.bitwise_right_shift(9).to(torch::kFloat32) + 0.5f) * (1.0f / 8388608.0f);
}

SampledTokens sample_tokens(const torch::Tensor& logits, const SamplerSettings& s, const torch::Tensor& uniforms) {
  if (s.temperature == 0.0) {
    auto scaled = logits.to(torch::kFloat32);
    auto tokens = scaled.argmax(-1);
    auto lp = torch::log_softmax(scaled, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    return {tokens, lp};
  }
  // The untruncated behaviour distribution softmax(logits / T) in float32 (at T = 1 CUDA reads
  // bf16 logits directly, without a float32 copy).
  auto probs = s.temperature == 1.0 ? torch::softmax(logits, -1, torch::kFloat32)
                                    : torch::softmax(logits.to(torch::kFloat32) / s.temperature, -1);
  const int64_t V = probs.size(-1);
  torch::Tensor mass = probs;  // what is sampled from: probs with top-k / top-p truncation
  torch::Tensor order;         // when sorted: sorted position -> token id
  const bool top_k = s.top_k > 0 && s.top_k < V;
  if (s.top_p < 1.0) {
    auto sorted = probs.sort(-1, /*descending=*/true);
    mass = std::get<0>(sorted);
    order = std::get<1>(sorted);
    if (top_k) mass.narrow(-1, s.top_k, V - s.top_k).zero_();
    // Keep the smallest prefix whose mass reaches top_p (of the top-k mass when both apply):
    // a token stays when the mass before it is below the threshold.
    auto cumulative = mass.cumsum(-1);
    auto before = cumulative - mass;
    auto total = cumulative.narrow(-1, V - 1, 1);
    mass = mass.masked_fill(before >= total * s.top_p, 0.0f);
  } else if (top_k) {
    auto kth = std::get<0>(probs.topk(s.top_k, -1)).narrow(-1, s.top_k - 1, 1);  // [B, 1]
    mass = probs.masked_fill(probs < kth, 0.0f);
  }
  auto index = inverse_cdf(mass, uniforms.to(mass.device()));  // [B, 1]
  auto tokens = order.defined() ? order.gather(-1, index) : index;
  auto lp = probs.gather(-1, tokens).log().squeeze(-1);
  return {tokens.squeeze(-1), lp};
}

bool uses_fused_sampler(const torch::Tensor& logits, const SamplerSettings& s) {
#ifdef AHA_WITH_CUDA
  const auto type = logits.scalar_type();
  const bool truncated = (s.top_k > 0 && s.top_k < logits.size(-1)) || s.top_p < 1.0;
  return logits.is_cuda() && logits.dim() == 2 && !truncated &&
         (type == torch::kFloat32 || type == torch::kBFloat16 || type == torch::kFloat16);
#else
  return false;
#endif
}

SampledTokens sample_rows(const torch::Tensor& logits, const SamplerSettings& s, const torch::Tensor& row_keys,
                          const torch::Tensor& step, bool allow_fused) {
  if (allow_fused && uses_fused_sampler(logits, s)) return sample_tokens_fused(logits, s.temperature, row_keys, step);
  return sample_tokens(logits, s, counter_uniforms(row_keys, step));
}

SampledTokens sample_tokens_fused(const torch::Tensor& logits, double temperature, const torch::Tensor& row_keys,
                                  const torch::Tensor& step) {
#ifdef AHA_WITH_CUDA
  require(logits.is_cuda() && logits.dim() == 2, "sample_tokens_fused: logits must be a CUDA tensor [B, V]");
  require(temperature >= 0.0, "sample_tokens_fused: temperature must be >= 0");
  const int64_t B = logits.size(0), V = logits.size(1);
  require(row_keys.dim() == 1 && row_keys.size(0) == B && row_keys.scalar_type() == torch::kInt64 &&
              row_keys.device() == logits.device(),
          "sample_tokens_fused: row_keys must be [B] int64 on the logits' device");
  require((step.numel() == 1 || (step.dim() == 1 && step.size(0) == B)) && step.scalar_type() == torch::kInt64 &&
              step.device() == logits.device(),
          "sample_tokens_fused: step must be one int64, or [B] int64 (one per row), on the logits' device");
  aha::cuda::LogitsType type;
  switch (logits.scalar_type()) {
    case torch::kFloat32: type = aha::cuda::LogitsType::kFloat32; break;
    case torch::kBFloat16: type = aha::cuda::LogitsType::kBFloat16; break;
    case torch::kFloat16: type = aha::cuda::LogitsType::kFloat16; break;
    default: throw Error("sample_tokens_fused: logits must be float32, bfloat16 or float16");
  }
  // Rows may be strided (a narrow of a larger batch); each row's vocabulary must be contiguous.
  auto rows = logits.stride(1) == 1 ? logits : logits.contiguous();
  auto keys = row_keys.contiguous();
  auto step_now = step.contiguous();
  auto options = logits.options();
  SampledTokens out{torch::empty({B}, options.dtype(torch::kInt64)), torch::empty({B}, options.dtype(torch::kFloat32))};
  const char* failure = aha::cuda::launch_fused_sample(
      rows.data_ptr(), type, B, V, rows.stride(0), static_cast<float>(temperature), keys.data_ptr<int64_t>(),
      step_now.data_ptr<int64_t>(), step_now.numel() == 1 ? 0 : 1, out.tokens.data_ptr<int64_t>(), out.logprobs.data_ptr<float>(),
      c10::cuda::getCurrentCUDAStream(logits.device().index()).stream());
  require(failure == nullptr, std::string("sample_tokens_fused: kernel launch failed: ") + (failure ? failure : ""));
  return out;
#else
  (void)logits, (void)temperature, (void)row_keys, (void)step;
  throw Error("sample_tokens_fused: this build has no CUDA");
#endif
}

}  // namespace aha
