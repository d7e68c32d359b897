#include "policy/tokenizer/tokenizer_added_tokens.h"

#include <algorithm>

namespace aha {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  std::sort(tokens_.begin(), tokens_.end(), [](const AddedToken& x, const AddedToken& y) { return x.content < y.content; });
  int distinct = 0;
  for (const auto& t : tokens_) {
    auto b = static_cast<unsigned char>(t.content[0]);
    if (!first_bytes_[b]) ++distinct;
    first_bytes_[b] = true;
    single_first_byte_ = b;
  }
  if (distinct != 1) single_first_byte_ = -1;
}

const AddedToken* AddedTokenMatcher::next_match(std::string_view text, size_t from, size_t& at) const {
  for (size_t i = from; i < text.size(); ++i) {
    if (single_first_byte_ >= 0) {
      const void* hit = std::memchr(text.data() + i, single_first_byte_, text.size() - i);
      if (!hit) return nullptr;
      i = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
    } else if (!first_bytes_[static_cast<unsigned char>(text[i])]) {
      continue;
    }
    // tokens_[lo, hi) all begin with text[i, i + k); those exactly k long sort first.
    size_t lo = 0, hi = tokens_.size();
    const AddedToken* longest = nullptr;
    for (size_t k = 0; lo < hi; ++k) {
      if (tokens_[lo].content.size() == k) longest = &tokens_[lo++];
      if (lo == hi || i + k >= text.size()) break;
      // Bytes compare unsigned, as std::string orders them.
      auto c = static_cast<unsigned char>(text[i + k]);
      auto byte = [k](const AddedToken& t) { return static_cast<unsigned char>(t.content[k]); };
      auto begin = tokens_.begin() + static_cast<long>(lo), end = tokens_.begin() + static_cast<long>(hi);
      auto first = std::lower_bound(begin, end, c, [&](const AddedToken& t, unsigned char v) { return byte(t) < v; });
      auto last = std::upper_bound(first, end, c, [&](unsigned char v, const AddedToken& t) { return v < byte(t); });
      lo = static_cast<size_t>(first - tokens_.begin());
      hi = static_cast<size_t>(last - tokens_.begin());
    }
    if (longest) {
      at = i;
      return longest;
    }
  }
  return nullptr;
}

// Where the white space that ends at `end` begins (Unicode White_Space, as Rust's
// char::is_whitespace).
size_t AddedTokenMatcher::white_space_start(std::string_view text, size_t end) {
  size_t begin = end;
  while (begin > 0) {
    size_t start = begin - 1;
    while (start > 0 && begin - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t length;
    int32_t cp = utf8::decode_char(text.data() + start, text.data() + begin, length);
    if (cp < 0 || start + length != begin || !utf8::is_white_space(static_cast<uint32_t>(cp))) break;
    begin = start;
  }
  return begin;
}

size_t AddedTokenMatcher::white_space_end(std::string_view text, size_t begin) {
  size_t end = begin;
  while (end < text.size()) {
    size_t length;
    int32_t cp = utf8::decode_char(text.data() + end, text.data() + text.size(), length);
    if (cp < 0 || !utf8::is_white_space(static_cast<uint32_t>(cp))) break;
    end += length;
  }
  return end;
}

}  // namespace aha
