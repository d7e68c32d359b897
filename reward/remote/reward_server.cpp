#include "reward/remote/reward_server.h"

#include <sys/socket.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/http_common.h"
#include "core/thread_pool.h"
#include "reward/remote/wire_format.h"
#include "reward/reward_runner.h"

namespace aha::reward::remote {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http_ = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Response = http_::response<http_::string_body>;

// Boost 1.74's Beast has its own string_view.
std::string_view view(beast::string_view text) { return {text.data(), text.size()}; }

std::chrono::steady_clock::duration as_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

// A request refused before or after its body is read: the status and why.
struct Refusal {
  int status;
  std::string message;
};

}  // namespace

class RewardSession;

// What every connection shares. Declared before the io_context in Impl, so that sessions
// the io_context destroys with its handlers still find it.
struct ServerState {
  RewardServerOptions options;
  std::unique_ptr<Scorer> scorer;
  bool loopback = true;
  std::atomic<size_t> connections{0};
  std::atomic<bool> aborted{false};
  std::mutex sessions_mutex;
  std::vector<std::weak_ptr<RewardSession>> sessions;  // for abort()
  std::unique_ptr<ThreadPool> scoring;                        // max_inflight batches at once
};

// One connection: read a request (header first, so that a refused one costs no body), answer
// it, repeat while the client keeps the connection alive.
class RewardSession : public std::enable_shared_from_this<RewardSession> {
 public:
  RewardSession(tcp::socket socket, ServerState& state)
      : fd_(socket.native_handle()), stream_(std::move(socket)), state_(state) {
    ++state_.connections;
  }
  ~RewardSession() { --state_.connections; }

  int fd() const { return fd_; }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->state_.connections > self->state_.options.max_connections)
        self->reply(503, http::error_json("too many connections (the server's --max-connections is " +
                                          std::to_string(self->state_.options.max_connections) + "); try again later"),
                    false);
      else
        self->read_header();
    });
  }

 private:
  void read_header() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(state_.options.max_request_bytes);
    // One deadline for the whole request, header and body: a client that trickles bytes
    // (slowloris) cannot extend it.
    stream_.expires_after(as_duration(state_.options.read_timeout_seconds));
    http_::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&RewardSession::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec == http_::error::header_limit) return reply(431, http::error_json("the request header is over 16 KiB"), false);
    // Beast checks a Content-Length against the body limit as soon as the header is in.
    if (ec == http_::error::body_limit) return reply(413, too_large(), false);
    if (ec) return close();  // closed, timed out, or not HTTP
    if (auto refusal = check_header(parser_->get())) return reply(refusal->status, http::error_json(refusal->message), false);
    if (parser_->get().method() == http_::verb::post &&
        beast::iequals(parser_->get()[http_::field::expect], "100-continue")) {
      // curl asks before sending a body over 1 KiB; without this answer it waits a second.
      continue_ = std::make_shared<http_::response<http_::empty_body>>(http_::status::continue_, 11);
      return http_::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code e, size_t) {
        if (e) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    http_::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&RewardSession::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, size_t) {
    if (ec == http_::error::body_limit) return reply(413, too_large(), false);
    if (ec) return close();
    handle(parser_->get());
  }

  std::string too_large() const {
    return http::error_json("the request is larger than the server's limit of " +
                            std::to_string(state_.options.max_request_bytes) +
                            " bytes (--max-request-bytes); send fewer items per request");
  }

  // Everything that can be refused from the header alone.
  std::optional<Refusal> check_header(const http_::request<http_::string_body>& request) const {
    const auto& o = state_.options;
    if (!o.token.empty() && !http::same_secret(http::bearer_token(view(request[http_::field::authorization])), o.token))
      return Refusal{401, "this reward server needs its token: send the header 'Authorization: Bearer TOKEN'"};
    if (state_.loopback && !http::is_loopback_host_header(view(request[http_::field::host])))
      return Refusal{403, "Host '" + std::string(view(request[http_::field::host])) +
                              "' is not this machine's loopback; the server answers only requests made to 127.0.0.1 "
                              "or localhost (DNS rebinding protection)"};
    const std::string_view target = view(request.target());
    const auto method = request.method();
    if (target == "/health") {
      if (method != http_::verb::get) return Refusal{405, "/health takes GET"};
    } else if (target == "/score") {
      if (method != http_::verb::post) return Refusal{405, "/score takes POST with a JSON batch"};
      const std::string_view type = view(request[http_::field::content_type]);
      if (type.substr(0, type.find(';')) != "application/json")
        return Refusal{415, "/score takes Content-Type: application/json, got '" + std::string(type) + "'"};
      if (auto length = parser_->content_length(); length && *length > o.max_request_bytes)
        return Refusal{413, "the request is " + std::to_string(*length) + " bytes, over the server's limit of " +
                                std::to_string(o.max_request_bytes) + " bytes (--max-request-bytes); send fewer items per request"};
    } else {
      return Refusal{404, "no endpoint " + std::string(target) + " (the reward server has GET /health and POST /score)"};
    }
    return std::nullopt;
  }

  void handle(const http_::request<http_::string_body>& request) {
    const bool keep_alive = request.keep_alive();
    if (request.target() == "/health") {
      auto* runner = dynamic_cast<const RewardRunner*>(state_.scorer.get());
      return reply(200, health_json(state_.scorer->specs(), runner ? runner->threads() : 0, state_.options.max_inflight),
                   keep_alive);
    }
    ScoreRequest batch;
    try {
      batch = parse_score_request(request.body());
    } catch (const Error& e) {
      return reply(400, http::error_json(e.what()), keep_alive);
    }
    if (batch.has_rewards) {
      const std::string difference = spec_difference(batch.rewards, state_.scorer->specs());
      if (!difference.empty())
        return reply(409, http::error_json("this server scores other rewards than the request names: " + difference +
                                           " (\"there\" is this server; start it with the same --rewards)"),
                     keep_alive);
    }
    // Scoring blocks for as long as the rewards take, so it runs on the scoring pool, never on
    // the threads that serve the other connections.
    state_.scoring->submit([self = shared_from_this(), items = std::move(batch.items), keep_alive]() mutable {
      if (self->state_.aborted) return;
      int status = 200;
      std::string body;
      try {
        body = score_reply_json(self->state_.scorer->score(std::move(items)));
      } catch (const std::exception& e) {
        status = 500;
        body = http::error_json(std::string("scoring failed: ") + e.what());
      }
      asio::post(self->stream_.get_executor(),
                 [self, status, body = std::move(body), keep_alive]() mutable { self->reply(status, std::move(body), keep_alive); });
    });
  }

  void reply(int status, std::string body, bool keep_alive) {
    response_ = Response{static_cast<http_::status>(status), 11};
    response_.set(http_::field::server, "aha-reward-server");
    response_.set(http_::field::content_type, "application/json");
    response_.set(http_::field::cache_control, "no-store");
    response_.body() = std::move(body);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    // A client that does not read its reply is cut off like one that does not send.
    stream_.expires_after(as_duration(state_.options.read_timeout_seconds));
    http_::async_write(stream_, response_, beast::bind_front_handler(&RewardSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec) return close();
    if (!response_.keep_alive()) return linger_close();
    read_header();
  }

  // Closing a socket with unread request bytes makes the kernel send a reset, which can reach
  // the client before our reply does (a 413 refused from its header alone, with the body still
  // coming). So: stop sending, read and drop what still arrives for a short while, then close.
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(as_duration(std::min(2.0, state_.options.read_timeout_seconds)));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  int fd_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http_::request_parser<http_::string_body>> parser_;
  std::shared_ptr<http_::response<http_::empty_body>> continue_;
  std::array<char, 16 * 1024> discard_;
  Response response_;
  ServerState& state_;
};

struct RewardServer::Impl {
  ServerState state;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  std::string host_for_url;
  uint16_t port = 0;  // kept: the acceptor is gone once run() has returned

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open() || state.aborted) return;
      if (!ec) {
        auto session = std::make_shared<RewardSession>(std::move(socket), state);
        {
          std::lock_guard<std::mutex> lock(state.sessions_mutex);
          std::erase_if(state.sessions, [](const auto& s) { return s.expired(); });
          state.sessions.push_back(session);
        }
        session->start();
      }
      accept();
    });
  }
};

RewardServer::RewardServer(const RewardServerOptions& options, const std::vector<RewardSpec>& rewards)
    : RewardServer(options, std::make_unique<RewardRunner>(rewards, options.threads)) {}

RewardServer::RewardServer(const RewardServerOptions& options, std::unique_ptr<Scorer> scorer) {
  const auto address = http::listen_address(options.host);
  require(address.is_loopback() || !options.token.empty(),
          "--host " + options.host + " is reachable from other machines: give --token T (a secret) so that only "
          "those who have it can use the reward server");
  require(options.max_inflight >= 1, "the reward server's max_inflight must be >= 1");
  require(options.max_connections >= 1, "the reward server's max_connections must be >= 1");
  require(options.max_request_bytes >= 1, "the reward server's max_request_bytes must be >= 1");
  require(options.read_timeout_seconds > 0, "the reward server's read timeout must be > 0 seconds");
  require(options.io_threads >= 1, "the reward server's io_threads must be >= 1");
  impl_ = std::make_unique<Impl>();
  impl_->state.options = options;
  impl_->state.scorer = std::move(scorer);
  impl_->state.loopback = address.is_loopback();
  impl_->state.scoring = std::make_unique<ThreadPool>(options.max_inflight);
  tcp::endpoint endpoint(address, options.port);
  beast::error_code ec;
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  require(!ec, "aha serve rewards: cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                   ec.message() + (ec == asio::error::address_in_use ? " (choose another --port)" : ""));
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->host_for_url = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  impl_->accept();
}

RewardServer::~RewardServer() {
  if (!impl_) return;
  stop();
  // Batches still queued are dropped; those being scored finish (their rewards are bounded by
  // their timeouts) and post their replies to the stopped io_context, which discards them.
  impl_->state.aborted = true;
  impl_->state.scoring.reset();
}

uint16_t RewardServer::port() const { return impl_->port; }

std::string RewardServer::url() const { return "http://" + impl_->host_for_url + ":" + std::to_string(port()) + "/"; }

void RewardServer::run(bool handle_signals) {
  std::optional<asio::signal_set> signals;
  if (handle_signals) {
    signals.emplace(impl_->io, SIGINT, SIGTERM);
    signals->async_wait([this](beast::error_code ec, int) {
      if (!ec) stop();
    });
  }
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->state.options.io_threads; ++i) threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : threads) t.join();
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

void RewardServer::stop() { impl_->io.stop(); }

void RewardServer::abort() {
  impl_->state.aborted = true;
  // shutdown(2) on the descriptors is safe from any thread (no Asio state is touched): every
  // peer sees its connection end now, and the listening socket stops taking new ones.
  {
    std::lock_guard<std::mutex> lock(impl_->state.sessions_mutex);
    for (auto& weak : impl_->state.sessions)
      if (auto session = weak.lock()) ::shutdown(session->fd(), SHUT_RDWR);
  }
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  stop();
}

}  // namespace aha::reward::remote
