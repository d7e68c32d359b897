#include "policy/learner/grpo_loss.h"

#include "core/error.h"

namespace aha::policy {
namespace {

void check_bt(const torch::Tensor& t, const char* name, const torch::Tensor& like) {
  require(t.sizes() == like.sizes(), std::string("grpo_loss: ") + name + " shape " +
                                         c10::str(t.sizes()) + " differs from logprobs shape " +
                                         c10::str(like.sizes()));
  require(t.device() == like.device(), std::string("grpo_loss: ") + name + " is on " +
                                           t.device().str() + " but logprobs is on " +
                                           like.device().str());
}

void check_inputs(const GrpoLossInputs& in, const GrpoLossOptions& options) {
  require(in.logprobs.defined() && in.logprobs.dim() == 2,
          "grpo_loss: logprobs must be a defined [B, T] tensor");
  require(in.logprobs.is_floating_point(), "grpo_loss: logprobs must be floating-point");
  require(in.old_logprobs.defined(), "grpo_loss: old_logprobs is undefined");
  check_bt(in.old_logprobs, "old_logprobs", in.logprobs);
  require(in.mask.defined(), "grpo_loss: mask is undefined");
  check_bt(in.mask, "mask", in.logprobs);
  if (in.sequence_index.defined()) {
    require(in.sequence_index.sizes() == in.logprobs.sizes() && in.sequence_index.scalar_type() == torch::kInt64,
            "grpo_loss: sequence_index must be int64 of the logprobs shape " + c10::str(in.logprobs.sizes()) +
                ", got " + c10::str(in.sequence_index.sizes()));
    require(in.sequence_index.device() == in.logprobs.device(),
            "grpo_loss: sequence_index must be on the device of logprobs");
    require(in.advantages.defined() && in.advantages.dim() == 1,
            "grpo_loss: advantages must be [S] (one per packed sequence)");
  } else {
    require(in.advantages.defined() && in.advantages.dim() == 1 && in.advantages.size(0) == in.logprobs.size(0),
            "grpo_loss: advantages must be [B] with B = " + std::to_string(in.logprobs.size(0)));
  }
  require(in.advantages.device() == in.logprobs.device(),
          "grpo_loss: advantages must be on the device of logprobs");
  if (options.beta > 0.0)
    require(in.ref_logprobs.defined(), "grpo_loss: beta > 0 needs ref_logprobs");
  if (in.ref_logprobs.defined()) check_bt(in.ref_logprobs, "ref_logprobs", in.logprobs);
  if (options.entropy_coef != 0.0)
    require(in.entropy.defined(), "grpo_loss: entropy_coef != 0 needs entropy");
  if (in.entropy.defined()) check_bt(in.entropy, "entropy", in.logprobs);
  if (in.is_weights.defined()) check_bt(in.is_weights, "is_weights", in.logprobs);
  require(in.total_tokens >= 0 && in.total_sequences >= 0,
          "grpo_loss: total_tokens and total_sequences must be >= 0");
}

// Sequences of the header: the rows, or with sequence_index the packed sequences. m is the
// float mask [B, T], already 0 where sequence_index is -1.
class Sequences {
 public:
  Sequences(const torch::Tensor& sequence_index, int64_t count) : count_(count) {
    if (!sequence_index.defined()) return;
    index_ = sequence_index.clamp_min(0).reshape({-1});  // -1 slots add (masked) zeros to sequence 0
    shape_ = sequence_index.sizes().vec();
  }
  // Per-sequence sums of x [B, T] (already masked): [B] or [S].
  torch::Tensor sum(const torch::Tensor& x) const {
    if (!index_.defined()) return x.sum(1);
    return torch::zeros({count_}, x.options()).index_add(0, index_, x.reshape({-1}));
  }
  // Per-sequence values v ([B] or [S]) at each token: [B, 1] (broadcasts) or [B, T].
  torch::Tensor per_token(const torch::Tensor& v) const {
    if (!index_.defined()) return v.unsqueeze(1);
    return v.index_select(0, index_).view(shape_);
  }

 private:
  int64_t count_;
  torch::Tensor index_;
  std::vector<int64_t> shape_;
};

// Reduces x [B, T] to the scalar agg(x) of the header, masked by m (float, [B, T]).
class Aggregator {
 public:
  Aggregator(const torch::Tensor& m, const GrpoLossOptions& options, const GrpoLossInputs& in, const Sequences& seqs)
      : m_(m), options_(options), seqs_(seqs) {
    seq_tokens_ = seqs.sum(m);  // [B] or [S]
    token_count_ = seq_tokens_.sum();
    sequence_count_ = (seq_tokens_ > 0).sum().to(m.scalar_type());
    token_norm_ = in.total_tokens > 0 ? torch::full({}, double(in.total_tokens), m.options())
                                      : token_count_.clamp_min(1.0);
    seq_norm_ = in.total_sequences > 0 ? torch::full({}, double(in.total_sequences), m.options())
                                       : sequence_count_.clamp_min(1.0);
  }

  torch::Tensor operator()(const torch::Tensor& x) const {
    auto masked = x * m_;
    switch (options_.aggregation) {
      case LossAggregation::token_mean:
        return masked.sum() / token_norm_;
      case LossAggregation::seq_mean_token_mean:
        return (seqs_.sum(masked) / seq_tokens_.clamp_min(1.0)).sum() / seq_norm_;
      case LossAggregation::seq_sum_const_len:
        return (seqs_.sum(masked) / double(options_.const_length)).sum() / seq_norm_;
    }
    throw Error("grpo_loss: invalid aggregation");
  }

  // Plain mean over this call's completion tokens, for metrics.
  torch::Tensor token_mean(const torch::Tensor& x) const {
    return (x * m_).sum() / token_count_.clamp_min(1.0);
  }

  const torch::Tensor& seq_tokens() const { return seq_tokens_; }
  const torch::Tensor& token_count() const { return token_count_; }
  const torch::Tensor& sequence_count() const { return sequence_count_; }

 private:
  torch::Tensor m_;
  const GrpoLossOptions& options_;
  const Sequences& seqs_;
  torch::Tensor seq_tokens_, token_count_, sequence_count_, token_norm_, seq_norm_;
};

}  // namespace

LossAggregation parse_loss_aggregation(const std::string& name) {
  if (name == "token_mean") return LossAggregation::token_mean;
  if (name == "seq_mean_token_mean") return LossAggregation::seq_mean_token_mean;
  if (name == "seq_sum_const_len") return LossAggregation::seq_sum_const_len;
  throw Error("grpo_loss: unknown aggregation '" + name +
              "' (known: token_mean, seq_mean_token_mean, seq_sum_const_len)");
}

void validate(const GrpoLossOptions& o) {
  // eps_low >= 1 puts the lower bound at or below 0, where no ratio reaches it: no lower clip
  // (the DeepSeek-R1 report trains with a clip ratio of 10).
  require(o.clip_eps_low >= 0.0, "grpo_loss: clip_eps_low must be >= 0, got " + std::to_string(o.clip_eps_low));
  require(o.clip_eps_high >= 0.0,
          "grpo_loss: clip_eps_high must be >= 0, got " + std::to_string(o.clip_eps_high));
  if (o.dual_clip_c)
    require(*o.dual_clip_c > 1.0,
            "grpo_loss: dual_clip_c must be > 1, got " + std::to_string(*o.dual_clip_c));
  require(o.beta >= 0.0, "grpo_loss: beta must be >= 0, got " + std::to_string(o.beta));
  if (o.aggregation == LossAggregation::seq_sum_const_len)
    require(o.const_length > 0, "grpo_loss: seq_sum_const_len needs const_length > 0, got " +
                                    std::to_string(o.const_length));
}

GrpoLossResult grpo_loss(const GrpoLossInputs& in, const GrpoLossOptions& options) {
  validate(options);
  check_inputs(in, options);
  const auto dtype =
      in.logprobs.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto logp = in.logprobs.to(dtype);
  auto old_logp = in.old_logprobs.detach().to(dtype);
  auto m = in.mask.to(dtype);
  auto valid = in.mask != 0;
  if (in.sequence_index.defined()) {
    valid = valid & (in.sequence_index >= 0);
    m = m * valid.to(dtype);
  }
  const Sequences seqs(in.sequence_index, in.advantages.size(0));
  auto adv = seqs.per_token(in.advantages.detach().to(dtype));  // [B, 1], or [B, T] packed
  Aggregator agg(m, options, in, seqs);

  auto log_ratio = logp - old_logp;  // [B, T]
  torch::Tensor ratio;
  if (options.sequence_ratio) {
    auto seq_log_ratio = seqs.sum(log_ratio * m) / agg.seq_tokens().clamp_min(1.0);  // [B] or [S]
    ratio = seqs.per_token(seq_log_ratio.clamp_max(10.0).exp()).expand_as(logp);
  } else {
    ratio = log_ratio.clamp(-20.0, 20.0).exp();
  }

  const double low = 1.0 - options.clip_eps_low, high = 1.0 + options.clip_eps_high;
  auto unclipped = -adv * ratio;
  auto clipped = -adv * ratio.clamp(low, high);
  auto per_token = torch::maximum(unclipped, clipped);
  auto negative = (adv < 0).expand_as(logp);
  torch::Tensor dual_active = torch::zeros_like(valid);
  if (options.dual_clip_c) {
    auto bound = -adv * *options.dual_clip_c;  // as adv, positive where A < 0
    dual_active = negative & (per_token > bound);
    per_token = torch::where(negative, torch::minimum(per_token, bound), per_token);
  }
  // Decoupled PPO (AReaL): the clipped surrogate is taken against the proximal policy and
  // weighted by the truncated behaviour correction; the weight carries no gradient.
  if (in.is_weights.defined()) per_token = per_token * in.is_weights.detach().to(dtype);

  GrpoLossResult result;
  auto& metrics = result.metrics;
  metrics.policy_loss = agg(per_token);
  auto loss = metrics.policy_loss;
  if (in.ref_logprobs.defined()) {
    auto ref = in.ref_logprobs.detach().to(dtype);
    if (options.beta > 0.0) {
      metrics.kl_loss = agg(per_token_kl(logp, ref, options.kl_estimator));
      loss = loss + options.beta * metrics.kl_loss;
    }
    metrics.approx_kl = agg.token_mean(per_token_kl(logp.detach(), ref, KlEstimator::k3));
  }
  if (in.entropy.defined()) {
    metrics.entropy = agg(in.entropy.to(dtype));
    if (options.entropy_coef != 0.0) loss = loss - options.entropy_coef * metrics.entropy;
  }
  result.loss = loss;

  torch::NoGradGuard no_grad;
  auto r = ratio.detach();
  auto positive = (adv > 0).expand_as(logp);
  metrics.policy_loss = metrics.policy_loss.detach();
  if (metrics.kl_loss.defined()) metrics.kl_loss = metrics.kl_loss.detach();
  if (metrics.entropy.defined()) metrics.entropy = metrics.entropy.detach();
  metrics.clip_frac_low = agg.token_mean(((r < low) & negative).to(dtype));
  metrics.clip_frac_high = agg.token_mean(((r > high) & positive).to(dtype));
  metrics.dual_clip_frac = agg.token_mean(dual_active.to(dtype));
  metrics.ppo_kl = agg.token_mean(-log_ratio.detach());
  metrics.ratio_mean = agg.token_mean(r);
  metrics.ratio_max = r.masked_fill(valid.logical_not(), 0.0).max();
  metrics.ratio_min = r.masked_fill(valid.logical_not(), INFINITY).min();
  metrics.token_count = agg.token_count();
  metrics.sequence_count = agg.sequence_count();
  return result;
}

std::vector<std::pair<std::string, double>> GrpoLossMetrics::named_values() const {
  std::vector<std::pair<std::string, const torch::Tensor*>> fields = {
      {"train/policy_loss", &policy_loss},
      {"train/kl_loss", &kl_loss},
      {"train/entropy", &entropy},
      {"train/clip_frac_low", &clip_frac_low},
      {"train/clip_frac_high", &clip_frac_high},
      {"train/dual_clip_frac", &dual_clip_frac},
      {"train/ppo_kl", &ppo_kl},
      {"train/kl", &approx_kl},
      {"train/ratio_mean", &ratio_mean},
      {"train/ratio_max", &ratio_max},
      {"train/ratio_min", &ratio_min},
      {"train/tokens", &token_count},
      {"train/sequences", &sequence_count}};
  std::vector<std::string> names;
  std::vector<torch::Tensor> values;
  for (auto& [name, tensor] : fields) {
    if (!tensor->defined()) continue;
    names.push_back(name);
    values.push_back(tensor->detach().to(torch::kFloat64).reshape({}));
  }
  std::vector<std::pair<std::string, double>> out;
  if (values.empty()) return out;
  auto host = torch::stack(values).cpu();
  auto* data = host.data_ptr<double>();
  for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], data[i]);
  return out;
}

}  // namespace aha::policy
