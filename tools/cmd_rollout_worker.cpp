// `aha rollout-worker`: a rollout worker process of a split-layout run. `aha train` starts it
// (recipes/runner/rollout_controller.h) with AHA_ROLLOUT_CONTROL and AHA_ROLLOUT_WORKER in its
// environment; it is not meant to be started by hand.
#include "recipes/runner/rollout_worker.h"
#include "tools/cli.h"

namespace aha {
namespace {

int run_rollout_worker_command(const cli::Args&) { return recipes::run_rollout_worker(); }

const cli::CommandRegistration kRolloutWorker(
    {"rollout-worker",
     "a rollout worker of a split-layout run (started by aha train; not by hand)",
     {.usage = "",
      .description =
          "Samples for the `aha train` process that started it, for a recipe with \"layout\": {\"mode\": \"split\"}:\n"
          "it takes prompt batches from that process's control store (AHA_ROLLOUT_CONTROL=host:port, worker\n"
          "AHA_ROLLOUT_WORKER=i), receives the learner's weights by c10d broadcast, and returns the sampled groups\n"
          "with the policy version that produced them. It ends when the run does.",
      .options = {},
      .max_positional = 0,
      .examples = {"aha rollout-worker    (as aha train starts it, with AHA_ROLLOUT_CONTROL and AHA_ROLLOUT_WORKER set)"}},
     run_rollout_worker_command});

}  // namespace
}  // namespace aha
