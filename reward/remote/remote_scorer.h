// RemoteScorer: scoring on reward servers (reward/remote/reward_server.h) instead of, or
// beside, this process's threads, with the same results as RewardRunner for the same rewards.
//
// Contract:
// - The constructor checks every server's GET /health and that it serves exactly `specs`; it
//   throws aha::Error naming each server that fails and why (unreachable, wrong token,
//   other rewards), so a run never starts on a server it cannot use.
// - score() splits the batch into chunks of chunk_size items (0: about two chunks per
//   in-flight slot, so a slow server is not waited on for long) and sends them with at most
//   max_inflight_per_server requests open per server (backpressure: the server queues no
//   more than that for us). With `local` given, this process scores chunks too, one at a time.
// - A server that cannot be reached, resets, answers 5xx or takes over timeout_seconds for a
//   chunk is dropped for the rest of this call and the chunk goes to another server; every
//   item's result is taken exactly once. A 503 (busy) is retried after a pause. A 413 splits
//   the chunk in two. A 400/401/403/409 is our mistake, not the server's: it is an aha::Error
//   at once. A server dropped in one call is health-checked again at the start of the next.
// - When every server is down (and there is no local scorer) before all chunks are scored,
//   score() throws aha::Error naming each server and why it was dropped: never zeros.
// - One score() call at a time (each call runs its own requests on threads of its own).
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "reward/remote/http_exchange.h"
#include "reward/scorer.h"

namespace aha::reward::remote {

struct RemoteScoringOptions {
  std::vector<std::string> servers;  // "host:port"
  std::string token;                 // "": none
  double timeout_seconds = 300;      // one request, scoring included
  double health_timeout_seconds = 10;
  size_t max_inflight_per_server = 2;
  size_t chunk_size = 0;  // items per request; 0: automatic (see above)
};

class RemoteScorer : public Scorer {
 public:
  RemoteScorer(std::vector<RewardSpec> specs, RemoteScoringOptions options, std::unique_ptr<Scorer> local = nullptr);
  ~RemoteScorer() override;

  std::vector<ScoredSample> score(std::vector<ScoringInput> inputs) override;
  const std::vector<RewardSpec>& specs() const override { return specs_; }

  // Of the last score() call: items whose result came from each server (in options.servers
  // order), then from the local scorer; and the chunks sent again after a failure.
  struct Stats {
    std::vector<size_t> items_by_server;
    size_t items_local = 0;
    size_t chunks_retried = 0;
  };
  Stats last_stats() const;

 private:
  // "" when the server is usable, else why not.
  std::string health_problem(size_t server) const;

  std::vector<RewardSpec> specs_;
  RemoteScoringOptions options_;
  std::vector<ServerAddress> servers_;
  std::unique_ptr<Scorer> local_;
  std::vector<std::string> down_;  // per server: why it was dropped ("" while up)
  mutable std::mutex stats_mutex_;
  Stats stats_;
};

}  // namespace aha::reward::remote
