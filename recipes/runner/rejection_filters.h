// The filters of rejection sampling (DeepSeek-R1's stage 3): which of a prompt's sampled
// responses become SFT data. Each filter is a named switch:
//
//   correct    the verifier's component (accuracy_reward, "accuracy") is 1: full marks
//   format     the format reward's component (format_reward, "format") is 1
//   language   the language-consistency component (language_reward, "language") is at least
//              language_threshold (0.99): a single-language chain of thought
//   no_code    a math example's chain of thought holds no code block (```): R1 drops them
//   paragraph  the longest paragraph (text between blank lines, reasoning and answer alike) is
//              at most max_paragraph_chars Unicode characters
//   length     the response has min_tokens..max_tokens tokens and was not cut off by the token
//              limit (a truncated response is not an example of finishing)
//   exact_dup  a response identical to one already kept for the prompt is dropped
//   near_dup   a response whose word 3-shingles have Jaccard similarity >= near_dup_threshold
//              (0.9) with one already kept for the prompt is dropped
//
// Order: the per-response filters above run in that order and a response is counted as
// dropped by the first one that fails; survivors are then deduplicated in sample order (exact,
// then near) and the first `keep` of them kept (the rest counted as "over_keep"). Only the
// counting depends on the order; which responses are kept does not.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace aha::recipes {

struct RejectionFilters {
  bool correct = false, format = false, language = false, no_code = false, paragraph = false, length = false,
       exact_dup = false, near_dup = false;
  std::string accuracy_reward = "accuracy", format_reward = "format", language_reward = "language";
  double language_threshold = 0.99;
  int64_t max_paragraph_chars = 2000;
  int64_t min_tokens = 1, max_tokens = INT64_MAX;
  double near_dup_threshold = 0.9;
};

// The filter names, in the order they run.
const std::vector<std::string>& rejection_filter_names();
// "correct,format,near_dup" -> switches on; an unknown name is an error listing the known ones.
// `what` names the option ("--filter").
void enable_filters(RejectionFilters& filters, const std::string& comma_list, const std::string& what);
// The names switched on, in order.
std::vector<std::string> enabled_filters(const RejectionFilters& filters);
// Throws aha::Error naming the field: thresholds outside [0, 1], max_paragraph_chars < 1,
// min_tokens > max_tokens.
void validate(const RejectionFilters& filters);

// One sampled response as the filters see it.
struct Candidate {
  std::string text;  // the assistant's text: "<think>...</think>answer" when it reasoned
  int64_t tokens = 0;
  bool truncated = false;
  std::map<std::string, double> components;  // reward components by name
  bool math = true;                          // the example is a math task
};

// Why the filters dropped a candidate: a filter name, "over_keep", or "" when kept.
struct FilterVerdicts {
  std::vector<std::string> reasons;  // one per candidate
  std::vector<size_t> kept;          // indices of kept candidates, in sample order
};

// Applies the filters (above) to one prompt's candidates and keeps up to `keep`. A filter that
// needs a reward component the candidate lacks is an error naming the component.
FilterVerdicts apply_filters(const RejectionFilters& filters, const std::vector<Candidate>& candidates,
                             int64_t keep);

// Helpers, exposed for their tests.
// The reasoning: inside <think>...</think> (from the start up to </think> when it was never
// opened in the text), or "" when there is no </think>.
std::string_view reasoning_of(std::string_view text);
// Unicode characters of the longest paragraph; paragraphs are separated by lines that are empty
// or hold only spaces and tabs.
int64_t longest_paragraph_chars(std::string_view text);
// Jaccard similarity of the sets of word n-grams (words: maximal runs of non-space characters,
// lower-cased in ASCII). Texts with fewer than n words compare as one shingle of all their words.
double shingle_jaccard(std::string_view a, std::string_view b, size_t n = 3);

}  // namespace aha::recipes
