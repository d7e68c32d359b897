// The parts of an HTTP request target the dashboard needs: the percent-decoded path and query
// parameters, and cookie lookup. Malformed encodings are an HttpError 400.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "dashboard/api.h"

namespace aha::dashboard {

struct RequestTarget {
  std::string path;   // decoded; '+' is kept as is
  QueryParams query;  // decoded; '+' is a space
};

// "/api/runs/a%2Fb/metrics?names=x,y" -> {"/api/runs/a/b/metrics", {{"names", "x,y"}}}.
// A path with a NUL byte, or a '%' not followed by two hex digits, is an HttpError 400.
RequestTarget parse_target(std::string_view target);

// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

}  // namespace aha::dashboard
