// Splitting a normalised math answer at separators that stand outside every bracket: "(1,2),3"
// at "," is "(1,2)" and "3"; "\{1,2\}" counts as a bracket pair too. The math verifier splits
// lists, set unions and matrix rows this way (reward/math_equivalence.cpp) and relations at
// "=", "<", "\approx" ... (reward/math_relation.cpp): one depth scan for both, so they agree on
// what "top level" means. Linear in the text.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace aha::reward {

// The length of the separator that starts at s[i] (0: none there). Asked only at depth 0.
using SeparatorAt = std::function<size_t(std::string_view s, size_t i)>;

// The parts between top-level separators, each trimmed of spaces; one part when there is none.
std::vector<std::string> split_top_level(std::string_view s, const SeparatorAt& separator_at);

// The same at a fixed separator. A separator that ends in a letter ("\cup") does not match
// where a letter follows it ("\cupola").
std::vector<std::string> split_top_level(std::string_view s, std::string_view separator);

bool is_ascii_letter(char c);
std::string trimmed_spaces(std::string_view s);

}  // namespace aha::reward
