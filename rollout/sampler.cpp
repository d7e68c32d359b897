#include "rollout/sampler.h"

#include <limits>

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
  auto scaled = logits.to(torch::kFloat32);
  if (s.temperature == 0.0) {
    auto tokens = scaled.argmax(-1);
    auto lp = torch::log_softmax(scaled, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    return {tokens, lp};
  }
  if (s.temperature != 1.0) scaled = scaled / s.temperature;
  auto logp = torch::log_softmax(scaled, -1);  // [B, V] the untruncated behaviour distribution
  const int64_t V = scaled.size(-1);
  torch::Tensor probs;
  torch::Tensor order;  // when sorted: sorted position -> token id
  const bool top_k = s.top_k > 0 && s.top_k < V;
  if (s.top_p < 1.0) {
    auto sorted = logp.sort(-1, /*descending=*/true);
    auto sorted_logp = std::get<0>(sorted);
    order = std::get<1>(sorted);
    probs = sorted_logp.exp();
    if (top_k) probs.narrow(-1, s.top_k, V - s.top_k).zero_();
    // Keep the smallest prefix whose mass reaches top_p (of the top-k mass when both apply):
    // a token stays when the mass before it is below the threshold.
    auto cumulative = probs.cumsum(-1);
    auto before = cumulative - probs;
    auto total = cumulative.narrow(-1, V - 1, 1);
    probs = probs.masked_fill(before >= total * s.top_p, 0.0f);
  } else {
    probs = logp.exp();
    if (top_k) {
      auto kth = std::get<0>(scaled.topk(s.top_k, -1)).narrow(-1, s.top_k - 1, 1);  // [B, 1]
      probs = probs.masked_fill(scaled < kth, 0.0f);
    }
  }
  auto cdf = probs.cumsum(-1);
  auto total = cdf.narrow(-1, V - 1, 1).contiguous();  // [B, 1]
  auto target = uniforms.to(cdf.device()).view({-1, 1}) * total;
  auto index = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true);
  // u * total can round up to total: never step past the last token that carries mass.
  index = torch::minimum(index, torch::searchsorted(cdf, total, /*out_int32=*/false, /*right=*/false));
  index = index.clamp_max(V - 1);  // NaN logits must not index past the vocabulary (a device assert)
  auto tokens = order.defined() ? order.gather(-1, index) : index;
  auto lp = logp.gather(-1, tokens).squeeze(-1);
  return {tokens.squeeze(-1), lp};
}

}  // namespace aha
