// What aha's HTTP servers (the dashboard, the reward server) share: the address to listen on,
// the token check, the Host-header check against DNS rebinding, and the JSON error body.
//
// Contract:
// - listen_address accepts an IP address (v4 or v6) or "localhost" (127.0.0.1); anything else
//   is an aha::Error naming the option and value.
// - same_secret compares in time independent of where the texts differ, so a token cannot be
//   guessed byte by byte from response times; an empty secret matches nothing.
// - bearer_token is the T of "Bearer T" (empty for any other value).
// - is_loopback_host_header: the Host header names this machine's loopback ("127.0.0.1:8265",
//   "localhost", "[::1]:80").
#pragma once
#include <boost/asio/ip/address.hpp>

#include <string>
#include <string_view>

namespace aha::http {

boost::asio::ip::address listen_address(const std::string& host, const std::string& option = "--host");

bool same_secret(std::string_view given, std::string_view secret);

std::string_view bearer_token(std::string_view authorization);

bool is_loopback_host_header(std::string_view host);

// {"error": message} as JSON text.
std::string error_json(const std::string& message);

}  // namespace aha::http
