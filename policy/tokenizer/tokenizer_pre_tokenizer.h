// The pre-tokenizer of tokenizer.json: a sequence of steps, each cutting every piece that
// the previous step produced. Split (Isolated) keeps both the matches of its pattern and the
// text between them as pieces; ByteLevel optionally prefixes a space to each piece and, with
// use_regex, splits it with GPT-2's pattern. (The byte-to-character mapping itself is not
// done here: the BPE model works on raw bytes.)
//
// Contract: run() calls on_word(piece) for every non-empty final piece, in order; pieces are
// views that live until on_word returns. Thread-safe.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer/tokenizer_regex.h"
#include "policy/tokenizer/tokenizer_spec.h"

namespace aha {

class PreTokenizer {
 public:
  PreTokenizer() = default;
  PreTokenizer(const std::vector<PreTokenizerStep>& steps, const std::string& where);

  template <typename OnWord>
  void run(std::string_view text, OnWord&& on_word) const {
    run_from(0, text, on_word);
  }

 private:
  struct Step {
    std::unique_ptr<SplitRegex> regex;  // null: no splitting
    bool add_prefix_space = false;
  };

  template <typename OnWord>
  void run_from(size_t index, std::string_view piece, OnWord& on_word) const {
    if (piece.empty()) return;
    if (index == steps_.size()) {
      on_word(piece);
      return;
    }
    const Step& step = steps_[index];
    if (step.add_prefix_space && piece[0] != ' ') {
      std::string prefixed(1, ' ');
      prefixed.append(piece);
      split_then(step, index, prefixed, on_word);
    } else {
      split_then(step, index, piece, on_word);
    }
  }

  template <typename OnWord>
  void split_then(const Step& step, size_t index, std::string_view piece, OnWord& on_word) const {
    if (!step.regex) {
      run_from(index + 1, piece, on_word);
      return;
    }
    size_t pos = 0, begin, end;
    while (step.regex->find(piece, pos, begin, end)) {
      if (begin > pos) run_from(index + 1, piece.substr(pos, begin - pos), on_word);
      run_from(index + 1, piece.substr(begin, end - begin), on_word);
      pos = end;
    }
    if (pos < piece.size()) run_from(index + 1, piece.substr(pos), on_word);
  }

  std::vector<Step> steps_;
};

}  // namespace aha
