#include "dashboard/http_request.h"

#include "dashboard/http_error.h"

namespace aha::dashboard {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) throw HttpError(400, "bad percent-encoding in the URL: '%' needs two hex digits");
      const int a = hex_digit(text[i + 1]), b = hex_digit(text[i + 2]);
      if (a < 0 || b < 0) throw HttpError(400, "bad percent-encoding in the URL: '%' needs two hex digits");
      out += static_cast<char>(a * 16 + b);
      i += 2;
    } else {
      out += plus_is_space && c == '+' ? ' ' : c;
    }
  }
  if (out.find('\0') != std::string::npos) throw HttpError(400, "the URL holds a NUL byte");
  return out;
}

}  // namespace

RequestTarget parse_target(std::string_view target) {
  RequestTarget out;
  const size_t question = target.find('?');
  out.path = decode(target.substr(0, question), false);
  if (question == std::string_view::npos) return out;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      out.query.emplace_back(decode(pair.substr(0, eq), true),
                             eq == std::string_view::npos ? "" : decode(pair.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace aha::dashboard
