// record_train_step: a trainer step's metrics land in the run store under their namespaced
// names and read back; skipped optimizer steps become a warning event.
#include "policy/learner/train_metrics_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/files.h"
#include "core/run_store.h"
#include "policy/learner/grpo_trainer.h"

namespace aha::policy {
namespace {

TEST(TrainMetricsLog, WritesNamespacedMetricsAndSkipEvents) {
  const auto dir = std::filesystem::temp_directory_path() / ("aha_tml_" + std::to_string(::getpid()));
  remove_tree(dir);
  {
    auto store = RunStore::open_run(dir, "run");
    int64_t stage = store->begin_stage("grpo", "grpo", "{}");
    TrainStepMetrics m;
    m.loss = 0.5, m.policy_loss = 0.4, m.kl_loss = 0.01, m.approx_kl = 0.02, m.entropy = 1.5;
    m.clip_frac_low = 0.1, m.clip_frac_high = 0.2, m.grad_norm = 3.0, m.lr = 1e-6, m.tokens = 100;
    m.optimizer_steps = 2, m.has_reference = true;
    record_train_step(*store, stage, 1, m);
    m.loss = 0.25, m.skipped_steps = 1, m.has_reference = false, m.has_rewards = true, m.reward_mean = 0.75;
    record_train_step(*store, stage, 2, m);

    auto loss = store->metric_series(stage, "train/loss");
    ASSERT_EQ(loss.size(), 2u);
    EXPECT_EQ(loss[0].step, 1);
    EXPECT_DOUBLE_EQ(loss[0].value, 0.5);
    EXPECT_DOUBLE_EQ(loss[1].value, 0.25);
    auto expect_value = [&](const std::string& name, double v) {
      auto series = store->metric_series(stage, name);
      ASSERT_FALSE(series.empty()) << name;
      EXPECT_DOUBLE_EQ(series[0].value, v) << name;
    };
    expect_value("train/kl", 0.02);
    expect_value("train/kl_loss", 0.01);
    expect_value("train/entropy", 1.5);
    expect_value("train/clip_frac_low", 0.1);
    expect_value("train/clip_frac_high", 0.2);
    expect_value("train/grad_norm", 3.0);
    expect_value("train/lr", 1e-6);
    expect_value("train/tokens", 100);
    EXPECT_EQ(store->metric_series(stage, "train/kl").size(), 1u);  // step 2 had no reference
    EXPECT_EQ(store->metric_series(stage, "train/reward_mean").size(), 1u);
    auto events = store->events(stage);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "skipped_step");
    EXPECT_EQ(events[0].level, "warning");
    EXPECT_EQ(events[0].step, 2);
  }
  remove_tree(dir);
}

}  // namespace
}  // namespace aha::policy
