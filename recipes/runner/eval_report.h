// Evaluation reports on disk (recipes/evaluation.h's results): a directory holding
//   report.json    what was evaluated and how (model, data sets, options), the overall summary
//                  and one summary per data set;
//   samples.jsonl  one line per example: data set, id, prompt, gold, majority answer and
//                  whether it is correct, and each of its k completions (text, extracted answer,
//                  correct, well-formed, tokens, finish reason, verifier error).
// Text that is not valid UTF-8 (a completion cut inside a character) is written with U+FFFD
// in place of the bad bytes. A figure that was not measured (the format rate without the
// r1_zero template, an example without an answer) is null.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "recipes/runner/evaluation.h"

namespace aha::recipes {

struct EvalReportInfo {
  std::string model;                 // the model directory or checkpoint evaluated
  std::vector<std::string> sources;  // per data set: where it came from (a path or a spec), or empty
  std::string created;               // a time stamp, e.g. "2026-11-23T20:45:00Z"
};

std::string eval_report_json(const EvalResult& result, const EvalOptions& options, const EvalReportInfo& info);
std::string eval_samples_jsonl(const EvalResult& result);

// Writes report.json and samples.jsonl into `dir`, which must not exist yet (an aha::Error
// names it otherwise): both go into a temporary sibling directory that is renamed to `dir`
// at the end, so `dir` appears complete or not at all.
void write_eval_report(const std::filesystem::path& dir, const EvalResult& result, const EvalOptions& options,
                       const EvalReportInfo& info);

}  // namespace aha::recipes
