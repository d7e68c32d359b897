#include "policy/tokenizer/tokenizer_stream.h"

#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha {

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamingDecoder::push(TokenId id) { return push(std::span<const TokenId>(&id, 1)); }

std::string StreamingDecoder::push(std::span<const TokenId> ids) {
  for (TokenId id : ids) {
    const std::string& bytes = tokenizer_.token_bytes(id);
    if (skip_special_tokens_ && tokenizer_.is_special(id)) continue;
    pending_ += bytes;
  }
  size_t ready = pending_.size() - utf8::incomplete_tail_length(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamingDecoder::finish() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace aha
