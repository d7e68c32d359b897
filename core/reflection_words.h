// Self-verification phrases ("wait", "let me", "double-check", ...), the R1-Zero report's sign
// of reflection in a chain of thought: counted in completions by the evaluation
// (recipes/runner/evaluation.h: reflection rate per data set and difficulty) and by the
// dashboard (its reflection chart), with the same default list and the same matching.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace aha {

// The default phrases, lower case.
const std::vector<std::string>& default_reflection_words();

// Occurrences of the phrases in `text`, case-insensitive (ASCII), each matched as whole words:
// the characters on either side of a match are not letters or digits ("waiting" is not
// "wait"). Overlapping phrases count separately.
int64_t count_reflection_words(const std::string& text, const std::vector<std::string>& words);

}  // namespace aha
