#include "core/http_common.h"

#include "core/error.h"
#include "core/json.h"

namespace aha::http {

boost::asio::ip::address listen_address(const std::string& host, const std::string& option) {
  if (host == "localhost") return boost::asio::ip::make_address("127.0.0.1");
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  require(!ec, option + " '" + host +
                   "' is not an IP address (use 127.0.0.1, ::1, 0.0.0.0 or an interface's address)");
  return address;
}

bool same_secret(std::string_view given, std::string_view secret) {
  if (secret.empty() || given.size() != secret.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return diff == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.substr(0, kScheme.size()) != kScheme) return {};
  return authorization.substr(kScheme.size());
}

bool is_loopback_host_header(std::string_view host) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    name = name.substr(0, name.find(']') + 1);
  } else if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  return name == "127.0.0.1" || name == "localhost" || name == "[::1]";
}

std::string error_json(const std::string& message) {
  rapidjson::Document doc;
  doc.SetObject();
  doc.AddMember("error", rapidjson::Value(message.c_str(), static_cast<rapidjson::SizeType>(message.size()), doc.GetAllocator()),
                doc.GetAllocator());
  return json::to_string(doc);
}

}  // namespace aha::http
