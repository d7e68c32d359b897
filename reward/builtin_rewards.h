// Factories of the built-in rewards, for the registry (reward/reward_registry.h). Each takes
// its options object, rejects unknown keys (listing the known ones) and bad values with an
// aha::Error naming the reward and the option.
//
//   math_accuracy         1 when the final answer equals the gold (reward/math_equivalence.h)
//                         options: require_answer_tag (false): only an <answer> tag counts;
//                         extraction ("strict" | "lenient", reward/math_answer.h);
//                         relative_precision (1e-6) for decimals (reward/MATH_VERIFIER.md).
//   format                R1-Zero structure: <think>...</think><answer>...</answer>, nothing after
//                         options: partial_credit (false), think_in_prompt (false).
//   language_consistency  share of the reasoning in the target language (R1)
//                         options: language (ISO 639-1, "en"), scope ("think" | "completion"),
//                         identifier ("cld2" | "script", en/zh only; reward/language_identifier.h).
//   length                DAPO's overlong penalty
//                         options: max_length, buffer (required), unit ("tokens" | "characters").
//   countdown             1 when the <answer> expression reaches the target (reward/countdown_check.h)
//                         options: use_all_numbers (false), integer_intermediates (false).
#pragma once
#include <memory>

#include "core/json.h"
#include "reward/reward.h"

namespace aha::reward {

std::unique_ptr<Reward> make_math_accuracy_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_format_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_language_consistency_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_length_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_countdown_reward(const json::ObjectReader& options);

// A diagnostic-sized copy of text: at most max_bytes, cut at a UTF-8 boundary, with "...".
std::string clip_for_diagnostic(std::string_view text, size_t max_bytes = 120);

}  // namespace aha::reward
