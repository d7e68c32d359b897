// The base model's skill check: greedy completions of HELD-OUT arithmetic problems prompted in
// the plain pretraining style ("Question: {problem}\nAnswer:"), scored by their final number.
//
// Contract: the problems are generate_arithmetic(..., Split::heldout) spread evenly over the
// difficulties, so none was trained on. Decoding is greedy (the rollout engine at temperature
// 0) and stops at <|endoftext|> (the tokenizer's EOS), a newline, or max_new_tokens. A
// completion is right when its final number (final_number) equals the gold answer.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recipes/runner/pretrain_spec.h"

namespace aha {

class Transformer;
class Tokenizer;

struct HeldoutEvalResult {
  int64_t problems = 0, correct = 0;
  struct Sample {
    std::string prompt, completion, gold;
    bool correct = false;
  };
  std::vector<Sample> samples;  // every problem, in order
  double accuracy() const { return problems ? double(correct) / double(problems) : 0.0; }
};

HeldoutEvalResult evaluate_plain_heldout(const Transformer& model, const Tokenizer& tokenizer,
                                         const PretrainSpec::Eval& spec);

// The number after the last "The answer is" in text, else the last number in it (digits with
// an optional leading minus); nullopt when text has none.
std::optional<std::string> final_number(std::string_view text);

}  // namespace aha
