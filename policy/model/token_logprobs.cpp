#include "policy/model/token_logprobs.h"

#include <torch/autograd.h>

#include "core/error.h"
#include "policy/model/device_memory.h"

namespace aha {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// logits / temperature in float32, as a new tensor unless the logits are float32 already and
// the temperature is 1 (never scaled in place: the logits may be the kept ones).
torch::Tensor scaled_float32(const torch::Tensor& logits, double temperature) {
  if (temperature == 1.0) return logits.to(torch::kFloat32);
  return logits.scalar_type() == torch::kFloat32 ? logits.div(temperature)
                                                 : logits.to(torch::kFloat32).div_(temperature);
}

// Whether ATen's CUDA softmax reads these logits as they are and writes float32 (its
// half_to_float mode): no float32 copy of the [len, V] chunk first, which costs as much memory
// traffic as the softmax itself. At temperature 1 only (a scaled copy is made anyway otherwise).
bool softmax_widens_itself(const torch::Tensor& logits, double temperature) {
  // LibTorch 2.11's CUDA softmax widens fp16 only ("conversion is supported for Half type only").
  return temperature == 1.0 && logits.is_cuda() && logits.scalar_type() == torch::kHalf;
}

// One chunk's float32 log-softmax [len, V] at the temperature, from its logits in the model dtype.
torch::Tensor chunk_log_softmax(const torch::Tensor& logits, double temperature) {
  if (softmax_widens_itself(logits, temperature)) return at::_log_softmax(logits, -1, /*half_to_float=*/true);
  return torch::log_softmax(scaled_float32(logits, temperature), -1);
}

// The chunk's float32 softmax [len, V], a new tensor (never written into the logits).
torch::Tensor chunk_softmax(const torch::Tensor& logits, double temperature) {
  if (softmax_widens_itself(logits, temperature)) return at::_softmax(logits, -1, /*half_to_float=*/true);
  return torch::softmax(scaled_float32(logits, temperature), -1);
}

// Writes d(sum_i g_i logprob_i)/d logits = g * (onehot(target) - softmax(logits / T)) / T into
// `out` (model dtype, [len, V]; may be `logits` itself), computed in float32 and rounded once.
void logits_gradient(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& g,
                     double temperature, torch::Tensor out) {
  auto probs = chunk_softmax(logits, temperature);  // new: `out` may alias `logits`
  auto target_probs = probs.gather(1, targets);
  at::mul_out(out, probs, g.neg().div_(temperature));  // float32 product, stored in out's dtype
  auto target_grad = target_probs.mul(g.neg()).add_(g).div_(temperature);
  out.scatter_(1, targets, target_grad.to(out.scalar_type()));
}

bool keep_logits(LogitsMemory mode, const torch::Tensor& hidden, int64_t vocab) {
  if (mode != LogitsMemory::automatic) return mode == LogitsMemory::keep;
  const int64_t bytes = hidden.size(0) * vocab * static_cast<int64_t>(hidden.element_size());
  const auto available = available_device_bytes(hidden.device());
  return bytes <= (available ? *available / 3 : int64_t(1) << 30);
}

struct ChunkedLogprobsFunction : torch::autograd::Function<ChunkedLogprobsFunction> {
  static tensor_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                             torch::Tensor targets, double temperature, int64_t chunk, bool want_entropy,
                             int64_t logits_memory) {
    const int64_t n = hidden.size(0), vocab = weight.size(0);
    const bool keep = (hidden.requires_grad() || weight.requires_grad()) &&
                      keep_logits(static_cast<LogitsMemory>(logits_memory), hidden, vocab);
    torch::Tensor kept;  // [n, V] in the model dtype, or undefined
    if (keep) kept = torch::empty({n, vocab}, hidden.options());
    auto logprobs = torch::empty({n}, hidden.options().dtype(torch::kFloat32));
    auto entropy = torch::empty({want_entropy ? n : 0}, logprobs.options());
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      auto h = hidden.narrow(0, start, len);
      torch::Tensor logits;  // [len, V]
      if (keep) {
        logits = kept.narrow(0, start, len);
        at::mm_out(logits, h, weight.t());
      } else {
        logits = torch::mm(h, weight.t());
      }
      auto logp = chunk_log_softmax(logits, temperature);
      logprobs.narrow(0, start, len).copy_(logp.gather(1, targets.narrow(0, start, len).unsqueeze(1)).squeeze(1));
      if (want_entropy) {
        // H = -sum p log p, as a batched row dot product (no [len, V] product tensor).
        auto p = logp.exp();
        entropy.narrow(0, start, len).copy_(torch::bmm(p.unsqueeze(1), logp.unsqueeze(2)).view({len}).neg());
      }
    }
    ctx->save_for_backward({hidden, weight, targets, kept});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    ctx->mark_non_differentiable({entropy});
    return {logprobs, entropy};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto hidden = saved[0], weight = saved[1], targets = saved[2], kept = saved[3];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    auto g = grad_outputs[0];
    const int64_t n = hidden.size(0);
    const bool want_hidden = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1);
    if (!g.defined()) g = torch::zeros({n}, hidden.options().dtype(torch::kFloat32));
    g = g.to(torch::kFloat32);
    torch::Tensor grad_hidden, grad_weight;
    if (kept.defined()) {
      // The kept logits become their gradient chunk by chunk, then two products over all rows
      // (each accumulates in float32 inside the matrix product and rounds once).
      for (int64_t start = 0; start < n; start += chunk) {
        const int64_t len = std::min(chunk, n - start);
        auto logits = kept.narrow(0, start, len);
        logits_gradient(logits, targets.narrow(0, start, len).unsqueeze(1), g.narrow(0, start, len).unsqueeze(1),
                        temperature, logits);
      }
      if (want_hidden) grad_hidden = torch::mm(kept, weight);
      if (want_weight) grad_weight = torch::mm(kept.t(), hidden);
    } else {
      if (want_hidden) grad_hidden = torch::empty_like(hidden);
      // Accumulate the weight gradient in float32: summing many bf16 chunk products would round.
      if (want_weight) grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
      for (int64_t start = 0; start < n; start += chunk) {
        const int64_t len = std::min(chunk, n - start);
        auto h = hidden.narrow(0, start, len);
        auto gl = torch::mm(h, weight.t());  // the logits, then in place their gradient
        logits_gradient(gl, targets.narrow(0, start, len).unsqueeze(1), g.narrow(0, start, len).unsqueeze(1),
                        temperature, gl);
        if (want_hidden) grad_hidden.narrow(0, start, len).copy_(torch::mm(gl, weight));
        if (want_weight) grad_weight.add_(torch::mm(gl.t(), h));
      }
      if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    }
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

TokenLogprobs chunked_token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, double temperature, bool want_entropy,
                                     int64_t chunk_tokens, int64_t chunk_bytes, LogitsMemory logits_memory) {
  require(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
          "token log-probs: hidden [N, H] and weight [V, H] must share H");
  require(targets.dim() == 1 && targets.size(0) == hidden.size(0), "token log-probs: targets must be [N]");
  require(temperature > 0, "token log-probs: temperature must be positive");
  require(hidden.scalar_type() == weight.scalar_type(), "token log-probs: hidden and weight must share a dtype");
  const int64_t vocab = weight.size(0);
  if (chunk_tokens <= 0) chunk_tokens = std::max<int64_t>(1, chunk_bytes / (vocab * 4));
  auto out = ChunkedLogprobsFunction::apply(hidden, weight, targets.to(torch::kInt64), temperature, chunk_tokens,
                                            want_entropy, static_cast<int64_t>(logits_memory));
  return {out[0], out[1]};
}

}  // namespace aha
