// The controller side of a split layout (recipe "layout": {"mode": "split", "rollout_workers":
// N}): `aha train` (the learner) starts N rollout worker processes (rollout_worker.h), hands
// them tasks (one sampling round of a training step's prompts each: the step's prompts, or
// with dynamic sampling a refill round's, step_sampling.h) and takes back the sampled groups,
// and sends them the learner's weights.
//
// Control plane: a c10d TCPStore that this process serves (on a port the kernel picks): tasks and
// results are JSON values under "aha/rollout/..." (rollout_wire.h); workers poll their next
// task's key. Why the store rather than a protocol of our own: it is already how the ranks of
// a world meet (policy/parallel/), it is a tested TCP key-value server with blocking gets and
// atomic counters, and a task or result is one value, so no framing or connection handling of
// our own is needed. Tensors never go through it.
//
// Weight sync: one c10d pair group (this process rank 0, the worker rank 1; Gloo on the CPU,
// NCCL when both are on GPUs) per worker, meeting at its own store that this process serves
// (store_host.h, as a launcher's agent store), so a dead worker breaks only its own group. The
// learner's tensors go in buckets (policy/parallel/weight_sync.h) when the worker asks for them,
// which it does only before a task that needs a newer policy than it holds; requests are served
// while this process waits for results (never during a learner update), so the weights sent are
// always those of one policy version, the current one.
//
// Contract:
// - submit() queues a task for the live worker with the fewest unfinished tasks and returns its
//   id; tasks of one worker run in submission order. wait(task, version) returns that task's
//   result, serving weight requests (with `version`) meanwhile.
// - A worker that dies (its process exits or is killed) loses nothing: its tasks without a
//   result are submitted again to another live worker, with the same id, batch, seed and
//   prompts, so the same prompts are sampled once more; a task's first result is the one
//   returned, so none is trained twice. With no live worker left, wait() throws aha::Error.
// - The destructor asks the workers to stop, waits a few seconds, then SIGKILLs any left and
//   reaps them all; workers also die with this process (PR_SET_PDEATHSIG).
#pragma once
#include <sys/types.h>

#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/torch.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/parallel/communicator.h"
#include "policy/parallel/store_host.h"
#include "recipes/runner/rollout_wire.h"

namespace aha::recipes {

struct RolloutControllerOptions {
  std::string program;   // the `aha` executable (its "rollout-worker" command)
  int workers = 1;
  int64_t bucket_bytes = 64 << 20;
  std::string backend = "auto";  // of the pair groups: auto, gloo, nccl
  double connect_timeout_seconds = 300;
  // The configuration JSON of worker i (rollout_worker.h) without "sync_port", "bucket_bytes"
  // and "backend", which the controller adds.
  std::function<std::string(int worker)> worker_config;
};

struct RolloutControllerStats {
  int64_t workers_alive = 0;
  int64_t requeued_tasks = 0;   // in total
  int64_t syncs = 0;            // weight syncs served, in total
  double sync_seconds = 0;      // their time, in total
  int64_t sync_bytes = 0;       // of the last one
  double busy_seconds = 0;      // the workers' sampling time, in total
};

class RolloutController {
 public:
  // Starts the workers and sends each the weights in `tensors` as policy `version`; returns
  // when all are ready. Throws aha::Error naming the worker that could not start.
  RolloutController(const RolloutControllerOptions& options, std::vector<torch::Tensor> tensors, int64_t version);
  ~RolloutController();
  RolloutController(const RolloutController&) = delete;
  RolloutController& operator=(const RolloutController&) = delete;

  int64_t submit(int64_t batch, int64_t min_version, uint64_t seed, std::vector<std::string> prompts);
  RolloutResult wait(int64_t task, int64_t version);
  const RolloutControllerStats& stats() const { return stats_; }

 private:
  struct Worker {
    pid_t pid = -1;
    bool alive = false;
    std::unique_ptr<parallel::StoreHost> sync_store;  // the pair group's store: outlives comm
    std::shared_ptr<parallel::Communicator> comm;
    int64_t next_task = 0;        // sequence number of its next task
    std::deque<std::pair<int64_t, RolloutTask>> pending;  // (sequence, task) without a result
    int64_t syncs_served = 0;
  };
  void start_worker(int i, int64_t version);
  void assign(RolloutTask task);
  void reap_dead();
  void collect(int i);
  void serve_syncs(int64_t version);
  void mark_dead(int i, const std::string& why);

  RolloutControllerOptions options_;
  std::vector<torch::Tensor> tensors_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::string control_;  // host:port
  std::vector<Worker> workers_;
  std::map<int64_t, RolloutResult> done_;  // task id -> its first result
  int64_t next_id_ = 0;
  RolloutControllerStats stats_;
};

}  // namespace aha::recipes
