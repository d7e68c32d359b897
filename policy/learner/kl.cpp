#include "policy/learner/kl.h"

#include "core/error.h"

namespace aha::policy {

KlEstimator parse_kl_estimator(const std::string& name) {
  if (name == "k1") return KlEstimator::k1;
  if (name == "k2") return KlEstimator::k2;
  if (name == "k3") return KlEstimator::k3;
  throw Error("kl: unknown estimator '" + name + "' (known: k1, k2, k3)");
}

torch::Tensor per_token_kl(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                           KlEstimator estimator) {
  require(logprobs.defined() && ref_logprobs.defined(),
          "kl: logprobs and ref_logprobs must both be defined");
  require(logprobs.sizes() == ref_logprobs.sizes(),
          "kl: ref_logprobs shape " + c10::str(ref_logprobs.sizes()) +
              " differs from logprobs shape " + c10::str(logprobs.sizes()));
  auto ref = ref_logprobs.detach().to(logprobs.scalar_type());
  switch (estimator) {
    case KlEstimator::k1:
      return logprobs - ref;
    case KlEstimator::k2:
      return 0.5 * (logprobs - ref).square();
    case KlEstimator::k3: {
      auto d = (ref - logprobs).clamp(-20.0, 20.0);
      return (d.exp() - d - 1.0).clamp_max(10.0);
    }
  }
  throw Error("kl: invalid estimator");
}

torch::Tensor sequence_kl(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                          const torch::Tensor& mask, KlEstimator estimator) {
  require(mask.defined() && mask.sizes() == logprobs.sizes(),
          "kl: mask must have the shape of logprobs " + c10::str(logprobs.sizes()));
  torch::NoGradGuard no_grad;
  auto kl = per_token_kl(logprobs.detach(), ref_logprobs, estimator);
  return (kl * mask.to(kl.scalar_type())).sum(1);
}

}  // namespace aha::policy
