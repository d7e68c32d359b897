#include "policy/learner/off_policy_correction.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace aha::policy {
namespace {

// The untruncated ratio pi_old / pi_behaviour, [B, T], in float64 for the figures and the cut.
torch::Tensor raw_ratio(const torch::Tensor& proximal, const torch::Tensor& behaviour) {
  require(proximal.defined() && behaviour.defined() && proximal.sizes() == behaviour.sizes(),
          "truncated IS: proximal and behaviour log-probs must be defined and of one shape, got " +
              (proximal.defined() ? c10::str(proximal.sizes()) : std::string("undefined")) + " and " +
              (behaviour.defined() ? c10::str(behaviour.sizes()) : std::string("undefined")));
  return (proximal.detach().to(torch::kFloat64) - behaviour.detach().to(torch::kFloat64).to(proximal.device()))
      .clamp(-20.0, 20.0)
      .exp();
}

}  // namespace

void validate_tis_cap(double cap) {
  require(std::isfinite(cap) && cap > 0, "algorithm.tis_cap must be a finite number > 0 (verl's default is 2), got " +
                                             std::to_string(cap));
}

torch::Tensor truncated_is_weights(const torch::Tensor& proximal, const torch::Tensor& behaviour,
                                   const torch::Tensor& mask, double cap) {
  validate_tis_cap(cap);
  auto ratio = raw_ratio(proximal, behaviour);
  require(mask.defined() && mask.sizes() == ratio.sizes(), "truncated IS: mask must have the log-probs' shape");
  auto real = mask.to(ratio.device()) != 0;
  return torch::where(real, ratio.clamp_max(cap), torch::ones_like(ratio)).to(torch::kFloat32);
}

TruncatedIsStats truncated_is_stats(const torch::Tensor& proximal, const torch::Tensor& behaviour,
                                    const torch::Tensor& mask, double cap) {
  validate_tis_cap(cap);
  auto ratio = raw_ratio(proximal, behaviour);
  require(mask.defined() && mask.sizes() == ratio.sizes(), "truncated IS: mask must have the log-probs' shape");
  auto real = mask.to(ratio.device()) != 0;
  TruncatedIsStats s;
  s.tokens = real.sum().item<int64_t>();
  if (s.tokens == 0) return s;
  auto w = ratio.masked_select(real);
  auto figures = torch::stack({w.clamp_max(cap).mean(), w.clamp_max(cap).max(), (w > cap).to(torch::kFloat64).mean()})
                     .cpu();
  s.weight_mean = figures[0].item<double>();
  s.weight_max = figures[1].item<double>();
  s.truncated_frac = figures[2].item<double>();
  return s;
}

PolicyBatch decoupled_batch(const GrpoTrainer& trainer, const PolicyBatch& batch, double cap, TruncatedIsStats* stats) {
  validate_tis_cap(cap);
  batch.validate();
  auto proximal = trainer.policy_logprobs(batch).to(torch::kCPU, torch::kFloat32);  // [B, T-1]
  auto behaviour = batch.old_logprobs.to(torch::kCPU, torch::kFloat32);
  PolicyBatch out = batch;
  out.is_weights = truncated_is_weights(proximal, behaviour, batch.completion_mask.to(torch::kCPU), cap);
  out.old_logprobs = proximal;
  if (stats) *stats = truncated_is_stats(proximal, behaviour, batch.completion_mask.to(torch::kCPU), cap);
  return out;
}

}  // namespace aha::policy
