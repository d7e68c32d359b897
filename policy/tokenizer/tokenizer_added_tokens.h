// Finds added tokens (special tokens such as <|im_end|>) in text before BPE, as Hugging
// Face's AddedVocabulary does: leftmost-longest matches, lstrip/rstrip widening a match over
// the white space beside it, the text between matches left for the normal pipeline.
//
// Contract: split() calls on_text(begin, end) for each non-empty stretch of text and
// on_token(id) for each match, in order; together they cover the text exactly once (white
// space taken by lstrip/rstrip belongs to the token).
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer/tokenizer_spec.h"
#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha {

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);

  bool empty() const { return tokens_.empty(); }

  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    if (tokens_.empty()) {
      if (!text.empty()) on_text(size_t{0}, text.size());
      return;
    }
    size_t emitted = 0, pos = 0;
    while (pos < text.size()) {
      size_t at;
      const AddedToken* token = next_match(text, pos, at);
      if (!token) break;
      size_t begin = at, end = at + token->content.size();
      if (token->lstrip) begin = std::max(emitted, white_space_start(text, begin));
      if (token->rstrip) end = white_space_end(text, end);
      if (emitted < begin) on_text(emitted, begin);
      on_token(token->id);
      emitted = end;
      pos = at + token->content.size();
      if (pos < end) pos = end;
    }
    if (emitted < text.size()) on_text(emitted, text.size());
  }

 private:
  // The leftmost match at or after `from`, the longest there; nullptr if none.
  const AddedToken* next_match(std::string_view text, size_t from, size_t& at) const;
  static size_t white_space_start(std::string_view text, size_t end);
  static size_t white_space_end(std::string_view text, size_t begin);

  // Sorted by content, so that the tokens sharing a prefix form one range, narrowed byte by
  // byte (Llama 3 and DeepSeek have hundreds of reserved tokens that all begin alike).
  std::vector<AddedToken> tokens_;
  std::array<bool, 256> first_bytes_{};
  int single_first_byte_ = -1;  // when every token starts with the same byte: memchr for it
};

}  // namespace aha
