// Helpers for the dashboard tests: a server on a free port in a background thread, a plain
// HTTP client (Boost.Beast), and run databases written through the real RunStore.
#pragma once
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "core/files.h"
#include "core/json.h"
#include "core/run_store.h"
#include "dashboard/server.h"
#include "tests/test_util.h"

namespace aha::dashboard::test {

namespace fs = std::filesystem;

// A folder under the build directory named after the running test, empty.
inline fs::path fresh_work_dir(const std::string& group) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir = fs::path(AHA_BINARY_DIR) / "dashboard-tests" / (group + "-" + info->name());
  remove_tree(dir);
  fs::create_directories(dir);
  return dir;
}

class LiveServer {
 public:
  explicit LiveServer(ServerOptions options) {
    options.port = 0;
    server_ = std::make_unique<DashboardServer>(options);
    thread_ = std::thread([this] { server_->run(); });
  }
  ~LiveServer() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }
  std::string url() const { return server_->url(); }

 private:
  std::unique_ptr<DashboardServer> server_;
  std::thread thread_;
};

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

inline HttpResult http_request(uint16_t port, const std::string& target,
                               const std::map<std::string, std::string>& headers = {},
                               boost::beast::http::verb method = boost::beast::http::verb::get) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  stream.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [k, v] : headers) request.set(k, v);
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1u << 30);
  if (method == http::verb::head) parser.skip(true);
  http::read(stream, buffer, parser);
  HttpResult result;
  result.status = static_cast<int>(parser.get().result_int());
  result.body = parser.get().body();
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = std::string(field.value());
  }
  beast::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  return result;
}

inline rapidjson::Document get_json(uint16_t port, const std::string& target) {
  const HttpResult r = http_request(port, target);
  EXPECT_EQ(r.status, 200) << target << ": " << r.body;
  return json::parse(r.body, target);
}

// A recipe config as `aha train` stores it (only the keys the dashboard reads matter).
inline std::string recipe_json(const std::string& name, int64_t steps) {
  return R"({"name": ")" + name + R"(", "accuracy_reward": "accuracy", "schedule": {"steps": )" +
         std::to_string(steps) + "}}";
}

}  // namespace aha::dashboard::test
