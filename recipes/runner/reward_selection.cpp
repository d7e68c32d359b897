#include "recipes/runner/reward_selection.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "core/error.h"
#include "core/json.h"

namespace aha::recipes {

std::pair<std::string, std::vector<std::string>> split_reward_selection(const rapidjson::Value& spec,
                                                                        const std::string& what) {
  std::vector<std::string> names;
  if (!spec.IsObject() || !spec.HasMember("rewards")) return {json::to_string(spec), names};
  const auto& list = spec["rewards"];
  require(list.IsArray() && !list.Empty(),
          what + ": 'rewards' must be a non-empty list of the recipe's reward names (leave it out for every reward)");
  for (const auto& v : list.GetArray()) {
    require(v.IsString(), what + ": 'rewards' must be a list of reward names (strings)");
    names.emplace_back(v.GetString(), v.GetStringLength());
  }
  rapidjson::Document copy;
  copy.CopyFrom(spec, copy.GetAllocator());
  copy.RemoveMember("rewards");
  return {json::to_string(copy), names};
}

void check_reward_selection(const std::vector<std::string>& names, const std::vector<reward::RewardSpec>& specs,
                            const std::string& what) {
  std::string known;
  for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.name;
  std::set<std::string> seen;
  for (const auto& name : names) {
    const bool found = std::any_of(specs.begin(), specs.end(), [&](const auto& s) { return s.name == name; });
    require(found, what + ": 'rewards' names '" + name + "', which is not a reward of the recipe (rewards: " + known + ")");
    require(seen.insert(name).second, what + ": 'rewards' names '" + name + "' twice");
  }
}

void keep_only_rewards(reward::ScoredSample& sample, const std::vector<reward::RewardSpec>& specs,
                       const std::vector<std::string>& names) {
  if (names.empty()) return;
  auto selected = [&](const std::string& reward) { return std::find(names.begin(), names.end(), reward) != names.end(); };
  double total = 0;
  for (const auto& spec : specs) {
    if (selected(spec.name)) {
      auto it = sample.components.find(spec.name);
      total += spec.weight * (it == sample.components.end() ? 0.0 : it->second);
      continue;
    }
    sample.diagnostics.erase(spec.name);
    sample.errors.erase(spec.name);
    sample.components.erase(spec.name);
    const std::string prefix = spec.name + ".";
    for (auto it = sample.components.lower_bound(prefix);
         it != sample.components.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
      it = selected(it->first) ? std::next(it) : sample.components.erase(it);  // a reward named "a.b" stays
  }
  sample.total = total;
}

}  // namespace aha::recipes
