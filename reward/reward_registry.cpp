#include "reward/reward_registry.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "reward/builtin_rewards.h"
#include "reward/code_reward.h"
#include "reward/plugin_rewards.h"

namespace aha::reward {
namespace {

using Factory = RewardFactory;

struct Kind {
  std::string name;
  Factory make;
};

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> table = {
      {"math_accuracy", [](const json::ObjectReader& o, double) { return make_math_accuracy_reward(o); }},
      {"format", [](const json::ObjectReader& o, double) { return make_format_reward(o); }},
      {"language_consistency",
       [](const json::ObjectReader& o, double) { return make_language_consistency_reward(o); }},
      {"length", [](const json::ObjectReader& o, double) { return make_length_reward(o); }},
      {"countdown", [](const json::ObjectReader& o, double) { return make_countdown_reward(o); }},
      {"max_words", [](const json::ObjectReader& o, double) { return make_max_words_reward(o); }},
      {"include_keywords", [](const json::ObjectReader& o, double) { return make_include_keywords_reward(o); }},
      {"json_keys", [](const json::ObjectReader& o, double) { return make_json_keys_reward(o); }},
      {"lowercase", [](const json::ObjectReader& o, double) { return make_lowercase_reward(o); }},
      {"code", make_code_reward},
      {"process", make_process_reward},
      {"plugin", make_shared_object_reward},
  };
  return table;
}

// Kinds registered by libraries above reward/ (register_reward_kind), after the built-ins.
std::mutex registered_mutex;
std::vector<Kind>& registered() {
  static std::vector<Kind> table;
  return table;
}

std::optional<Factory> factory_of(const std::string& name) {
  for (auto& kind : kinds())
    if (kind.name == name) return kind.make;
  std::lock_guard<std::mutex> lock(registered_mutex);
  for (auto& kind : registered())
    if (kind.name == name) return kind.make;
  return std::nullopt;
}

std::string known_kinds() {
  std::string out;
  for (auto& k : reward_kinds()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

void check_unique(const std::vector<RewardSpec>& specs, const std::string& what) {
  require(!specs.empty(), what + ": no rewards listed");
  std::set<std::string> names;
  for (auto& s : specs) {
    require(names.insert(s.name).second,
            what + ": reward name '" + s.name + "' appears twice (give each a distinct \"name\")");
  }
}

std::vector<RewardSpec> parse_short_list(const std::string& text) {
  std::vector<RewardSpec> specs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    RewardSpec spec;
    size_t colon = item.find(':');
    spec.name = spec.kind = item.substr(0, colon);
    require(!spec.name.empty(), "reward list '" + text + "': an empty reward name");
    if (colon != std::string::npos) {
      std::string weight = item.substr(colon + 1);
      auto [end, ec] = std::from_chars(weight.data(), weight.data() + weight.size(), spec.weight);
      require(
          ec == std::errc() && end == weight.data() + weight.size() && std::isfinite(spec.weight),
          "reward list '" + text + "': weight of '" + spec.name + "' must be a number, got '" + weight + "'");
    }
    specs.push_back(spec);
  }
  return specs;
}

}  // namespace

std::vector<std::string> reward_kinds() {
  std::vector<std::string> out;
  for (auto& k : kinds()) out.push_back(k.name);
  std::lock_guard<std::mutex> lock(registered_mutex);
  for (auto& k : registered()) out.push_back(k.name);
  return out;
}

void register_reward_kind(const std::string& name, RewardFactory make) {
  require(!name.empty() && make, "register_reward_kind: a kind needs a name and a factory");
  for (auto& kind : kinds())
    require(kind.name != name, "register_reward_kind: '" + name + "' is a built-in reward kind");
  std::lock_guard<std::mutex> lock(registered_mutex);
  for (auto& kind : registered())
    if (kind.name == name) return;  // registered before: the same library, once is enough
  registered().push_back({name, std::move(make)});
}

std::vector<RewardSpec> reward_specs_from_json(const std::string& json_text, const std::string& what) {
  auto doc = json::parse(json_text, what);
  const rapidjson::Value* list = &doc;
  if (doc.IsObject()) {
    json::ObjectReader top(doc, what);
    top.reject_unknown({"rewards"});
    list = &top.get("rewards");
  }
  require(list->IsArray(), what + ": expected a list of rewards (or {\"rewards\": [...]})");
  std::vector<RewardSpec> specs;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    json::ObjectReader entry((*list)[i], what + ": reward " + std::to_string(i + 1));
    entry.reject_unknown({"name", "kind", "weight", "timeout_seconds", "options"});
    RewardSpec spec;
    spec.name = entry.get_string("name");
    spec.kind = entry.get_string("kind", spec.name);
    spec.weight = entry.get_double("weight", 1.0);
    spec.timeout_seconds = entry.get_double("timeout_seconds", 10.0);
    require(std::isfinite(spec.weight), entry.context() + ": field 'weight' must be finite");
    require(spec.timeout_seconds > 0 && spec.timeout_seconds <= 3600,
            entry.context() + ": field 'timeout_seconds' must be in (0, 3600]");
    if (entry.has("options")) {
      require(entry.get("options").IsObject(), entry.context() + ": field 'options' must be a JSON object");
      spec.options_json = json::to_string(entry.get("options"));
    }
    specs.push_back(spec);
  }
  check_unique(specs, what);
  return specs;
}

std::vector<RewardSpec> parse_reward_specs(const std::string& spec) {
  require(!spec.empty(), "reward list is empty");
  if (spec[0] == '[' || spec[0] == '{') return reward_specs_from_json(spec, "reward list");
  if (spec.ends_with(".json") || std::filesystem::is_regular_file(spec)) {
    return reward_specs_from_json(read_file(spec), spec);
  }
  auto specs = parse_short_list(spec);
  check_unique(specs, "reward list '" + spec + "'");
  return specs;
}

std::unique_ptr<Reward> create_reward(const RewardSpec& spec) {
  auto make = factory_of(spec.kind);
  if (!make) throw Error("unknown reward '" + spec.kind + "'; known: " + known_kinds());
  auto options = json::parse(spec.options_json, "options of reward '" + spec.name + "'");
  json::ObjectReader reader(options, "reward '" + spec.name + "' (" + spec.kind + ") options");
  return (*make)(reader, spec.timeout_seconds);
}

}  // namespace aha::reward
