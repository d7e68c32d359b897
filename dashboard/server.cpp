#include "dashboard/server.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <csignal>
#include <iostream>
#include <optional>
#include <thread>

#include "core/http_common.h"
#include "core/json.h"
#include "dashboard/assets.h"
#include "dashboard/http_error.h"
#include "dashboard/http_request.h"

namespace aha::dashboard {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Boost 1.74's Beast has its own string_view.
std::string_view view(beast::string_view text) { return {text.data(), text.size()}; }

constexpr auto kIdleTimeout = std::chrono::seconds(60);

}  // namespace

// The request handling shared by all connections: authentication, routing, the reply.
class RequestHandler {
 public:
  RequestHandler(const ServerOptions& options, bool loopback)
      : options_(options), loopback_(loopback), catalog_(options.runs_dirs), api_(catalog_, options.api) {}

  const RunCatalog& catalog() const { return catalog_; }

  Response respond(const Request& request) {
    Response response;
    try {
      response = route(request);
    } catch (const HttpError& e) {
      response = text_reply(request, e.status(), "application/json", aha::http::error_json(e.what()));
    } catch (const std::exception& e) {  // an unreadable run.db, an internal failure
      std::cerr << "aha dashboard: " << request.target() << ": " << e.what() << "\n";
      response = text_reply(request, 500, "application/json", aha::http::error_json(e.what()));
    }
    response.set("X-Content-Type-Options", "nosniff");
    response.set("Referrer-Policy", "no-referrer");  // the token may be in the URL
    response.set("X-Frame-Options", "DENY");
    response.set("Content-Security-Policy",
                 "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
    response.keep_alive(request.keep_alive());
    if (request.method() == http::verb::head) {
      response.content_length(response.body().size());
      response.body().clear();
    } else {
      response.prepare_payload();
    }
    return response;
  }

 private:
  Response text_reply(const Request& request, int status, const std::string& type, std::string body) {
    Response response{static_cast<http::status>(status), request.version()};
    response.set(http::field::server, "aha-dashboard");
    response.set(http::field::content_type, type);
    response.set(http::field::cache_control, "no-store");
    response.body() = std::move(body);
    return response;
  }

  Response route(const Request& request) {
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      auto response = text_reply(request, 405, "application/json",
                                 aha::http::error_json("method " + std::string(request.method_string()) +
                                            " not allowed: the dashboard is read-only (GET, HEAD)"));
      response.set(http::field::allow, "GET, HEAD");
      return response;
    }
    if (loopback_ && !aha::http::is_loopback_host_header(view(request[http::field::host])))
      throw HttpError(403, "Host '" + std::string(request[http::field::host]) +
                               "' is not this machine's loopback; the dashboard answers only requests made to "
                               "127.0.0.1 or localhost (DNS rebinding protection)");
    RequestTarget target = parse_target(view(request.target()));
    bool set_cookie = false;
    if (!options_.token.empty()) {
      std::optional<std::string> from_query;
      QueryParams rest;
      for (auto& [key, value] : target.query)
        if (key == "token") from_query = value;
        else rest.emplace_back(key, value);
      target.query = std::move(rest);
      const bool ok = (from_query && aha::http::same_secret(*from_query, options_.token)) ||
                      aha::http::same_secret(aha::http::bearer_token(view(request[http::field::authorization])), options_.token) ||
                      aha::http::same_secret(view(request["X-Aha-Token"]), options_.token) ||
                      aha::http::same_secret(cookie_value(view(request[http::field::cookie]), "aha_token").value_or(""), options_.token);
      if (!ok)
        throw HttpError(401, "this dashboard needs its token: open the URL `aha dashboard` printed (…/?token=…), "
                             "or send the header 'Authorization: Bearer TOKEN'");
      set_cookie = from_query.has_value();
    }
    Response response = content(request, target);
    if (set_cookie)
      response.set(http::field::set_cookie, "aha_token=" + options_.token + "; Path=/; HttpOnly; SameSite=Strict");
    return response;
  }

  Response content(const Request& request, const RequestTarget& target) {
    const std::string& path = target.path;
    if (path.rfind("/api/", 0) == 0) {
      ApiReply reply = api_.handle(path, target.query);
      return text_reply(request, reply.status, reply.content_type, std::move(reply.body));
    }
    auto asset = [&](std::string_view body, const char* type) {
      Response response = text_reply(request, 200, type, std::string(body));
      response.set(http::field::cache_control, "no-cache");
      return response;
    };
    if (!target.query.empty() && path != "/")
      throw HttpError(400, "unknown query parameter '" + target.query.front().first + "' for " + path);
    if (path == "/" || path == "/index.html") return asset(assets::index_html, "text/html; charset=utf-8");
    if (path == "/app.js") return asset(assets::app_js, "text/javascript; charset=utf-8");
    if (path == "/style.css") return asset(assets::style_css, "text/css; charset=utf-8");
    if (path == "/chart.js") return asset(assets::chart_js, "text/javascript; charset=utf-8");
    throw HttpError(404, "no page " + path + " (the dashboard serves /, its scripts and /api/...)");
  }

  const ServerOptions& options_;
  bool loopback_;
  RunCatalog catalog_;
  DashboardApi api_;
};

namespace {

// One connection: read a request, answer it, repeat while the client keeps the connection alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, RequestHandler& handler) : stream_(std::move(socket)), handler_(handler) {}

  void start() {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read, shared_from_this()));
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(16 * 1024);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) {  // the client closed, timed out, or sent what is not HTTP: just close
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    response_ = handler_.respond(parser_->get());
    http::async_write(stream_, response_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec || !response_.keep_alive()) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    read();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  RequestHandler& handler_;
};

}  // namespace

struct DashboardServer::Impl {
  Impl(const ServerOptions& o, bool loopback)
      : options(o), handler(options, loopback), acceptor(io) {}
  ServerOptions options;
  asio::io_context io;
  RequestHandler handler;
  tcp::acceptor acceptor;
  uint16_t port = 0;  // read once: the acceptor belongs to the io threads while they run
  std::string host_for_url;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), handler)->start();
      accept();
    });
  }
};

DashboardServer::DashboardServer(const ServerOptions& options) {
  const auto address = aha::http::listen_address(options.host);
  require(address.is_loopback() || !options.token.empty(),
          "--host " + options.host + " is reachable from other machines: give --token T (a secret) so that only "
          "those who have it can read the runs");
  require(options.threads >= 1, "dashboard threads must be >= 1");
  impl_ = std::make_unique<Impl>(options, address.is_loopback());
  tcp::endpoint endpoint(address, options.port);
  beast::error_code ec;
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  require(!ec, "aha dashboard: cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                   ec.message() + (ec == asio::error::address_in_use ? " (choose another --port)" : ""));
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->host_for_url = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  impl_->accept();
}

DashboardServer::~DashboardServer() { stop(); }

std::vector<std::filesystem::path> DashboardServer::missing_runs_dirs() const {
  return impl_->handler.catalog().missing_roots();
}

uint16_t DashboardServer::port() const { return impl_->port; }

std::string DashboardServer::url() const {
  return "http://" + impl_->host_for_url + ":" + std::to_string(port()) + "/";
}

void DashboardServer::run(bool handle_signals) {
  std::optional<asio::signal_set> signals;
  if (handle_signals) {
    signals.emplace(impl_->io, SIGINT, SIGTERM);
    signals->async_wait([this](beast::error_code, int) { stop(); });
  }
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->options.threads; ++i) threads.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : threads) t.join();
  // Closed only now that no io thread runs: closing it from stop() raced with an accept handler
  // on another io thread starting the next accept on the closing socket (a crash at shutdown).
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

void DashboardServer::stop() {
  if (impl_) impl_->io.stop();
}

}  // namespace aha::dashboard
