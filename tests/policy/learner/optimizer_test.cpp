#include "policy/learner/optimizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "core/files.h"

namespace {

using aha::policy::Optimizer;
using aha::policy::OptimizerOptions;
using aha::policy::ParamGroup;

torch::Tensor leaf(std::vector<float> values) {
  return torch::tensor(values, torch::kFloat32).requires_grad_(true);
}

void set_grad(torch::Tensor& p, std::vector<float> g) {
  p.mutable_grad() = torch::tensor(g, torch::kFloat32);
}

OptimizerOptions plain(double lr = 0.1) {
  OptimizerOptions o;
  o.lr = lr;
  o.max_grad_norm = 0.0;
  return o;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("aha_opt_" + std::to_string(::getpid()) + "_" + name);
}

// First AdamW step by hand: m_hat = g, v_hat = g^2, p <- p (1 - lr wd) - lr g / (|g| + eps).
TEST(Optimizer, FirstStepMatchesAdamWByHand) {
  auto p = leaf({1.0f, -2.0f, 0.5f});
  auto o = plain(0.1);
  o.eps = 0.5;  // a large eps makes the update depend on |g|, not only its sign
  Optimizer opt({{"decay", {p}, 0.01, 1.0}}, o);
  set_grad(p, {2.0f, -1.0f, 0.0f});
  auto r = opt.step();
  EXPECT_TRUE(r.applied);
  EXPECT_NEAR(r.grad_norm, std::sqrt(5.0), 1e-6);
  EXPECT_DOUBLE_EQ(r.lr, 0.1);
  std::vector<double> p0 = {1.0, -2.0, 0.5}, g = {2.0, -1.0, 0.0};
  for (int i = 0; i < 3; ++i) {
    double want = p0[i] * (1 - 0.1 * 0.01) - 0.1 * g[i] / (std::abs(g[i]) + 0.5);
    EXPECT_NEAR(p[i].item<double>(), want, 1e-6) << i;
  }
  EXPECT_FALSE(p.grad().defined()) << "gradients are cleared after a step";
}

TEST(Optimizer, ClipsByGlobalNormAndReportsPreClipNorm) {
  auto a = leaf({0.0f}), b = leaf({0.0f});
  auto o = plain(1.0);
  o.eps = 1.0;
  o.max_grad_norm = 1.0;
  Optimizer opt({{"all", {a, b}, 0.0, 1.0}}, o);
  set_grad(a, {3.0f});
  set_grad(b, {4.0f});
  auto r = opt.step();
  EXPECT_NEAR(r.grad_norm, 5.0, 1e-6);
  // Clipped gradients g * 1 / (5 + 1e-6) = (0.6, 0.8); update = -lr gc / (|gc| + eps).
  double ca = 3.0 / (5.0 + 1e-6), cb = 4.0 / (5.0 + 1e-6);
  EXPECT_NEAR(a.item<double>(), -ca / (ca + 1.0), 1e-6);
  EXPECT_NEAR(b.item<double>(), -cb / (cb + 1.0), 1e-6);
  // Below the threshold nothing is scaled.
  auto c = leaf({0.0f});
  Optimizer small({{"c", {c}, 0.0, 1.0}}, o);
  set_grad(c, {0.5f});
  EXPECT_NEAR(small.step().grad_norm, 0.5, 1e-7);
  EXPECT_NEAR(c.item<double>(), -0.5 / 1.5, 1e-6);
}

TEST(Optimizer, NonFiniteStepIsSkippedAndLeavesWeightsBitIdentical) {
  auto o = plain(0.05);
  auto run = [&](bool with_bad_steps) {
    auto p = leaf({0.3f, -0.7f});
    Optimizer opt({{"p", {p}, 0.1, 1.0}}, o);
    set_grad(p, {0.2f, 0.1f});
    EXPECT_TRUE(opt.step().applied);
    if (with_bad_steps) {
      auto before = p.detach().clone();
      set_grad(p, {NAN, 0.1f});
      auto r = opt.step();
      EXPECT_FALSE(r.applied);
      EXPECT_NE(r.skip_reason.find("gradient"), std::string::npos);
      EXPECT_TRUE(std::isnan(r.grad_norm));
      EXPECT_TRUE(torch::equal(p.detach(), before));
      EXPECT_FALSE(p.grad().defined()) << "a skipped step clears the bad gradients";
      set_grad(p, {INFINITY, 0.1f});
      EXPECT_FALSE(opt.step().applied);
      set_grad(p, {0.2f, 0.1f});  // finite gradients, non-finite loss
      auto r2 = opt.step(torch::tensor(NAN));
      EXPECT_FALSE(r2.applied);
      EXPECT_NE(r2.skip_reason.find("loss"), std::string::npos);
      EXPECT_TRUE(torch::equal(p.detach(), before));
      EXPECT_EQ(opt.skipped_steps(), 3);
      EXPECT_EQ(opt.step_count(), 4);
    }
    set_grad(p, {-0.4f, 0.3f});
    EXPECT_TRUE(opt.step(torch::tensor(1.5)).applied);
    return p.detach().clone();
  };
  // AdamW's state (moments, step count) did not see the skipped steps either: the next update
  // is exactly the one of a run without them.
  EXPECT_TRUE(torch::equal(run(true), run(false)));
}

TEST(Optimizer, ScheduleAndGroupScales) {
  auto a = leaf({1.0f}), b = leaf({1.0f});
  auto o = plain(0.1);
  o.schedule.warmup_steps = 2;
  Optimizer opt({{"a", {a}, 0.0, 1.0}, {"b", {b}, 0.0, 0.5}}, o);
  set_grad(a, {1.0f});
  set_grad(b, {1.0f});
  auto r0 = opt.step();  // warm-up step 0: factor 0
  EXPECT_DOUBLE_EQ(r0.lr, 0.0);
  EXPECT_EQ(a.item<float>(), 1.0f);
  set_grad(a, {1.0f});
  set_grad(b, {1.0f});
  auto r1 = opt.step();  // factor 0.5: lr 0.05 for a, 0.025 for b; Adam's update ~ sign(g)
  EXPECT_DOUBLE_EQ(r1.lr, 0.05);
  EXPECT_NEAR(1.0 - a.item<double>(), 0.05, 1e-6);
  EXPECT_NEAR(1.0 - b.item<double>(), 0.025, 1e-6);
  EXPECT_DOUBLE_EQ(opt.lr_at(2), 0.1);
}

TEST(Optimizer, SaveLoadContinuesBitIdentically) {
  auto path = temp_path("state.pt");
  auto grads = [](int k) { return std::vector<float>{0.1f * k - 0.2f, 0.3f - 0.05f * k * k}; };
  auto o = plain(0.02);
  o.max_grad_norm = 0.25;
  o.schedule = {.decay = aha::policy::LrDecay::cosine, .warmup_steps = 1, .total_steps = 6};
  auto w = leaf({0.5f, -0.5f});
  auto bias = leaf({0.1f});
  Optimizer first({{"w", {w}, 0.1, 1.0}, {"bias", {bias}, 0.0, 2.0}}, o);
  for (int k = 0; k < 3; ++k) {
    set_grad(w, grads(k));
    set_grad(bias, {0.01f * k});
    first.step();
  }
  first.save(path);
  auto w2 = w.detach().clone().requires_grad_(true);
  auto bias2 = bias.detach().clone().requires_grad_(true);
  auto w3 = w.detach().clone().requires_grad_(true);
  auto bias3 = bias.detach().clone().requires_grad_(true);
  for (int k = 3; k < 5; ++k) {
    set_grad(w, grads(k));
    set_grad(bias, {0.01f * k});
    first.step();
  }
  Optimizer resumed({{"w", {w2}, 0.1, 1.0}, {"bias", {bias2}, 0.0, 2.0}}, o);
  resumed.load(path);
  EXPECT_EQ(resumed.step_count(), 3);
  for (int k = 3; k < 5; ++k) {
    set_grad(w2, grads(k));
    set_grad(bias2, {0.01f * k});
    resumed.step();
  }
  EXPECT_TRUE(torch::equal(w.detach(), w2.detach()));
  EXPECT_TRUE(torch::equal(bias.detach(), bias2.detach()));

  // Without the loaded state (fresh moments, step 0 of the schedule) the weights differ, so
  // the check above can fail.
  Optimizer fresh({{"w", {w3}, 0.1, 1.0}, {"bias", {bias3}, 0.0, 2.0}}, o);
  for (int k = 3; k < 5; ++k) {
    set_grad(w3, grads(k));
    set_grad(bias3, {0.01f * k});
    fresh.step();
  }
  EXPECT_FALSE(torch::equal(w.detach(), w3.detach()));
  std::filesystem::remove(path);
  EXPECT_THROW(resumed.load(path), aha::Error);
}

TEST(Optimizer, LoadRejectsStateOfOtherShapes) {
  auto path = temp_path("shapes.pt");
  auto p = leaf({1.0f, 2.0f});
  Optimizer a({{"p", {p}, 0.0, 1.0}}, plain());
  set_grad(p, {1.0f, 1.0f});
  a.step();
  a.save(path);
  auto q = leaf({1.0f, 2.0f, 3.0f});
  Optimizer b({{"p", {q}, 0.0, 1.0}}, plain());
  try {
    b.load(path);
    FAIL() << "loaded moments of shape [2] for a parameter of shape [3]";
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  auto r = leaf({1.0f, 2.0f});
  auto s = leaf({1.0f});
  Optimizer c({{"p", {r}, 0.0, 1.0}, {"s", {s}, 0.0, 1.0}}, plain());
  EXPECT_THROW(c.load(path), aha::Error);
  aha::write_file_atomic(path, "not a torch archive");
  EXPECT_THROW(b.load(path), aha::Error);
  std::filesystem::remove(path);
}

TEST(Optimizer, CudaParametersStepAndSkip) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto p = torch::tensor({0.3f, -0.7f}, torch::kCUDA).requires_grad_(true);
  auto o = plain(0.05);
  o.max_grad_norm = 0.1;
  Optimizer opt({{"p", {p}, 0.1, 1.0}}, o);
  p.mutable_grad() = torch::tensor({0.3f, 0.4f}, torch::kCUDA);
  auto r = opt.step(torch::tensor(2.0f, torch::kCUDA));
  EXPECT_TRUE(r.applied);
  EXPECT_NEAR(r.grad_norm, 0.5, 1e-6);
  auto before = p.detach().clone();
  p.mutable_grad() = torch::tensor({NAN, 0.4f}, torch::kCUDA);
  EXPECT_FALSE(opt.step().applied);
  EXPECT_TRUE(torch::equal(p.detach(), before));
  p.mutable_grad() = torch::tensor({0.3f, 0.4f}, torch::kCUDA);
  EXPECT_FALSE(opt.step(torch::tensor(INFINITY, torch::kCUDA)).applied);
  EXPECT_TRUE(torch::equal(p.detach(), before));
}

TEST(Optimizer, BadOptionsAreNamed) {
  auto p = leaf({1.0f});
  EXPECT_THROW(Optimizer({}, plain()), aha::Error);
  EXPECT_THROW(Optimizer({{"empty", {}, 0.0, 1.0}}, plain()), aha::Error);
  auto frozen = torch::ones({2});
  try {
    Optimizer({{"frozen", {frozen}, 0.0, 1.0}}, plain());
    FAIL();
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find("frozen"), std::string::npos);
  }
  auto bad = plain();
  bad.beta2 = 1.0;
  EXPECT_THROW(Optimizer({{"p", {p}, 0.0, 1.0}}, bad), aha::Error);
  bad = plain(-1.0);
  EXPECT_THROW(Optimizer({{"p", {p}, 0.0, 1.0}}, bad), aha::Error);
}

}  // namespace
