#include "reward/remote/wire_format.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.h"
#include "core/json.h"
#include "reward/scored_jsonl.h"

namespace aha::reward::remote {
namespace {

using Allocator = rapidjson::Document::AllocatorType;

rapidjson::Value text(const std::string& s, Allocator& a) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

// rapidjson writes doubles in their shortest exact form, so they read back bit for bit; it
// refuses NaN and infinities, which JSON has no words for.
rapidjson::Value number(double v) { return std::isfinite(v) ? rapidjson::Value(v) : rapidjson::Value(); }

double read_number(const rapidjson::Value& v, const std::string& what) {
  if (v.IsNull()) return std::numeric_limits<double>::quiet_NaN();
  require(v.IsNumber(), what + " must be a number");
  return v.GetDouble();
}

rapidjson::Value specs_to_json(const std::vector<RewardSpec>& specs, Allocator& a) {
  rapidjson::Value list(rapidjson::kArrayType);
  for (const auto& spec : specs) {
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("name", text(spec.name, a), a);
    entry.AddMember("kind", text(spec.kind, a), a);
    entry.AddMember("weight", rapidjson::Value(spec.weight), a);
    entry.AddMember("timeout_seconds", rapidjson::Value(spec.timeout_seconds), a);
    auto options = json::parse(spec.options_json, "options of reward '" + spec.name + "'");
    entry.AddMember("options", rapidjson::Value(options, a), a);
    list.PushBack(entry, a);
  }
  return list;
}

std::vector<RewardSpec> specs_from_json(const rapidjson::Value& value, const std::string& what) {
  require(value.IsArray(), what + " must be a list of reward specs");
  return reward_specs_from_json(json::to_string(value), what);
}

std::string canonical_options(const RewardSpec& spec) {
  return json::to_string(json::parse(spec.options_json, "options of reward '" + spec.name + "'"));
}

std::string format_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

template <typename Map, typename Read>
void read_map(const json::ObjectReader& r, const char* key, Map& out, Read read) {
  if (!r.has(key)) return;
  const auto& object = r.get(key);
  const std::string where = r.context() + "." + key;
  require(object.IsObject(), where + " must be an object");
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    out[name] = read(it->value, where + "." + name);
  }
}

}  // namespace

std::string score_request_json(const std::vector<RewardSpec>& rewards, const std::vector<ScoringInput>& items,
                               size_t begin, size_t end) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("rewards", specs_to_json(rewards, a), a);
  rapidjson::Value list(rapidjson::kArrayType);
  for (size_t i = begin; i < end; ++i) list.PushBack(scoring_input_to_json(items[i], a), a);
  doc.AddMember("items", list, a);
  return json::to_string(doc);
}

ScoreRequest parse_score_request(std::string_view body) {
  auto doc = json::parse(body, "the request body");
  json::ObjectReader r(doc, "the request body");
  r.reject_unknown({"rewards", "items"});
  ScoreRequest request;
  if (r.has("rewards")) {
    request.has_rewards = true;
    request.rewards = specs_from_json(r.get("rewards"), "field 'rewards'");
  }
  const auto& items = r.get("items");
  require(items.IsArray(), "field 'items' must be a list of samples ({\"completion\": ..., \"gold\": ...})");
  request.items.reserve(items.Size());
  for (rapidjson::SizeType i = 0; i < items.Size(); ++i)
    request.items.push_back(scoring_input_from_json(items[i], "items[" + std::to_string(i) + "]"));
  return request;
}

std::string score_reply_json(const std::vector<ScoredSample>& results) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  rapidjson::Value list(rapidjson::kArrayType);
  for (const auto& s : results) {
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("reward", number(s.total), a);
    rapidjson::Value components(rapidjson::kObjectType), diagnostics(rapidjson::kObjectType),
        errors(rapidjson::kObjectType);
    for (auto& [name, v] : s.components) components.AddMember(text(name, a), number(v), a);
    for (auto& [name, t] : s.diagnostics) diagnostics.AddMember(text(name, a), text(t, a), a);
    for (auto& [name, t] : s.errors) errors.AddMember(text(name, a), text(t, a), a);
    entry.AddMember("components", components, a);
    entry.AddMember("diagnostics", diagnostics, a);
    entry.AddMember("errors", errors, a);
    list.PushBack(entry, a);
  }
  doc.AddMember("results", list, a);
  return json::to_string(doc);
}

std::vector<ScoredSample> parse_score_reply(std::string_view body, size_t expected, const std::string& what) {
  auto doc = json::parse(body, what);
  json::ObjectReader r(doc, what);
  const auto& list = r.get("results");
  require(list.IsArray() && list.Size() == expected,
          what + ": expected " + std::to_string(expected) + " results, got " +
              (list.IsArray() ? std::to_string(list.Size()) : std::string("no list")));
  std::vector<ScoredSample> out(expected);
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    json::ObjectReader item(list[i], what + ": results[" + std::to_string(i) + "]");
    ScoredSample& s = out[i];
    const auto reward = item.value().FindMember("reward");
    require(reward != item.value().MemberEnd(), item.context() + ": field 'reward' is missing");
    s.total = read_number(reward->value, item.context() + ".reward");
    auto as_text = [](const rapidjson::Value& v, const std::string& where) {
      require(v.IsString(), where + " must be a string");
      return std::string(v.GetString(), v.GetStringLength());
    };
    read_map(item, "components", s.components, read_number);
    read_map(item, "diagnostics", s.diagnostics, as_text);
    read_map(item, "errors", s.errors, as_text);
  }
  return out;
}

std::string health_json(const std::vector<RewardSpec>& rewards, size_t threads, size_t max_inflight) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("ok", true, a);
  doc.AddMember("rewards", specs_to_json(rewards, a), a);
  doc.AddMember("threads", rapidjson::Value(static_cast<uint64_t>(threads)), a);
  doc.AddMember("max_inflight", rapidjson::Value(static_cast<uint64_t>(max_inflight)), a);
  return json::to_string(doc);
}

std::vector<RewardSpec> parse_health(std::string_view body, const std::string& what) {
  auto doc = json::parse(body, what);
  json::ObjectReader r(doc, what);
  require(r.get_bool("ok", false), what + ": the server does not say it is ok");
  return specs_from_json(r.get("rewards"), what + ": field 'rewards'");
}

std::string spec_difference(const std::vector<RewardSpec>& here, const std::vector<RewardSpec>& there) {
  auto names = [](const std::vector<RewardSpec>& specs) {
    std::string out;
    for (auto& s : specs) out += (out.empty() ? "" : ", ") + s.name;
    return "[" + out + "]";
  };
  if (here.size() != there.size())
    return "rewards " + names(here) + " here, " + names(there) + " there";
  for (size_t i = 0; i < here.size(); ++i) {
    const RewardSpec &a = here[i], &b = there[i];
    const std::string which = "reward " + std::to_string(i) + " ('" + a.name + "')";
    if (a.name != b.name) return which + ": named '" + b.name + "' there";
    if (a.kind != b.kind) return which + ": kind " + a.kind + " here, " + b.kind + " there";
    if (a.weight != b.weight)
      return which + ": weight " + format_number(a.weight) + " here, " + format_number(b.weight) + " there";
    if (a.timeout_seconds != b.timeout_seconds)
      return which + ": timeout_seconds " + format_number(a.timeout_seconds) + " here, " +
             format_number(b.timeout_seconds) + " there";
    if (canonical_options(a) != canonical_options(b))
      return which + ": options " + canonical_options(a) + " here, " + canonical_options(b) + " there";
  }
  return "";
}

}  // namespace aha::reward::remote
