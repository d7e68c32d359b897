// DashboardServer: the `aha dashboard` HTTP server (Boost.Beast on Asio): serves the page, its
// scripts (dashboard/assets.h) and the API (dashboard/api.h) from a few threads.
//
// Security: it binds 127.0.0.1 unless told otherwise, and refuses to bind any non-loopback
// address without a token. With a token every request must carry it: an
// "Authorization: Bearer T" or "X-Aha-Token: T" header, or "?token=T" once (the reply sets a
// cookie, so the page's own requests carry it). While bound to loopback, a request whose Host
// header names another host is refused, so a web page elsewhere cannot reach the dashboard by
// DNS rebinding. Only GET and HEAD are served; everything is read-only.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dashboard/api.h"

namespace aha::dashboard {

struct ServerOptions {
  std::vector<std::filesystem::path> runs_dirs{"runs"};
  std::string host = "127.0.0.1";
  uint16_t port = 8265;  // 0: any free port (see port())
  std::string token{};   // "" for none (only allowed on loopback)
  int threads = 4;
  ApiOptions api{};
};

class DashboardServer {
 public:
  // Checks the options and binds the port; throws aha::Error saying what is wrong (a
  // non-loopback host without a token, a port in use, a --runs path that is a file).
  explicit DashboardServer(const ServerOptions& options);
  ~DashboardServer();
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  uint16_t port() const;
  std::vector<std::filesystem::path> missing_runs_dirs() const;  // --runs directories not made yet
  std::string url() const;  // http://HOST:PORT/

  // Serves until stop() (or SIGINT/SIGTERM with handle_signals). Blocks.
  void run(bool handle_signals = false);
  void stop();  // from any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aha::dashboard
