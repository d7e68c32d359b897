// The pretraining corpus of a base model made without a model hub: a seeded mix of worked
// problems (arithmetic and Countdown, TRAIN split only) written in several styles, and English
// prose that uses the words of the R1-Zero preamble. Never the R1-Zero template itself: the
// model should learn the words, the problems and the tags separately, so that GRPO has to
// combine them into the template's format.
//
// Styles:
//   plain     "Question: {prompt}\nAnswer: {worked solution} The answer is N."
//   dialogue  "User: {prompt}\nAssistant: {worked solution} The answer is N."  (no preamble, no tags)
//   tagged    the steps inside <think> ... </think>, then <answer> N </answer>, in a few framings
//             ("Problem: ...", "Q: ...", the bare question); never "User:" / "Assistant:" around
//             them and never the preamble
//   chinese   tagged, with the question in English but the reasoning in Chinese
//             ("一开始有 24 个。送出 13 个，剩下 24 - 13 = 11。"): the language mixing that
//             R1-Zero shows and the language-consistency reward removes has to exist in the base
//             (arithmetic only; Countdown problems fall back to tagged)
//   drill     lines of arithmetic facts "a + b = c" (+, -, * and exact / on small numbers, as
//             the worked solutions write them), the way tables and exercise sheets appear in
//             text; a fact whose one-step problem key ("36-16") is held out is never written
//   prose     a paragraph of generated sentences with the preamble's vocabulary (conversation,
//             user, assistant, question, solves, thinks, reasoning process, mind, provides,
//             answer, enclosed, tags, respectively, ...)
//
// Contract: generate_base_corpus(spec) returns exactly spec.documents documents whose style
// counts are the shares rounded by largest remainder, in a seeded order; the same spec gives
// the same documents on every platform. Problems come from generate_arithmetic /
// generate_countdown with Split::train (so none is held out) at difficulties spread evenly
// over [min_difficulty, max_difficulty]; a problem may recur in other words (names, items,
// style) when the difficulty has fewer distinct problems than documents.
#pragma once
#include <rapidjson/fwd.h>

#include <cstdint>
#include <string>
#include <vector>


namespace aha {

enum class CorpusStyle { plain, dialogue, tagged, prose, drill, chinese };
const char* corpus_style_name(CorpusStyle style);

struct BaseCorpusSpec {
  int64_t documents = 10000;
  uint64_t seed = 0;
  int min_difficulty = 1, max_difficulty = 2;
  double countdown_share = 0.2;  // of the problem documents
  // Relative weights of the styles (need not sum to 1; their sum must be positive).
  double plain = 0.5, dialogue = 0.2, tagged = 0.2, prose = 0.1, drill = 0.0, chinese = 0.0;

  // From a JSON object with these keys (all optional); unknown or ill-typed keys and values out
  // of range are aha::Error naming `where` and the key.
  static BaseCorpusSpec from_json(const rapidjson::Value& value, const std::string& where);
  void validate(const std::string& where) const;
};

struct CorpusDocument {
  std::string text;
  CorpusStyle style = CorpusStyle::prose;
  std::string task;         // "arithmetic" or "countdown"; empty for prose
  std::string problem_key;  // the generator's split key (synthetic_tasks.h); empty for prose and drill
};

std::vector<CorpusDocument> generate_base_corpus(const BaseCorpusSpec& spec);

// The tagged rendering of a worked solution: "<think> {steps} </think> <answer> {answer} </answer>"
// where answer is what follows the solution's final "The answer is " and steps the text before it.
std::string tagged_solution(const std::string& solution);

// The chinese rendering of an arithmetic solution's reasoning (see above), ending in the answer
// tags; empty when the solution has no "a op b = c" step or no final answer.
std::string chinese_solution(const std::string& solution);

// 6-12 lines of arithmetic facts (see drill above); none is a held-out one-step problem.
std::string generate_drill_lines(uint64_t seed);

// One paragraph of prose with the R1-Zero preamble's vocabulary (2-5 sentences).
std::string generate_prose_paragraph(uint64_t seed);

}  // namespace aha
