// What the reward server tests share: a server on a thread on an ephemeral loopback port,
// raw HTTP over a plain socket (to send what a well-behaved client never would), and sample
// batches.
#pragma once
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "reward/remote/reward_server.h"
#include "reward/reward_runner.h"

namespace aha::reward::remote::testing {

inline RewardServerOptions quick_options() {
  RewardServerOptions o;
  o.port = 0;
  o.threads = 2;
  o.read_timeout_seconds = 1.5;  // short, so that the slow-client test stays fast
  return o;
}

class RunningServer {
 public:
  RunningServer(const RewardServerOptions& options, std::unique_ptr<Scorer> scorer)
      : server_(std::make_unique<RewardServer>(options, std::move(scorer))),
        thread_([this] { server_->run(); }) {}
  RunningServer(const RewardServerOptions& options, const std::vector<RewardSpec>& specs)
      : RunningServer(options, std::make_unique<RewardRunner>(specs, options.threads)) {}
  ~RunningServer() {
    server_->stop();
    thread_.join();
  }
  RewardServer& server() { return *server_; }
  uint16_t port() const { return server_->port(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }

 private:
  std::unique_ptr<RewardServer> server_;
  std::thread thread_;
};

// Sends `bytes` on a fresh connection and returns all the server sends until it closes.
inline std::string raw_exchange(uint16_t port, const std::string& bytes) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket, asio::buffer(bytes));
  std::string out;
  boost::system::error_code ec;
  char buffer[4096];
  for (;;) {
    const size_t n = socket.read_some(asio::buffer(buffer), ec);
    if (ec) break;
    out.append(buffer, n);
  }
  return out;
}

inline std::string http_request(const std::string& method, const std::string& target, const std::string& body,
                                const std::string& extra_headers = "Content-Type: application/json\r\n") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The status code of a raw reply ("HTTP/1.1 413 ..." -> 413); 0 when there is none.
inline int status_of(const std::string& reply) {
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) return 0;
  return std::stoi(reply.substr(9, 3));
}

inline std::string body_of(const std::string& reply) {
  const size_t end = reply.find("\r\n\r\n");
  return end == std::string::npos ? "" : reply.substr(end + 4);
}

inline ScoringInput math_item(const std::string& completion, const std::string& gold) {
  ScoringInput in;
  in.example.prompt = "What is the answer?";
  in.example.gold = gold;
  in.completion.text = completion;
  return in;
}

// Right, wrong, unformatted and unanswered completions, with hand-known accuracy.
inline std::vector<ScoringInput> math_batch() {
  return {math_item("<think>2+2</think>\n<answer>4</answer>", "4"),
          math_item("<think>hm</think>\n<answer>5</answer>", "4"),
          math_item("The answer is \\boxed{\\frac{1}{2}}", "0.5"),
          math_item("<think>x</think>\n<answer>\\boxed{12}</answer>", "#### 12"),
          math_item("no answer here", "7"),
          math_item("<think>a</think><answer>3/4</answer>", "\\frac{3}{4}"),
          math_item("", "1"),
          math_item("<think>q</think>\n<answer>10</answer>", "#### 1,000")};
}

}  // namespace aha::reward::remote::testing
