// Choosing rewards by name: a reward list (a spec) and the factory that builds each reward.
//
// A spec is either a short list, "math_accuracy" or "math_accuracy:1,format:0.5" (name:weight,
// weight 1 when left out), or JSON (inline text starting with '[' or '{', or a file path):
//   [{"name": "acc", "kind": "math_accuracy", "weight": 1, "timeout_seconds": 10,
//     "options": {...}}, ...]       or {"rewards": [ ...the same... ]}
// "kind" defaults to "name"; "name" labels the component in logs and must be unique.
// Kinds: the built-ins (reward/builtin_rewards.h), "code" (reward/code_reward.h), "process" and "plugin"
// (reward/plugin_rewards.h), and registered ones ("reward_model", reward/model/). Unknown kinds,
// keys and options are errors that list the known ones.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "reward/reward.h"

namespace aha::reward {

struct RewardSpec {
  std::string name;
  std::string kind;
  double weight = 1.0;
  double timeout_seconds = 10.0;
  std::string options_json = "{}";  // a JSON object
};

// Parses a spec as described above; `what` names it in errors.
std::vector<RewardSpec> parse_reward_specs(const std::string& spec);
// The JSON form only (text of an array or of {"rewards": [...]}).
std::vector<RewardSpec> reward_specs_from_json(const std::string& json_text, const std::string& what);

std::unique_ptr<Reward> create_reward(const RewardSpec& spec);

// The known kinds: the built-ins, then the registered ones.
std::vector<std::string> reward_kinds();

// Kinds that live in libraries above reward/ because they need more than it may use (the
// reward-model reward, reward/model/, runs a policy/model network) register here before the
// first spec is built (the `aha` command does at start); they are then known everywhere a spec
// is read. Registering a name twice keeps the first; a built-in's name is an error.
using RewardFactory = std::function<std::unique_ptr<Reward>(const json::ObjectReader& options, double timeout_seconds)>;
void register_reward_kind(const std::string& name, RewardFactory make);

}  // namespace aha::reward
