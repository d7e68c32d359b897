// RewardServer: `aha serve rewards`, an HTTP/JSON server (Boost.Beast on Asio) that scores
// batches with a fixed list of rewards on this machine's cores, for runs whose GPU machines
// lack the CPUs that checking answers and running code need. The wire format is
// reward/remote/wire_format.h; the client that spreads a batch over servers is
// reward/remote/remote_scorer.h.
//
// Contract:
// - GET /health answers {"ok": true, "rewards": [...]}; POST /score scores a batch and answers
//   one result per item, in item order, exactly as RewardRunner::score would here.
// - Security: it binds 127.0.0.1 unless told otherwise and refuses a non-loopback address
//   without a token. With a token every request must carry "Authorization: Bearer T" (401
//   otherwise). On loopback a Host header naming another host is refused (403: DNS
//   rebinding), and /score takes only Content-Type application/json (415), which a web page
//   cannot send to another origin without a CORS preflight that this server never grants.
// - Limits: a request larger than max_request_bytes is refused (413) before its body is read;
//   a request that has not arrived whole within read_timeout_seconds of the connection's
//   turn to read (a slow or stalled client: slowloris) is cut off, and so is a reply the
//   client does not read within it; at most max_connections connections are open (more are
//   answered 503 and closed); at most max_inflight batches are scored at once, later ones
//   wait their turn on their connection.
// - Bad requests get 400 with a message naming the field and item index at fault; unknown
//   paths 404, other methods 405; a request whose "rewards" differ from the served ones 409.
//   The server keeps serving after any of them.
// - A reward's own failure is that item's error (RewardRunner's contract), not an HTTP error.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reward/reward_registry.h"
#include "reward/scorer.h"

namespace aha::reward::remote {

struct RewardServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7000;  // 0: any free port (see port())
  std::string token{};   // "" for none (only allowed on loopback)
  size_t threads = 0;    // scoring threads (RewardRunner); 0: one per CPU
  size_t max_request_bytes = 64u << 20;
  size_t max_inflight = 4;  // batches scored at once
  size_t max_connections = 256;
  double read_timeout_seconds = 30;
  int io_threads = 2;  // threads reading and writing HTTP (scoring has its own)
};

class RewardServer {
 public:
  // Builds `rewards` (a RewardRunner with options.threads) and binds; throws aha::Error saying
  // what is wrong (a bad spec, a non-loopback host without a token, a port in use).
  RewardServer(const RewardServerOptions& options, const std::vector<RewardSpec>& rewards);
  // With a scorer built elsewhere (tests: rewards of their own).
  RewardServer(const RewardServerOptions& options, std::unique_ptr<Scorer> scorer);
  ~RewardServer();
  RewardServer(const RewardServer&) = delete;
  RewardServer& operator=(const RewardServer&) = delete;

  uint16_t port() const;
  std::string url() const;  // http://HOST:PORT/

  // Serves until stop() or abort() (or SIGINT/SIGTERM with handle_signals). Blocks.
  void run(bool handle_signals = false);
  // From any thread: stops accepting and ends run(); batches being scored finish first.
  void stop();
  // From any thread, as a crash looks to clients: every connection is closed at once, answered
  // or not, and nothing more is accepted. Scoring under way is thrown away.
  void abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aha::reward::remote
