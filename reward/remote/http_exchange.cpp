#include "reward/remote/http_exchange.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>

namespace aha::reward::remote {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

ServerAddress parse_server_address(const std::string& text, const std::string& what) {
  const std::string expected = what + ": '" + text + "' is not HOST:PORT (e.g. 127.0.0.1:7000 or [::1]:7000)";
  ServerAddress out;
  out.text = text;
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    require(close != std::string::npos && close + 1 < text.size() && text[close + 1] == ':', expected);
    out.host = text.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    require(colon != std::string::npos && colon > 0, expected);
    out.host = text.substr(0, colon);
    require(out.host.find(':') == std::string::npos, expected + " (an IPv6 address goes in brackets)");
  }
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  require(!port.empty() && ec == std::errc() && end == port.data() + port.size() && value >= 1 && value <= 65535,
          expected + " (the port must be 1..65535)");
  out.port = static_cast<uint16_t>(value);
  return out;
}

HttpReply exchange(const ServerAddress& server, const HttpCall& call) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%g", call.timeout_seconds);
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::error_code ec;
  auto endpoints = resolver.resolve(server.host, std::to_string(server.port), ec);
  if (ec) throw ServerUnreachable("cannot resolve '" + server.host + "': " + ec.message());

  http::request<http::string_body> request{call.post ? http::verb::post : http::verb::get, call.target, 11};
  request.set(http::field::host, server.host.find(':') == std::string::npos
                                     ? server.host + ":" + std::to_string(server.port)
                                     : "[" + server.host + "]:" + std::to_string(server.port));
  request.set(http::field::user_agent, "aha-reward-client");
  if (!call.token.empty()) request.set(http::field::authorization, "Bearer " + call.token);
  if (call.post) {
    request.set(http::field::content_type, "application/json");
    request.body() = call.body;
  }
  request.keep_alive(false);
  request.prepare_payload();

  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(call.max_reply_bytes);
  const char* stage = "connect";
  beast::error_code failure;
  // One deadline for connecting, sending and the whole reply (which includes the scoring).
  stream.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(call.timeout_seconds)));
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) {
      failure = e;
      return;
    }
    stage = "send the request";
    http::async_write(stream, request, [&](beast::error_code e2, size_t) {
      if (e2) {
        failure = e2;
        return;
      }
      stage = "read the reply";
      http::async_read(stream, buffer, parser, [&](beast::error_code e3, size_t) { failure = e3; });
    });
  });
  io.run();
  if (failure == beast::error::timeout)
    throw ServerUnreachable("no reply within " + std::string(seconds) + " s while trying to " + stage);
  if (failure == http::error::body_limit)
    throw ServerUnreachable("the reply is over " + std::to_string(call.max_reply_bytes) + " bytes");
  if (failure) throw ServerUnreachable("cannot " + std::string(stage) + ": " + failure.message());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return {static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
}

}  // namespace aha::reward::remote
