// The JSON Lines form of scoring, used by `aha reward score`: reading one sample line into a
// ScoringInput, and writing it back with its scores.
//
// Input line: an object with "completion" (string) and "gold" (string; may be empty for code),
// optionally "prompt", "task" ("math" | "code" | "custom"; default "code" when tests are given,
// else "math"), "tests" (a string, e.g. HumanEval's check(), or a list of strings, e.g. MBPP's
// asserts), "test_setup" or "test_imports" (a string or list of lines run before the
// candidate), "entry_point", "metadata" (any JSON value) and "num_tokens" (integer). Other
// fields are kept as they are.
// Output line: the input object with "reward" (the weighted total), "components" (name ->
// value) and "diagnostics" (name -> text; failures read "error: ...") set.
// The reward server (reward/remote/) reads and writes the same object for each item of a
// batch, so a sample line of `aha reward score` is also an item of `POST /score`.
#pragma once
#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "reward/reward_runner.h"

namespace aha::reward {

// `what` names the line in errors ("samples.jsonl line 3").
ScoringInput scoring_input_from_json_line(std::string_view line, const std::string& what);
// The same from a parsed object; `what` names it in errors ("items[3]").
ScoringInput scoring_input_from_json(const rapidjson::Value& object, const std::string& what);

// The sample object of an input, which scoring_input_from_json reads back as the same input.
// test_setup is written as its lines; one without a final newline gains one on the way back
// (every data set's setup ends with one).
rapidjson::Value scoring_input_to_json(const ScoringInput& input, rapidjson::Document::AllocatorType& allocator);

// The input line with the scores added (one line, no newline).
std::string scored_json_line(std::string_view input_line, const ScoredSample& scored);

}  // namespace aha::reward
