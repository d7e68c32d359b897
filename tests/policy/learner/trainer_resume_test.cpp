// Exact resume: 6 training steps straight give the same metrics and bit-identical weights
// (policy, reference) as 3 steps, a checkpoint, fresh objects loaded from it, and 3 more steps.
// The reference model (beta > 0) is refreshed every 2 steps, so it differs from the policy at
// the checkpoint (after step 3) and must come back from the checkpoint itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>

#include "core/files.h"
#include "policy/learner/checkpoint.h"
#include "trainer_test_util.h"

namespace aha::policy {
namespace {

TrainerOptions resume_options() {
  TrainerOptions o;
  o.loss.beta = 0.04;
  o.loss.clip_eps_high = 0.28;
  o.ref_refresh_steps = 2;
  o.mini_batch_size = 2;
  o.micro_batch_size = 1;
  o.inner_epochs = 2;
  o.temperature = 0.9;
  o.weight_decay = 0.01;
  o.optimizer.lr = 2e-3;
  o.optimizer.schedule.decay = LrDecay::cosine;
  o.optimizer.schedule.warmup_steps = 2;
  o.optimizer.schedule.total_steps = 20;
  return o;
}

// The batch of step s is a pure function of s (the data cursor) and the current policy.
std::vector<std::vector<std::pair<std::string, double>>> train(GrpoTrainer& t, int64_t from, int64_t to) {
  std::vector<std::vector<std::pair<std::string, double>>> out;
  for (int64_t s = from; s < to; ++s)
    out.push_back(t.train_step(testing::synthetic_batch(t.policy(), 1000 + s, 4, 5, 6, 0.9)).named_values());
  return out;
}

// `make` gives the model of the run, `other` a model of other weights (and the same dtype) that
// a resume must overwrite entirely from the checkpoint.
void expect_exact_resume(const std::function<std::unique_ptr<Transformer>()>& make,
                         const std::function<std::unique_ptr<Transformer>()>& other, const TrainerOptions& options) {
  testing::one_thread();
  const auto dir = std::filesystem::temp_directory_path() / ("aha_resume_" + std::to_string(::getpid()));
  remove_tree(dir);

  torch::manual_seed(123);
  GrpoTrainer straight(make(), options);
  auto straight_metrics = train(straight, 0, 3);
  auto draw_straight = torch::rand({4});  // the run's RNG at the checkpoint
  auto more = train(straight, 3, 6);
  straight_metrics.insert(straight_metrics.end(), more.begin(), more.end());

  torch::manual_seed(123);
  std::vector<std::vector<std::pair<std::string, double>>> resumed_metrics;
  {
    GrpoTrainer first(make(), options);
    resumed_metrics = train(first, 0, 3);
    save_checkpoint(dir, {3, 3}, first);
  }
  torch::manual_seed(999);  // a new process would start elsewhere
  // Fresh objects, deliberately from other weights: everything must come from the checkpoint.
  GrpoTrainer second(other(), options);
  auto latest = latest_checkpoint(dir);
  ASSERT_TRUE(latest.has_value());
  auto state = load_checkpoint(*latest, second);
  EXPECT_EQ(state.step, 3);
  EXPECT_EQ(state.data_cursor, 3);
  EXPECT_EQ(second.steps_done(), 3);
  EXPECT_TRUE(torch::equal(torch::rand({4}), draw_straight));
  more = train(second, state.data_cursor, 6);
  resumed_metrics.insert(resumed_metrics.end(), more.begin(), more.end());

  ASSERT_EQ(straight_metrics.size(), resumed_metrics.size());
  for (size_t s = 0; s < straight_metrics.size(); ++s) {
    ASSERT_EQ(straight_metrics[s].size(), resumed_metrics[s].size());
    for (size_t i = 0; i < straight_metrics[s].size(); ++i) {
      EXPECT_EQ(straight_metrics[s][i].first, resumed_metrics[s][i].first);
      EXPECT_EQ(straight_metrics[s][i].second, resumed_metrics[s][i].second)
          << "step " << s << " " << straight_metrics[s][i].first;
    }
  }
  auto a = straight.policy().named_parameters(), b = second.policy().named_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    const auto master = straight.optimizer().master_of(a[i].second);
    ASSERT_EQ(master.defined(), options.optimizer.fp32_master) << a[i].first;
    if (master.defined()) EXPECT_TRUE(torch::equal(master, second.optimizer().master_of(b[i].second))) << a[i].first;
  }
  auto ra = straight.reference()->parameters(), rb = second.reference()->parameters();
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_TRUE(torch::equal(ra[i], rb[i]));
  EXPECT_EQ(straight.optimizer().step_count(), second.optimizer().step_count());
  // The run really moved: a test of a frozen model would pass trivially.
  EXPECT_FALSE(torch::equal(a[0].second, make()->named_parameters()[0].second));
  remove_tree(dir);
}

TEST(TrainerResume, SixStepsStraightEqualThreePlusCheckpointPlusThree) {
  expect_exact_resume([] { return testing::tiny_model(); },
                      [] { return init_model(testing::tiny_model()->config(), 77); }, resume_options());
}

// A bf16 policy with float32 master weights (optimizer.h): the masters, which hold more than the
// bf16 weights, must come back from the checkpoint too.
TEST(TrainerResume, Bf16PolicyWithFloat32MastersResumesBitIdentically) {
  auto options = resume_options();
  options.optimizer.fp32_master = true;
  expect_exact_resume([] { return load_model(testing::kTinyModel, LoadOptions{torch::kCPU, torch::kBFloat16}); },
                      [] { return init_model(testing::tiny_model()->config(), 77, torch::kBFloat16); }, options);
}

}  // namespace
}  // namespace aha::policy
