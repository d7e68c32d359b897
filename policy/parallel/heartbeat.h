// A liveness signal between the ranks of a world, through the rendezvous store: each rank's
// thread writes "aha/heartbeat/<rank>" = "<beat count> <what the rank is doing>" every interval
// and reads everyone else's. A rank whose count has not moved for `timeout` is dead or hung.
//
// Why: a collective that fails says little (Gloo: "connection reset by peer"; NCCL: a watchdog
// timeout), and a rank busy outside collectives (rank 0 evaluating) would wait for a dead peer
// until the collective timeout. The heartbeat names the rank and its last activity, and with
// stop_process_on_dead_peer it ends this process within `timeout` of a peer's death even when
// no collective is running, so there is never a silent hang.
// A rank that fails with an error publishes it ("aha/failed/<rank>") so that the others can
// name it instead of a bare connection error.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

namespace aha::parallel {

// The first line of an exception's message, without c10's appended backtrace, at most 400 bytes.
std::string short_cause(const std::string& what);

class Heartbeat {
 public:
  Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size, std::chrono::milliseconds interval,
            std::chrono::milliseconds timeout, bool stop_process_on_dead_peer, bool agent_store);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  // What this rank is doing, for the others' messages (e.g. "step 3: all-reduce of gradients").
  void set_activity(const std::string& what);
  std::string activity() const;
  // Publishes this rank's error for the others (best effort: the store may be gone).
  void publish_failure(const std::string& message);
  // Stops beating and marks this rank as finished, so that its silence is not taken for death.
  void finish();

  // Why the world is broken, as far as the heartbeats tell after waiting up to `patience` for
  // evidence: "rank 1 failed: <its error>", "rank 1 stopped responding 12.0 s ago (last:
  // sampling step 3)", or "rank 0 (the rendezvous store's host) is unreachable" ("the
  // launcher (...)" with an agent store). Empty when every peer still looks alive.
  std::string diagnose(std::chrono::milliseconds patience);
  // The first dead peer's description so far (no waiting); empty when none.
  std::string dead_peer() const;

 private:
  void loop();
  void stop_thread();
  void beat_once();

  c10::intrusive_ptr<c10d::Store> store_;
  const int rank_, world_size_;
  const std::chrono::milliseconds interval_, timeout_;
  const bool stop_process_;
  const bool agent_store_;  // the launcher serves the store, not rank 0 (World::agent_store)
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string activity_ = "starting";
  int64_t beats_ = 0;
  struct Peer {
    std::string value;  // the last heartbeat read
    std::chrono::steady_clock::time_point changed;
    std::string failure;  // published error, if any
    bool done = false;    // finished normally
  };
  std::vector<Peer> peers_;
  std::string store_error_;  // set when the store cannot be reached
  std::thread thread_;
};

}  // namespace aha::parallel
