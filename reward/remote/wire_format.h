// The JSON that reward servers (reward/remote/reward_server.h) and their clients
// (reward/remote/remote_scorer.h) exchange over HTTP:
//
//   GET  /health  -> {"ok": true, "rewards": [<spec>, ...], "threads": N, "max_inflight": M}
//   POST /score      {"rewards": [<spec>, ...], "items": [<item>, ...]}
//                 -> {"results": [{"reward": total, "components": {name: value},
//                                  "diagnostics": {name: text}, "errors": {name: why}}, ...]}
//   any error     -> {"error": "what was wrong"} with a 4xx or 5xx status
//
// An item is a sample object of `aha reward score` (reward/scored_jsonl.h: "completion",
// "gold", "task", "tests", ...), so what that command reads can be posted as it is. A spec is
// the JSON form of reward/reward_registry.h ({"name", "kind", "weight", "timeout_seconds",
// "options"}). "rewards" in a request is optional: when given, the server scores only if it
// serves exactly those rewards, so a client never gets scores of other rewards than it asked
// for. Results are in item order. Numbers are written so that they read back bit for bit;
// a non-finite number is written as null and read back as NaN.
//
// Every parse function throws aha::Error naming the field and, for items, the index at fault
// ("items[3]: field 'completion' is missing").
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "reward/reward_registry.h"
#include "reward/scorer.h"

namespace aha::reward::remote {

struct ScoreRequest {
  bool has_rewards = false;  // "rewards" given
  std::vector<RewardSpec> rewards;
  std::vector<ScoringInput> items;
};

// Items [begin, end) of `items`.
std::string score_request_json(const std::vector<RewardSpec>& rewards, const std::vector<ScoringInput>& items,
                               size_t begin, size_t end);
ScoreRequest parse_score_request(std::string_view body);

std::string score_reply_json(const std::vector<ScoredSample>& results);
// `what` names the reply in errors (the server); the reply must hold exactly `expected` results.
std::vector<ScoredSample> parse_score_reply(std::string_view body, size_t expected, const std::string& what);

std::string health_json(const std::vector<RewardSpec>& rewards, size_t threads, size_t max_inflight);
// The rewards a health reply names; throws unless it says "ok": true.
std::vector<RewardSpec> parse_health(std::string_view body, const std::string& what);

// "" when a and b are the same rewards (names, kinds, weights, timeouts, options, in order),
// else what differs first, e.g. "reward 'accuracy': weight 1 here, 0.5 there".
std::string spec_difference(const std::vector<RewardSpec>& here, const std::vector<RewardSpec>& there);

}  // namespace aha::reward::remote
