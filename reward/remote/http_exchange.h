// One HTTP request from a reward server's client: a fresh connection, the request, the whole
// reply, all within one deadline, so that a server that died, hangs or trickles its reply is
// given up on in bounded time. Boost.Beast on a private io_context.
//
// Contract:
// - parse_server_address reads "host:port" or "[v6]:port"; anything else is an aha::Error
//   naming the text and `what`.
// - exchange() returns the status and body of any complete reply (4xx and 5xx included). It
//   throws ServerUnreachable saying what happened (refused, reset, timed out after S s, a reply
//   over max_reply_bytes) when there is none; the caller names the server.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"

namespace aha::reward::remote {

struct ServerAddress {
  std::string host;
  uint16_t port = 0;
  std::string text;  // as given, for messages
};

ServerAddress parse_server_address(const std::string& text, const std::string& what);

class ServerUnreachable : public Error {
 public:
  using Error::Error;
};

struct HttpReply {
  int status = 0;
  std::string body;
};

struct HttpCall {
  bool post = false;  // else GET
  std::string target;
  std::string body;   // JSON, for POST
  std::string token;  // sent as "Authorization: Bearer T" when not empty
  double timeout_seconds = 60;
  size_t max_reply_bytes = 1u << 30;
};

HttpReply exchange(const ServerAddress& server, const HttpCall& call);

}  // namespace aha::reward::remote
