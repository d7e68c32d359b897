#include "policy/learner/train_metrics_log.h"

#include "core/run_store.h"
#include "policy/learner/grpo_trainer.h"

namespace aha::policy {

void record_train_step(RunStore& store, int64_t stage, int64_t step, const TrainStepMetrics& metrics) {
  auto transaction = store.transaction();
  store.write_metrics(stage, step, metrics.named_values());
  if (metrics.skipped_steps > 0) {
    store.add_event(stage, step, "warning", "skipped_step",
                    std::to_string(metrics.skipped_steps) + " of " + std::to_string(metrics.optimizer_steps) +
                        " optimizer steps skipped: the loss or the gradient norm was not finite");
  }
  transaction.commit();
}

}  // namespace aha::policy
