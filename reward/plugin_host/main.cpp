// aha-reward-plugin-host <plugin.so>: loads a C-ABI reward plug-in (reward/plugins/
// aha_reward_plugin.h) with dlopen and serves it over the JSON Lines protocol of
// reward/plugin_rewards.h on stdin/stdout. aha runs it as a child process so that a plug-in
// that crashes or hangs takes only this process down.
//
// The protocol uses a private copy of stdout; the plug-in's own stdout is sent to stderr so
// that a stray printf cannot corrupt a reply.
#include <dlfcn.h>
#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "reward/plugins/aha_reward_plugin.h"

namespace {

using VersionFn = uint32_t (*)();
using CreateFn = void* (*)(const char*, char*, size_t);
using ScoreFn = int (*)(void*, const aha_reward_input*, aha_reward_output*);
using DestroyFn = void (*)(void*);

FILE* protocol_out = nullptr;

void send(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), protocol_out);
  std::fputc('\n', protocol_out);
  std::fflush(protocol_out);
}

std::string error_reply(const char* id_json, const std::string& message) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  if (id_json) {
    w.Key("id");
    w.RawValue(id_json, std::char_traits<char>::length(id_json), rapidjson::kNumberType);
  }
  w.Key("error");
  w.String(message.c_str());
  w.EndObject();
  return aha::json::text_of(buffer);  // valid UTF-8 whatever the completion held
}

std::string string_field(const rapidjson::Value& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || it->value.IsNull()) return "";
  if (!it->value.IsString()) throw aha::Error(std::string("request field '") + key + "' must be a string");
  return it->value.GetString();
}

// Serves one request line; returns the reply line.
std::string serve(const std::string& line, void* state, ScoreFn score) {
  auto doc = aha::json::parse(line, "request");
  if (!doc.IsObject() || !doc.HasMember("id") || !doc["id"].IsInt64()) {
    return error_reply(nullptr, "request is not an object with an integer 'id'");
  }
  std::string id = std::to_string(doc["id"].GetInt64());
  std::string prompt = string_field(doc, "prompt"), completion = string_field(doc, "completion"),
              gold = string_field(doc, "gold"), task = string_field(doc, "task"),
              setup = string_field(doc, "test_setup"), entry = string_field(doc, "entry_point");
  std::string metadata;
  if (doc.HasMember("metadata") && !doc["metadata"].IsNull())
    metadata = aha::json::to_string(doc["metadata"]);
  std::vector<std::string> tests;
  if (doc.HasMember("tests") && doc["tests"].IsArray()) {
    for (auto& t : doc["tests"].GetArray())
      if (t.IsString()) tests.push_back(t.GetString());
  }
  std::vector<const char*> test_pointers;
  for (auto& t : tests) test_pointers.push_back(t.c_str());
  aha_reward_input in{
      prompt.c_str(),
      completion.c_str(),
      gold.c_str(),
      task.c_str(),
      metadata.c_str(),
      test_pointers.data(),
      test_pointers.size(),
      setup.c_str(),
      entry.c_str(),
      doc.HasMember("num_tokens") && doc["num_tokens"].IsInt64() ? doc["num_tokens"].GetInt64() : -1};
  aha_reward_output out{};
  int rc = score(state, &in, &out);
  out.diagnostic[AHA_REWARD_TEXT_SIZE - 1] = '\0';
  if (rc != 0) return error_reply(id.c_str(), std::string("plug-in failed: ") + out.diagnostic);
  if (!std::isfinite(out.value)) return error_reply(id.c_str(), "plug-in returned a non-finite value");
  if (out.num_components > AHA_REWARD_MAX_COMPONENTS)
    return error_reply(id.c_str(), "plug-in returned too many components");
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("id");
  w.Int64(doc["id"].GetInt64());
  w.Key("value");
  w.Double(out.value);
  w.Key("components");
  w.StartObject();
  for (size_t i = 0; i < out.num_components; ++i) {
    out.components[i].name[AHA_REWARD_NAME_SIZE - 1] = '\0';
    if (!std::isfinite(out.components[i].value))
      return error_reply(id.c_str(), "plug-in returned a non-finite component");
    w.Key(out.components[i].name);
    w.Double(out.components[i].value);
  }
  w.EndObject();
  w.Key("diagnostic");
  w.String(out.diagnostic);
  w.EndObject();
  return aha::json::text_of(buffer);  // valid UTF-8 whatever the completion held
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: aha-reward-plugin-host <plugin.so>\n");
    return 2;
  }
  int protocol_fd = dup(STDOUT_FILENO);
  protocol_out = fdopen(protocol_fd, "w");
  dup2(STDERR_FILENO, STDOUT_FILENO);
  if (!protocol_out) return 2;

  std::string line;
  if (!std::getline(std::cin, line)) return 0;
  void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    send(error_reply(nullptr, std::string("dlopen failed: ") + dlerror()));
    return 1;
  }
  auto version = reinterpret_cast<VersionFn>(dlsym(library, "aha_reward_abi_version"));
  auto create = reinterpret_cast<CreateFn>(dlsym(library, "aha_reward_create"));
  auto score = reinterpret_cast<ScoreFn>(dlsym(library, "aha_reward_score"));
  auto destroy = reinterpret_cast<DestroyFn>(dlsym(library, "aha_reward_destroy"));
  if (!version || !create || !score || !destroy) {
    send(error_reply(nullptr, std::string(argv[1]) +
                                  " lacks one of aha_reward_abi_version, aha_reward_create, "
                                  "aha_reward_score, aha_reward_destroy"));
    return 1;
  }
  if (version() != AHA_REWARD_ABI_VERSION) {
    send(error_reply(nullptr, std::string(argv[1]) + " has ABI version " + std::to_string(version()) +
                                  "; this aha speaks version " + std::to_string(AHA_REWARD_ABI_VERSION)));
    return 1;
  }
  void* state = nullptr;
  try {
    auto handshake = aha::json::parse(line, "handshake");
    std::string options = handshake.IsObject() && handshake.HasMember("options")
                              ? aha::json::to_string(handshake["options"])
                              : "{}";
    char error[AHA_REWARD_TEXT_SIZE] = {0};
    state = create(options.c_str(), error, sizeof error);
    error[sizeof error - 1] = '\0';
    if (!state) {
      send(error_reply(nullptr, error[0] ? error : "aha_reward_create returned NULL"));
      return 1;
    }
  } catch (const aha::Error& e) {
    send(error_reply(nullptr, e.what()));
    return 1;
  }
  send("{\"aha_reward_plugin\":1}");
  while (std::getline(std::cin, line)) {
    try {
      send(serve(line, state, score));
    } catch (const aha::Error& e) {
      send(error_reply(nullptr, e.what()));
    }
  }
  destroy(state);
  return 0;
}
