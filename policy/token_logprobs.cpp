#include "policy/token_logprobs.h"

#include <torch/autograd.h>

#include "core/error.h"

namespace aha {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// One chunk's float32 logits, already divided by the temperature.
torch::Tensor chunk_logits(const torch::Tensor& h, const torch::Tensor& weight, double temperature) {
  auto logits = torch::mm(h, weight.t()).to(torch::kFloat32);
  return temperature == 1.0 ? logits : logits.div_(temperature);
}

struct ChunkedLogprobsFunction : torch::autograd::Function<ChunkedLogprobsFunction> {
  static tensor_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                             torch::Tensor targets, double temperature, int64_t chunk, bool want_entropy) {
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    const int64_t n = hidden.size(0);
    auto logprobs = torch::empty({n}, hidden.options().dtype(torch::kFloat32));
    auto entropy = torch::empty({want_entropy ? n : 0}, logprobs.options());
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      auto logits = chunk_logits(hidden.narrow(0, start, len), weight, temperature);  // [len, V]
      auto lse = torch::logsumexp(logits, -1);
      auto chosen = logits.gather(1, targets.narrow(0, start, len).unsqueeze(1)).squeeze(1);
      logprobs.narrow(0, start, len).copy_(chosen - lse);
      if (want_entropy) {
        // H = lse - sum(p * logits)
        auto p = torch::softmax(logits, -1);
        entropy.narrow(0, start, len).copy_(lse - (p * logits).sum(-1));
      }
    }
    ctx->mark_non_differentiable({entropy});
    return {logprobs, entropy};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto hidden = saved[0], weight = saved[1], targets = saved[2];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    auto g = grad_outputs[0];
    const int64_t n = hidden.size(0);
    torch::Tensor grad_hidden, grad_weight;
    if (ctx->needs_input_grad(0)) grad_hidden = torch::empty_like(hidden);
    // Accumulate the weight gradient in float32: summing many bf16 chunk products would round.
    if (ctx->needs_input_grad(1)) grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
    if (!g.defined()) g = torch::zeros({n}, hidden.options().dtype(torch::kFloat32));
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      auto h = hidden.narrow(0, start, len);
      auto gc = g.narrow(0, start, len).unsqueeze(1);  // [len, 1]
      auto logits = chunk_logits(h, weight, temperature);
      // d logprob[target] / d logits = onehot(target) - softmax(logits), times 1/temperature.
      auto grad_logits = torch::softmax(logits, -1).mul_(-gc);
      grad_logits.scatter_add_(1, targets.narrow(0, start, len).unsqueeze(1), gc);
      if (temperature != 1.0) grad_logits.div_(temperature);
      auto gl = grad_logits.to(hidden.scalar_type());
      if (grad_hidden.defined()) grad_hidden.narrow(0, start, len).copy_(torch::mm(gl, weight));
      if (grad_weight.defined()) grad_weight.add_(torch::mm(gl.t(), h));
    }
    if (grad_weight.defined()) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

TokenLogprobs chunked_token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, double temperature, bool want_entropy,
                                     int64_t chunk_tokens, int64_t chunk_bytes) {
  require(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
          "token log-probs: hidden [N, H] and weight [V, H] must share H");
  require(targets.dim() == 1 && targets.size(0) == hidden.size(0), "token log-probs: targets must be [N]");
  require(temperature > 0, "token log-probs: temperature must be positive");
  const int64_t vocab = weight.size(0);
  if (chunk_tokens <= 0) chunk_tokens = std::max<int64_t>(1, chunk_bytes / (vocab * 4));
  auto out = ChunkedLogprobsFunction::apply(hidden, weight, targets.to(torch::kInt64), temperature,
                                            chunk_tokens, want_entropy);
  return {out[0], out[1]};
}

}  // namespace aha
