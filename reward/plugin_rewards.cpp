#include "reward/plugin_rewards.h"

#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "core/error.h"
#include "core/json.h"
#include "reward/plugin_process.h"

namespace aha::reward {
namespace {

// The plug-in answered a request with {"error": ...}: it is still in step.
class PluginReportedError : public Error {
 public:
  using Error::Error;
};

std::string error_text(const rapidjson::Value& value) {
  return value.IsString() ? std::string(value.GetString()) : json::to_string(value);
}

std::string request_line(int64_t id, const RewardExample& example, const Completion& completion) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto string_field = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  w.Key("id");
  w.Int64(id);
  string_field("prompt", example.prompt);
  string_field("completion", completion.text);
  string_field("gold", example.gold);
  string_field("task", to_string(example.task));
  w.Key("metadata");
  if (example.metadata_json.empty()) {
    w.Null();
  } else {
    auto metadata = json::parse(example.metadata_json, "example metadata");
    metadata.Accept(w);
  }
  w.Key("tests");
  w.StartArray();
  for (auto& t : example.tests) w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
  w.EndArray();
  string_field("test_setup", example.test_setup);
  string_field("entry_point", example.entry_point);
  w.Key("num_tokens");
  w.Int64(completion.num_tokens);
  w.EndObject();
  return json::text_of(buffer);  // valid UTF-8 whatever the completion held
}

RewardOutput parse_reply(const std::string& line, int64_t id) {
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject())
    throw Error("reply is not a JSON object: " + line.substr(0, 200));
  auto id_field = doc.FindMember("id");
  if (id_field == doc.MemberEnd() || !id_field->value.IsInt64() || id_field->value.GetInt64() != id) {
    throw Error("reply does not carry the request's id " + std::to_string(id) + ": " + line.substr(0, 200));
  }
  auto error = doc.FindMember("error");
  if (error != doc.MemberEnd()) throw PluginReportedError("plug-in error: " + error_text(error->value));
  RewardOutput out;
  auto value = doc.FindMember("value");
  if (value == doc.MemberEnd() || !value->value.IsNumber() || !std::isfinite(value->value.GetDouble())) {
    throw Error("reply has no finite number 'value': " + line.substr(0, 200));
  }
  out.value = value->value.GetDouble();
  auto components = doc.FindMember("components");
  if (components != doc.MemberEnd()) {
    if (!components->value.IsObject()) throw Error("reply field 'components' must be an object of numbers");
    for (auto& c : components->value.GetObject()) {
      if (!c.value.IsNumber() || !std::isfinite(c.value.GetDouble())) {
        throw Error(std::string("reply component '") + c.name.GetString() + "' is not a finite number");
      }
      out.components[c.name.GetString()] = c.value.GetDouble();
    }
  }
  auto diagnostic = doc.FindMember("diagnostic");
  if (diagnostic != doc.MemberEnd()) {
    if (!diagnostic->value.IsString()) throw Error("reply field 'diagnostic' must be a string");
    out.diagnostic = std::string(diagnostic->value.GetString()).substr(0, 500);
  }
  return out;
}

// A pool of plug-in processes: each call borrows one (starting it if needed), and a process
// that misbehaved is dropped.
class ProcessReward : public Reward {
 public:
  ProcessReward(std::vector<std::string> command, std::string options_json, size_t processes, double timeout,
                double startup_timeout)
      : command_(std::move(command)),
        options_json_(std::move(options_json)),
        max_processes_(processes),
        timeout_(timeout),
        startup_timeout_(startup_timeout) {
    // Start one now so that a bad command or bad options fail at creation, not per sample.
    idle_.push_back(start());
    running_ = 1;
  }

  RewardOutput score(const RewardExample& example, const Completion& completion) const override {
    const int64_t id = next_id_++;
    const std::string request = request_line(id, example, completion);
    std::unique_ptr<PluginProcess> process = acquire();
    RewardOutput out;
    try {
      out = parse_reply(process->exchange(request, timeout_), id);
    } catch (const PluginReportedError&) {
      release(std::move(process));  // a well-formed error reply: the process is fine
      throw;
    } catch (...) {
      discard(std::move(process));  // garbage, a crash or a hang: it was killed
      throw;
    }
    release(std::move(process));
    return out;
  }

 private:
  std::unique_ptr<PluginProcess> start() const {
    auto process = std::make_unique<PluginProcess>(command_);
    std::string reply;
    try {
      reply =
          process->exchange("{\"aha_reward_plugin\":1,\"options\":" + options_json_ + "}", startup_timeout_);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " during the options handshake");
    }
    rapidjson::Document doc;
    doc.Parse(reply.data(), reply.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      throw Error("plug-in handshake reply is not a JSON object: " + reply.substr(0, 200));
    }
    auto error = doc.FindMember("error");
    if (error != doc.MemberEnd()) throw Error("plug-in refused its options: " + error_text(error->value));
    auto version = doc.FindMember("aha_reward_plugin");
    if (version == doc.MemberEnd() || !version->value.IsInt() || version->value.GetInt() != 1) {
      throw Error("plug-in handshake reply lacks \"aha_reward_plugin\": 1: " + reply.substr(0, 200));
    }
    return process;
  }

  std::unique_ptr<PluginProcess> acquire() const {
    std::unique_lock<std::mutex> lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty() || running_ < max_processes_; });
    while (!idle_.empty()) {
      auto process = std::move(idle_.back());
      idle_.pop_back();
      if (!process->out_of_step()) return process;
      --running_;  // it wrote unasked or exited while idle: replace it
    }
    ++running_;
    lock.unlock();
    try {
      return start();
    } catch (...) {
      std::lock_guard<std::mutex> relock(mutex_);
      --running_;
      available_.notify_one();
      throw;
    }
  }

  void release(std::unique_ptr<PluginProcess> process) const {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(process));
    available_.notify_one();
  }

  void discard(std::unique_ptr<PluginProcess> process) const {
    process.reset();  // kills and reaps
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    available_.notify_one();
  }

  std::vector<std::string> command_;
  std::string options_json_;
  size_t max_processes_;
  double timeout_, startup_timeout_;
  mutable std::mutex mutex_;
  mutable std::condition_variable available_;
  mutable std::vector<std::unique_ptr<PluginProcess>> idle_;
  mutable size_t running_ = 0;
  mutable std::atomic<int64_t> next_id_{1};
};

std::vector<std::string> string_list(const json::ObjectReader& options, const char* key) {
  const auto& value = options.get(key);
  std::vector<std::string> out;
  bool ok = value.IsArray() && !value.Empty();
  for (size_t i = 0; ok && i < value.Size(); ++i) {
    ok = value[i].IsString() && value[i].GetStringLength() > 0;
    if (ok) out.push_back(value[i].GetString());
  }
  require(ok, options.context() + ": option '" + key +
                  "' must be a non-empty list of non-empty strings, got " + json::to_string(value));
  return out;
}

std::unique_ptr<Reward> make_pooled(const json::ObjectReader& options, std::vector<std::string> command,
                                    double timeout_seconds) {
  int64_t processes = options.get_int("processes", 1);
  double startup = options.get_double("startup_timeout_seconds", 30.0);
  require(processes >= 1 && processes <= 256, options.context() + ": option 'processes' must be in 1..256");
  require(startup > 0, options.context() + ": option 'startup_timeout_seconds' must be positive");
  std::string plugin_options = "{}";
  if (options.has("options")) {
    const auto& o = options.get("options");
    require(o.IsObject(), options.context() + ": option 'options' must be a JSON object");
    plugin_options = json::to_string(o);
  }
  try {
    return std::make_unique<ProcessReward>(std::move(command), plugin_options, static_cast<size_t>(processes),
                                           timeout_seconds, startup);
  } catch (const Error& e) {
    throw Error(options.context() + ": " + e.what());
  }
}

}  // namespace

std::string default_plugin_host() {
  if (const char* env = std::getenv("AHA_REWARD_PLUGIN_HOST"); env && *env) return env;
  // Beside the running program (an installed aha), else where the build put it.
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = self.parent_path() / "aha-reward-plugin-host";
    if (std::filesystem::exists(beside)) return beside.string();
  }
  return AHA_REWARD_PLUGIN_HOST;
}

std::unique_ptr<Reward> make_process_reward(const json::ObjectReader& options, double timeout_seconds) {
  options.reject_unknown({"command", "processes", "startup_timeout_seconds", "options"});
  return make_pooled(options, string_list(options, "command"), timeout_seconds);
}

std::unique_ptr<Reward> make_shared_object_reward(const json::ObjectReader& options, double timeout_seconds) {
  options.reject_unknown({"path", "host", "processes", "startup_timeout_seconds", "options"});
  std::string path = options.get_string("path");
  require(std::filesystem::is_regular_file(path),
          options.context() + ": option 'path': no shared object at '" + path + "'");
  std::string host = options.get_string("host", default_plugin_host());
  require(access(host.c_str(), X_OK) == 0,
          options.context() + ": the plug-in host program '" + host +
              "' is not executable (build target aha-reward-plugin-host, or set "
              "AHA_REWARD_PLUGIN_HOST or option 'host')");
  return make_pooled(options, {host, std::filesystem::absolute(path).string()}, timeout_seconds);
}

}  // namespace aha::reward
