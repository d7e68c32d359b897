// SandboxResult::to_json(): one JSON object per run, for `aha sandbox run` and logs. The
// program's output is made valid UTF-8 on the way (invalid bytes become U+FFFD).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sandbox/sandbox.h"

namespace aha::sandbox {
namespace {

// The program's output as valid UTF-8 (JSON requires it): each byte that does not start a
// well-formed sequence becomes U+FFFD.
std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) ok = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);  // overlong, surrogates
    if (ok && len == 4) ok = !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);  // overlong, > U+10FFFF
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace

std::string SandboxResult::to_json() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto string = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  auto strings = [&](const char* key, const std::vector<std::string>& values) {
    w.Key(key);
    w.StartArray();
    for (const auto& v : values) w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndArray();
  };
  w.StartObject();
  string("status", aha::sandbox::to_string(status));
  w.Key("exit_code");
  if (exit_code >= 0) w.Int(exit_code);
  else w.Null();
  w.Key("signal");
  if (signal > 0) w.Int(signal);
  else w.Null();
  w.Key("wall_seconds");
  w.Double(wall_seconds);
  w.Key("cpu_seconds");
  w.Double(cpu_seconds);
  string("stdout", valid_utf8(stdout_text));
  string("stderr", valid_utf8(stderr_text));
  w.Key("stdout_truncated");
  w.Bool(stdout_truncated);
  w.Key("stderr_truncated");
  w.Bool(stderr_truncated);
  strings("layers", layers);
  strings("missing_layers", missing_layers);
  string("message", message);
  w.EndObject();
  return buffer.GetString();
}

}  // namespace aha::sandbox
