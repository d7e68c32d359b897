// Finding the final answer in a completion and in a gold field.
//
// Two modes (ExtractionMode), named by the math_accuracy reward's "extraction" option:
//
// strict (the default, for R1 training, where the format is part of the task):
// - Completion: the content of the last <answer>...</answer> if there is one (and within it
//   the last \boxed{} / \fbox{} if it holds any); otherwise the last \boxed{} / \fbox{} in the
//   whole text. Nothing else is guessed: a completion with neither has no answer. Box
//   arguments may nest braces; "\boxed 5" (a one-token argument) is accepted.
// - Gold: after the last "####" (GSM8K), else the last \boxed{} (a MATH solution), else the
//   whole text (an `answer` field).
//
// lenient (evaluation, data whose format is not trained):
// - a completion's last <answer> tag, when it has one, is searched as below (boxes, phrase,
//   math, number); when it holds none of them, its whole content is the answer;
// - boxes side by side ("\boxed{1}, \boxed{2}", "\boxed{1} and \boxed{2}": only spaces,
//   commas, semicolons, "and", "+", "\quad", "$" between them) are one answer, joined by ", "
//   ("or" does not join: it gives one answer twice);
// - a "final answer is" / "final answer:" / "the answer is" phrase after the last box wins;
// - with no box or tag: the sentence after the last such phrase; else the later-ending of the
//   last math span ($...$ on one line, $$...$$, \(...\) on one line, \[...\]; spans side by
//   side joined as boxes are) and, when numbers count, the last number (not glued to a letter
//   before it, with sign, thousands separators, decimal point or comma, or a/b); a text of bare
//   LaTeX without words ("\frac{10}{9}") is its own answer;
// - a percent sign or the word percent / pct / percentage right after the span or number is
//   kept with it ("28 pct" is 28\%);
// - the gold: "####", else its boxes as above, else a final-answer phrase, else its last math
//   span, else its whole text (a gold "\frac{1}{3}" is not its last number).
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

enum class ExtractionMode { strict, lenient };

// "strict" or "lenient"; anything else is an aha::Error naming `what` (the option at fault).
ExtractionMode parse_extraction_mode(std::string_view name, std::string_view what);

// Contents of every \boxed{...} and \fbox{...} in text, in order (nested boxes each give
// their content, so the result can be much larger than text: prefer extract_last_boxed).
std::vector<std::string> extract_boxed(std::string_view text);

// The content of the last terminated box (extract_boxed(text).back()), in time linear in the
// text's length whatever the nesting; nullopt when there is none.
std::optional<std::string> extract_last_boxed(std::string_view text);

// The last <answer>...</answer> content, if any.
std::optional<std::string> extract_answer_tag(std::string_view text);

// The final answer of a completion per the rules above; nullopt when there is none.
// numbers: whether a bare number counts in lenient mode (false reads math only, as Math-Verify's
// LaTeX-only extraction does; the math_accuracy reward always counts numbers).
std::optional<std::string> extract_final_answer(std::string_view completion,
                                                ExtractionMode mode = ExtractionMode::strict, bool numbers = true);

// The gold answer per the rules above.
std::string extract_gold_answer(std::string_view gold, ExtractionMode mode = ExtractionMode::strict);

// The lenient fallbacks alone (after "final answer is", last math span or number), nullopt
// when the text has none of them.
std::optional<std::string> extract_lenient_fallback(std::string_view text, bool numbers = true);

}  // namespace aha::reward
