#include "recipes/runner/rollout_wire.h"

#include <rapidjson/writer.h>

#include <bit>
#include <cstring>

#include "core/error.h"
#include "core/json.h"

namespace aha::recipes {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

const rapidjson::Value& member(const rapidjson::Value& v, const char* name, const std::string& what) {
  require(v.IsObject() && v.HasMember(name), what + ": '" + name + "' is missing");
  return v[name];
}

int64_t int_member(const rapidjson::Value& v, const char* name, const std::string& what) {
  const auto& m = member(v, name, what);
  require(m.IsInt64(), what + ": '" + name + "' must be an integer");
  return m.GetInt64();
}

std::vector<int64_t> int_list(const rapidjson::Value& v, const char* name, const std::string& what) {
  const auto& m = member(v, name, what);
  require(m.IsArray(), what + ": '" + name + "' must be a list of integers");
  std::vector<int64_t> out;
  out.reserve(m.Size());
  for (const auto& x : m.GetArray()) {
    require(x.IsInt64(), what + ": '" + name + "' must be a list of integers");
    out.push_back(x.GetInt64());
  }
  return out;
}

// Text travels as hex: completions of a model may end inside a UTF-8 sequence, and JSON text
// (json::text_of) would replace such bytes, changing what the rewards see.
std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string from_hex(const rapidjson::Value& v, const std::string& what) {
  require(v.IsString() && v.GetStringLength() % 2 == 0, what + " must be a string of hex digit pairs");
  auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error(what + " must be a string of hex digit pairs");
  };
  const char* text = v.GetString();
  std::string out;
  out.reserve(v.GetStringLength() / 2);
  for (rapidjson::SizeType i = 0; i < v.GetStringLength(); i += 2)
    out.push_back(static_cast<char>(digit(text[i]) * 16 + digit(text[i + 1])));
  return out;
}

FinishReason finish_from_name(const std::string& name, const std::string& what) {
  for (auto r : {FinishReason::kNone, FinishReason::kEos, FinishReason::kStop, FinishReason::kLength})
    if (name == finish_reason_name(r)) return r;
  throw Error(what + ": unknown finish reason '" + name + "'");
}

}  // namespace

std::string task_to_json(const RolloutTask& task) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("id"), w.Int64(task.id);
  w.Key("batch"), w.Int64(task.batch);
  w.Key("min_version"), w.Int64(task.min_version);
  w.Key("seed"), w.String(std::to_string(task.seed).c_str());
  w.Key("prompts");
  w.StartArray();
  for (const auto& p : task.prompts) w.String(to_hex(p).c_str());
  w.EndArray();
  w.EndObject();
  return json::text_of(buffer);
}

RolloutTask task_from_json(const std::string& text) {
  const std::string what = "rollout task";
  auto doc = json::parse(text, what);
  RolloutTask t;
  t.id = int_member(doc, "id", what);
  t.batch = int_member(doc, "batch", what);
  t.min_version = int_member(doc, "min_version", what);
  const auto& seed = member(doc, "seed", what);
  require(seed.IsString(), what + ": 'seed' must be a decimal string");
  try {
    size_t used = 0;
    t.seed = std::stoull(seed.GetString(), &used);
    require(used == seed.GetStringLength(), "trailing characters");
  } catch (const std::exception&) {
    throw Error(what + ": 'seed' must be a decimal string, got '" + std::string(seed.GetString()) + "'");
  }
  const auto& prompts = member(doc, "prompts", what);
  require(prompts.IsArray(), what + ": 'prompts' must be a list of strings");
  for (const auto& p : prompts.GetArray()) t.prompts.push_back(from_hex(p, what + ": 'prompts'"));
  return t;
}

std::string result_to_json(const RolloutResult& r) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("id"), w.Int64(r.id);
  w.Key("batch"), w.Int64(r.batch);
  w.Key("version"), w.Int64(r.version);
  w.Key("worker"), w.Int64(r.worker);
  w.Key("seconds"), w.Double(r.seconds);
  w.Key("groups");
  w.StartArray();
  for (const auto& g : r.groups) {
    w.StartObject();
    w.Key("prompt_ids");
    w.StartArray();
    for (int64_t id : g.prompt_ids) w.Int64(id);
    w.EndArray();
    w.Key("completions");
    w.StartArray();
    for (const auto& c : g.completions) {
      w.StartObject();
      w.Key("tokens");
      w.StartArray();
      for (int64_t id : c.tokens) w.Int64(id);
      w.EndArray();
      w.Key("logprob_bits");
      w.StartArray();
      for (float lp : c.logprobs) w.Uint(std::bit_cast<uint32_t>(lp));
      w.EndArray();
      w.Key("text_hex"), w.String(to_hex(c.text).c_str());
      w.Key("finish"), w.String(finish_reason_name(c.finish_reason));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json::text_of(buffer);
}

RolloutResult result_from_json(const std::string& text) {
  const std::string what = "rollout result";
  auto doc = json::parse(text, what);
  RolloutResult r;
  r.id = int_member(doc, "id", what);
  r.batch = int_member(doc, "batch", what);
  r.version = int_member(doc, "version", what);
  r.worker = int_member(doc, "worker", what);
  const auto& seconds = member(doc, "seconds", what);
  require(seconds.IsNumber(), what + ": 'seconds' must be a number");
  r.seconds = seconds.GetDouble();
  const auto& groups = member(doc, "groups", what);
  require(groups.IsArray(), what + ": 'groups' must be a list");
  for (rapidjson::SizeType gi = 0; gi < groups.Size(); ++gi) {
    const std::string where = what + ": group " + std::to_string(gi);
    RolloutGroup g;
    g.prompt_ids = int_list(groups[gi], "prompt_ids", where);
    const auto& completions = member(groups[gi], "completions", where);
    require(completions.IsArray(), where + ": 'completions' must be a list");
    for (rapidjson::SizeType j = 0; j < completions.Size(); ++j) {
      const std::string at = where + ", completion " + std::to_string(j);
      Completion c;
      c.prompt_index = gi;
      c.sample_index = j;
      c.tokens = int_list(completions[j], "tokens", at);
      for (int64_t bits : int_list(completions[j], "logprob_bits", at)) {
        require(bits >= 0 && bits <= 0xffffffffLL, at + ": 'logprob_bits' must be 32-bit patterns");
        c.logprobs.push_back(std::bit_cast<float>(static_cast<uint32_t>(bits)));
      }
      require(c.logprobs.size() == c.tokens.size(), at + ": " + std::to_string(c.tokens.size()) + " tokens but " +
                                                        std::to_string(c.logprobs.size()) + " log-probs");
      c.text = from_hex(member(completions[j], "text_hex", at), at + ": 'text_hex'");
      const auto& f = member(completions[j], "finish", at);
      require(f.IsString(), at + ": 'finish' must be a string");
      c.finish_reason = finish_from_name(f.GetString(), at);
      g.completions.push_back(std::move(c));
    }
    r.groups.push_back(std::move(g));
  }
  return r;
}

}  // namespace aha::recipes
