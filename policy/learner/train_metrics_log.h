// Records a trainer step in the run store: every metric of TrainStepMetrics::named_values()
// under its namespaced name (train/loss, train/policy_loss, train/kl, train/kl_loss,
// train/entropy, train/clip_frac_low, train/clip_frac_high, train/dual_clip_frac, train/ppo_kl,
// train/ratio_mean, train/ratio_max, train/ratio_min, train/grad_norm, train/lr, train/tokens,
// train/sequences, train/optimizer_steps, train/skipped_steps, train/reward_mean), plus a
// "warning" event of kind "skipped_step" when optimizer steps were skipped for non-finite
// values. Metrics and event are written in one transaction (joining an open one), so that a
// step's record appears whole or not at all.
#pragma once
#include <cstdint>

namespace aha {
class RunStore;
}

namespace aha::policy {

struct TrainStepMetrics;

void record_train_step(RunStore& store, int64_t stage, int64_t step, const TrainStepMetrics& metrics);

}  // namespace aha::policy
