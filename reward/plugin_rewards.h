// Plug-in rewards, both run out of process so that a crash, garbage or a hang in them costs
// one sample's component, never the run:
//
//   process  a long-lived program speaking JSON Lines on stdin/stdout (a reward in Python...)
//            options: command (["python3", "my_reward.py"], required), processes (1: how many
//            copies serve calls at once), startup_timeout_seconds (30), options ({}: passed to
//            the plug-in).
//   plugin   a shared object with the C ABI of reward/plugins/aha_reward_plugin.h, loaded with
//            dlopen by the aha-reward-plugin-host program, which speaks the same protocol
//            options: path (required), host (the host program; default $AHA_REWARD_PLUGIN_HOST
//            or the one built with aha), processes, startup_timeout_seconds, options.
//
// Protocol (one JSON object per line each way):
//   aha -> plug-in   {"aha_reward_plugin": 1, "options": {...}}
//   plug-in -> aha   {"aha_reward_plugin": 1}           or {"error": "why the options are bad"}
//   aha -> plug-in   {"id": 7, "prompt": "...", "completion": "...", "gold": "...",
//                     "task": "math", "metadata": {...} or null, "tests": [...],
//                     "test_setup": "...", "entry_point": "...", "num_tokens": 123 or -1}
//   plug-in -> aha   {"id": 7, "value": 0.5, "components": {"x": 1.0}, "diagnostic": "..."}
//                    or {"id": 7, "error": "..."}    (components and diagnostic optional)
// A reply that is not such an object, carries another id or a non-finite value is garbage:
// the process is killed, the sample gets 0 for this reward with the reason, and the next call
// starts a new process. Calls time out after the reward's timeout_seconds (the process is
// killed); starting and the options handshake have startup_timeout_seconds.
#pragma once
#include <memory>

#include "core/json.h"
#include "reward/reward.h"

namespace aha::reward {

std::unique_ptr<Reward> make_process_reward(const json::ObjectReader& options, double timeout_seconds);
std::unique_ptr<Reward> make_shared_object_reward(const json::ObjectReader& options, double timeout_seconds);

// The host program used for "plugin" rewards when the options name none.
std::string default_plugin_host();

}  // namespace aha::reward
