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
//             (arithmetic only; Countdown problems fall back to tagged). They take the problems
//             about Mei first, so the question's name cues the language; with chinese_exclusive
//             no other style writes about Mei at all (the problems about Mei beyond the chinese
//             documents' count are replaced), so the cue is the same for every base pretrained
//             on the corpus, not a majority that one base learns and another does not
//   drill     lines of arithmetic facts "a + b = c" (+, -, * and exact / on small numbers, as
//             the worked solutions write them), the way tables and exercise sheets appear in
//             text; a fact whose one-step problem key ("36-16") is held out is never written
//   checked   a worked arithmetic solution with self-checks, half the time in the plain framing
//             ("Question: ...\nAnswer: ..."), half in tagged's framings: after some steps
//             "Let me check: c - b = a. Correct." (the inverse operation), and after some a
//             slip caught and fixed: "... = c+1. Wait, c+1 - b = a+1, not a. So a + b = c."
//             (see checked_solution). At least one check per document; Countdown problems
//             fall back to plain. With counted_checks, checks that count the steps join them:
//             "Let me count: that is step k of n." and a premature answer caught ("So the
//             answer is c? Wait, that is only step k of n."), the slip a small model makes on
//             deep problems (it loses its place after a digression and answers early)
//   prose     a paragraph of generated sentences with the preamble's vocabulary (conversation,
//             user, assistant, question, solves, thinks, reasoning process, mind, provides,
//             answer, enclosed, tags, respectively, ...)
//
// Verbosity: a share `short_share` of the arithmetic plain, dialogue and tagged documents skip
// most steps (short_solution): they keep 0..2 of the steps and then state the answer, the way a
// text that guesses, or computes in its head, would. The stated answer is the right one; a
// model cannot learn to reach it without the steps on deep problems, so its short answers there
// are mostly wrong, and the written (and checked) chains are what get deep problems right.
//
// Depth: min_steps / max_steps (0 = each difficulty's own range) replace the step range of the
// arithmetic problems at every difficulty, so a corpus can hold problems of 1..8 steps.
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

enum class CorpusStyle { plain, dialogue, tagged, prose, drill, chinese, checked };
const char* corpus_style_name(CorpusStyle style);

struct BaseCorpusSpec {
  int64_t documents = 10000;
  uint64_t seed = 0;
  int min_difficulty = 1, max_difficulty = 2;
  double countdown_share = 0.2;  // of the problem documents
  // Relative weights of the styles (need not sum to 1; their sum must be positive).
  double plain = 0.5, dialogue = 0.2, tagged = 0.2, prose = 0.1, drill = 0.0, chinese = 0.0, checked = 0.0;
  double short_share = 0.0;          // of the arithmetic plain, dialogue and tagged documents
  int min_steps = 0, max_steps = 0;  // arithmetic step range; 0 = the difficulty's own
  // Whether the problems about Mei appear only in chinese documents: those beyond the chinese
  // documents' count are replaced by problems about other people (see the contract above).
  bool chinese_exclusive = false;
  // Whether checked documents also count their steps (see checked above; needs checked > 0).
  // Off, the corpus is exactly what it was before the option existed.
  bool counted_checks = false;

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

// What a self-check adds after one step of a worked solution (checked style).
enum class StepCheck { none, confirm, slip, progress, early_answer };

// The worked arithmetic solution with its steps checked: after step i, when checks[i] is
//   confirm  "Let me check: {c inv b} = {a}. Correct." (inv: - for +, + for -, / for *, * for /)
//   slip     the step's result is first written wrong, w = c + b for *, else c + 1, then
//            "Wait, {w inv b} = {a'}, not {a}. So {a op b} = {c}."
//   progress      "Let me count: that is step {i+1} of {n}." (n: the solution's steps)
//   early_answer  "So the answer is {c}? Wait, that is only step {i+1} of {n}." (a progress
//                 check at the last step, where answering is not early)
// checks shorter than the steps: the rest get none. aha::Error when the solution has no
// "a op b = c." steps or no final answer.
std::string checked_solution(const std::string& solution, const std::vector<StepCheck>& checks);

// The worked arithmetic solution with only its first `kept_steps` steps (and its opening
// sentence), then its final "The answer is N."; kept_steps >= the step count keeps them all.
std::string short_solution(const std::string& solution, int kept_steps);

// One paragraph of prose with the R1-Zero preamble's vocabulary (2-5 sentences).
std::string generate_prose_paragraph(uint64_t seed);

}  // namespace aha
