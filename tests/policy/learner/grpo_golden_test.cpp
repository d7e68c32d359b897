// Checks advantages, every loss mode, KL estimator and aggregation against golden values from
// an independent PyTorch reference (tests/fixtures/make_grpo_fixtures.py): values, metrics,
// gradients w.r.t. the log-probs, and gradients through a toy linear policy.
#include <gtest/gtest.h>

#include "core/files.h"
#include "core/json.h"
#include "policy/learner/advantages.h"
#include "policy/learner/grpo_loss.h"

namespace {

using aha::policy::GrpoLossOptions;

const rapidjson::Document& golden() {
  static const rapidjson::Document doc = aha::json::parse(
      aha::read_file(AHA_SOURCE_DIR "/tests/fixtures/grpo/grpo_golden.json"), "grpo_golden.json");
  return doc;
}

// A JSON number or nested list of numbers as a float64 tensor (undefined for null).
void flatten(const rapidjson::Value& v, std::vector<double>& out, std::vector<int64_t>& shape,
             size_t depth) {
  if (v.IsNumber()) {
    out.push_back(v.GetDouble());
    return;
  }
  ASSERT_TRUE(v.IsArray());
  if (shape.size() <= depth) shape.push_back(v.Size());
  for (const auto& item : v.GetArray()) flatten(item, out, shape, depth + 1);
}

torch::Tensor tensor(const rapidjson::Value& v) {
  if (v.IsNull()) return {};
  std::vector<double> data;
  std::vector<int64_t> shape;
  flatten(v, data, shape, 0);
  return torch::tensor(data, torch::kFloat64).reshape(shape);
}

GrpoLossOptions options_from(const rapidjson::Value& v) {
  aha::json::ObjectReader o(v, "options");
  GrpoLossOptions opt;
  opt.clip_eps_low = o.get_double("clip_eps_low");
  opt.clip_eps_high = o.get_double("clip_eps_high");
  if (o.has("dual_clip_c")) opt.dual_clip_c = o.get_double("dual_clip_c");
  opt.beta = o.get_double("beta");
  opt.kl_estimator = aha::policy::parse_kl_estimator(o.get_string("kl_estimator"));
  opt.entropy_coef = o.get_double("entropy_coef");
  opt.aggregation = aha::policy::parse_loss_aggregation(o.get_string("aggregation"));
  opt.const_length = o.get_int("const_length");
  opt.sequence_ratio = o.get_bool("sequence_ratio");
  return opt;
}

void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, double tol,
                  const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  auto diff = (actual.to(torch::kCPU, torch::kFloat64) - expected).abs().max().item<double>();
  EXPECT_LE(diff, tol) << what << "\nactual:\n" << actual << "\nexpected:\n" << expected;
}

TEST(GrpoGolden, AdvantagesMatchReference) {
  const auto& cases = golden()["advantages"];
  ASSERT_GE(cases.Size(), 8u);
  for (const auto& c : cases.GetArray()) {
    std::string name = c["name"].GetString();
    aha::policy::AdvantageOptions opt;
    opt.mode = aha::policy::parse_advantage_mode(c["mode"].GetString());
    opt.whiten_batch = c["whiten_batch"].GetBool();
    opt.eps = c["eps"].GetDouble();
    auto rewards = tensor(c["rewards"]);
    int64_t g = c["group_size"].GetInt64();
    expect_close(aha::policy::compute_advantages(rewards, g, opt), tensor(c["expected"]), 1e-12,
                 name);
    // float32 rewards give float32 advantages of the same values.
    auto f32 = aha::policy::compute_advantages(rewards.to(torch::kFloat32), g, opt);
    EXPECT_EQ(f32.scalar_type(), torch::kFloat32);
    expect_close(f32, tensor(c["expected"]), 1e-6, name + " (float32)");
    auto degenerate = aha::policy::degenerate_groups(rewards, g);
    const auto& want = c["degenerate"];
    ASSERT_EQ(degenerate.size(0), static_cast<int64_t>(want.Size())) << name;
    for (rapidjson::SizeType i = 0; i < want.Size(); ++i)
      EXPECT_EQ(degenerate[i].item<bool>(), want[i].GetBool()) << name << " group " << i;
  }
}

aha::policy::GrpoLossInputs loss_inputs(const rapidjson::Value& in, torch::Device device) {
  auto on = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  aha::policy::GrpoLossInputs inputs;
  inputs.logprobs = tensor(in["logprobs"]).requires_grad_(true);
  inputs.old_logprobs = on(tensor(in["old_logprobs"]));
  inputs.ref_logprobs = on(tensor(in["ref_logprobs"]));
  inputs.advantages = on(tensor(in["advantages"]));
  inputs.mask = on(tensor(in["mask"]).to(torch::kBool));
  inputs.entropy = on(tensor(in["entropy"]));
  if (inputs.entropy.defined()) inputs.entropy.requires_grad_(true);
  inputs.total_tokens = in["total_tokens"].GetInt64();
  inputs.total_sequences = in["total_sequences"].GetInt64();
  return inputs;
}

void check_loss_case(const rapidjson::Value& c, torch::Dtype dtype, double tol,
                     torch::Device device = torch::kCPU) {
  std::string name = c["name"].GetString();
  auto inputs = loss_inputs(c["inputs"], device);
  auto source = inputs.logprobs;  // float64 CPU leaf whose gradient is compared
  inputs.logprobs = source.to(device, dtype);
  const auto& expected = c["expected"];
  auto result = aha::policy::grpo_loss(inputs, options_from(c["options"]));
  EXPECT_NEAR(result.loss.item<double>(), expected["loss"].GetDouble(), tol) << name;

  auto values = result.metrics.named_values();
  std::map<std::string, double> got(values.begin(), values.end());
  const std::map<std::string, std::string> names = {{"policy_loss", "train/policy_loss"},
                                                    {"kl_loss", "train/kl_loss"},
                                                    {"entropy", "train/entropy"},
                                                    {"approx_kl", "train/kl"},
                                                    {"clip_frac_low", "train/clip_frac_low"},
                                                    {"clip_frac_high", "train/clip_frac_high"},
                                                    {"dual_clip_frac", "train/dual_clip_frac"},
                                                    {"ppo_kl", "train/ppo_kl"},
                                                    {"ratio_mean", "train/ratio_mean"},
                                                    {"ratio_max", "train/ratio_max"},
                                                    {"ratio_min", "train/ratio_min"},
                                                    {"token_count", "train/tokens"},
                                                    {"sequence_count", "train/sequences"}};
  size_t compared = 0;
  for (const auto& m : expected["metrics"].GetObject()) {
    std::string key = m.name.GetString();
    ASSERT_TRUE(names.count(key)) << key;
    ASSERT_TRUE(got.count(names.at(key))) << name << ": metric " << key << " missing";
    EXPECT_NEAR(got[names.at(key)], m.value.GetDouble(), tol) << name << ": " << key;
    ++compared;
  }
  EXPECT_EQ(compared, got.size()) << name << ": C++ reports metrics the reference has not";

  result.loss.backward();
  expect_close(source.grad(), tensor(expected["grad_logprobs"]), tol, name + " grad_logprobs");
  if (inputs.entropy.defined())
    expect_close(inputs.entropy.grad(), tensor(expected["grad_entropy"]), tol,
                 name + " grad_entropy");
}

TEST(GrpoGolden, LossModesMatchReferenceInFloat64) {
  const auto& cases = golden()["loss"];
  ASSERT_GE(cases.Size(), 11u);
  for (const auto& c : cases.GetArray()) check_loss_case(c, torch::kFloat64, 1e-9);
}

TEST(GrpoGolden, LossModesMatchReferenceInFloat32) {
  for (const auto& c : golden()["loss"].GetArray()) check_loss_case(c, torch::kFloat32, 2e-5);
}

TEST(GrpoGolden, LossModesMatchReferenceOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const auto& c : golden()["loss"].GetArray()) {
    check_loss_case(c, torch::kFloat64, 1e-9, torch::kCUDA);
    check_loss_case(c, torch::kFloat32, 2e-5, torch::kCUDA);
  }
}

// logits = x W; logp = log_softmax(logits)[token]; entropy of the softmax. The loss's
// gradient w.r.t. W, through LibTorch's autograd, must match PyTorch's.
TEST(GrpoGolden, ToyPolicyGradientMatchesReference) {
  const auto& cases = golden()["toy_policy"];
  ASSERT_EQ(cases.Size(), 3u);
  for (const auto& c : cases.GetArray()) {
    std::string name = c["name"].GetString();
    const auto& in = c["inputs"];
    auto x = tensor(in["x"]);
    auto w = tensor(in["W"]).requires_grad_(true);
    auto tokens = tensor(in["tokens"]).to(torch::kLong);
    auto log_p = torch::log_softmax(torch::matmul(x, w), -1);
    aha::policy::GrpoLossInputs inputs;
    inputs.logprobs = log_p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    inputs.entropy = -(log_p.exp() * log_p).sum(-1);
    inputs.old_logprobs = tensor(in["old_logprobs"]);
    inputs.ref_logprobs = tensor(in["ref_logprobs"]);
    inputs.advantages = tensor(in["advantages"]);
    inputs.mask = tensor(in["mask"]);
    auto result = aha::policy::grpo_loss(inputs, options_from(c["options"]));
    EXPECT_NEAR(result.loss.item<double>(), c["expected"]["loss"].GetDouble(), 1e-10) << name;
    result.loss.backward();
    auto expected = tensor(c["expected"]["grad_W"]);
    expect_close(w.grad(), expected, 1e-10, name + " grad_W");
    EXPECT_GT(expected.abs().max().item<double>(), 1e-3) << name << ": a trivial gradient";
  }
}

}  // namespace
