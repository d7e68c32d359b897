// A rollout worker of a split layout (recipe "layout": {"mode": "split"}): a process that `aha
// train` starts (`aha rollout-worker`, rollout_controller.h) to sample on its own device.
//
// Contract, in order:
// - Connects to the controller's control store (c10d TCPStore, AHA_ROLLOUT_CONTROL=host:port)
//   as worker AHA_ROLLOUT_WORKER=i and reads its configuration ("aha/rollout/worker/<i>/config":
//   the recipe, the model directory, the device, the sampling values the run resolved).
// - Loads the model and tokenizer, joins its weight-sync pair group with the controller (rank 1
//   of 2, Gloo on the CPU, NCCL on a GPU) and receives the learner's weights and policy version
//   (policy/parallel/weight_sync.h) before it says it is ready.
// - Then takes its tasks in order ("task/<i>/<n>", rollout_wire.h): when a task needs a newer
//   policy than the one it holds (min_version), it asks for one (adds 1 to "sync_requests") and
//   receives the weights the controller sends; it samples the prompts exactly as one process
//   does (sampling.h, the same seeds), without scoring (the controller scores), and posts the
//   groups with the version that sampled them ("result/<i>/<n>").
// - Ends with status 0 when the controller sets "shutdown"; when the controller is gone (its
//   store unreachable, or the parent's death: PR_SET_PDEATHSIG) it ends too, so no worker
//   outlives its run.
// Test hook: AHA_TEST_ROLLOUT_CRASH="<i>:<n>" makes worker i SIGKILL itself on receiving its
// task n (before sampling it), for the tests of re-queued prompts.
#pragma once
#include <string>

namespace aha::recipes {

// Runs the worker described above from its environment; returns the process's exit status.
int run_rollout_worker();

}  // namespace aha::recipes
