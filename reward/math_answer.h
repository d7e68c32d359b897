// Finding the final answer in a completion and in a gold field.
//
// Rules (a verifier must not be fooled, so these are strict and documented):
// - Completion: the content of the last <answer>...</answer> if there is one (and within it
//   the last \boxed{} / \fbox{} if it holds any); otherwise the last \boxed{} / \fbox{} in the
//   whole text. Nothing else is guessed: a completion with neither has no answer. Box
//   arguments may nest braces; "\boxed 5" (a one-token argument) is accepted.
// - Gold: after the last "####" (GSM8K), else the last \boxed{} (a MATH solution), else the
//   whole text (an `answer` field).
// - An unterminated box or tag counts as absent. Results are trimmed; an empty result is
//   returned as such (and is never equivalent to anything).
// - Every function here is linear in the text's length (brace matches are found in one pass),
//   so a hostile completion of nested boxes or braces costs no more than reading it.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aha::reward {

// Contents of every \boxed{...} and \fbox{...} in text, in order (nested boxes each give
// their content, so the result can be much larger than text: prefer extract_last_boxed).
std::vector<std::string> extract_boxed(std::string_view text);

// The content of the last terminated box (extract_boxed(text).back()), in time linear in the
// text's length whatever the nesting; nullopt when there is none.
std::optional<std::string> extract_last_boxed(std::string_view text);

// The last <answer>...</answer> content, if any.
std::optional<std::string> extract_answer_tag(std::string_view text);

// The final answer of a completion per the rules above; nullopt when there is none.
std::optional<std::string> extract_final_answer(std::string_view completion);

// The gold answer per the rules above.
std::string extract_gold_answer(std::string_view gold);

}  // namespace aha::reward
