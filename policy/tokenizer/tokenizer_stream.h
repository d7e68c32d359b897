// StreamingDecoder: turns token ids into text as they are generated, for the rollout engine
// (printing, stop strings). A character split across tokens (one byte-level token can hold
// half of an emoji) is held back until the token that completes it arrives.
//
// Contract: the concatenation of every push() result and the final finish() equals
// tokenizer.decode(all ids) byte for byte. push() never returns a truncated character at its
// end; bytes that can never become valid UTF-8 are passed through as they are (callers that
// need valid text apply utf8::lossy). One decoder per sequence; not thread-safe.
#pragma once
#include <span>
#include <string>

#include "policy/tokenizer/tokenizer.h"

namespace aha {

class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  // The text that the new ids complete (possibly empty).
  std::string push(TokenId id);
  std::string push(std::span<const TokenId> ids);
  // Whatever is still held back (an unfinished character), then starts afresh.
  std::string finish();
  // Bytes held back, waiting for the rest of their character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  Tokenizer tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
};

}  // namespace aha
