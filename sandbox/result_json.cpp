// SandboxResult::to_json(): one JSON object per run, for `aha sandbox run` and logs.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sandbox/sandbox.h"

namespace aha::sandbox {

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
  string("stdout", stdout_text);
  string("stderr", stderr_text);
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
