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
// Verifiable instruction rewards (reward/instruction_rewards.cpp), scored on the final answer
// (reward/instruction_text.h: after </think>, without <answer> tags); an empty answer scores 0.
// Each also takes think_in_prompt (false).
//   max_words             1 when the answer has at most max_words words (required, >= 1).
//   include_keywords      1 when every one of keywords (required, array of strings) is in the
//                         answer as a whole word; case_sensitive (false), partial_credit (false:
//                         with it, the share found).
//   json_keys             1 when the answer is one JSON object with every key of keys (array,
//                         default []); allow_code_fence (true): one ```json fence around it.
//   lowercase             1 when the answer has a letter and no upper-case character.
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
std::unique_ptr<Reward> make_max_words_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_include_keywords_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_json_keys_reward(const json::ObjectReader& options);
std::unique_ptr<Reward> make_lowercase_reward(const json::ObjectReader& options);

// A diagnostic-sized copy of text: at most max_bytes, cut at a UTF-8 boundary, with "...".
std::string clip_for_diagnostic(std::string_view text, size_t max_bytes = 120);

}  // namespace aha::reward
