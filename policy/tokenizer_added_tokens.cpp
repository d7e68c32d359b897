#include "policy/tokenizer_added_tokens.h"

#include <algorithm>

namespace aha {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (uint32_t i = 0; i < tokens_.size(); ++i)
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  int distinct = 0;
  for (int b = 0; b < 256; ++b) {
    auto& list = by_first_byte_[b];
    std::stable_sort(list.begin(), list.end(), [&](uint32_t x, uint32_t y) {
      return tokens_[x].content.size() > tokens_[y].content.size();
    });
    if (!list.empty()) {
      ++distinct;
      single_first_byte_ = b;
    }
  }
  if (distinct != 1) single_first_byte_ = -1;
}

const AddedToken* AddedTokenMatcher::next_match(std::string_view text, size_t from, size_t& at) const {
  for (size_t i = from; i < text.size(); ++i) {
    if (single_first_byte_ >= 0) {
      const void* hit = std::memchr(text.data() + i, single_first_byte_, text.size() - i);
      if (!hit) return nullptr;
      i = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
    }
    for (uint32_t index : by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const std::string& content = tokens_[index].content;
      if (text.compare(i, content.size(), content) == 0) {
        at = i;
        return &tokens_[index];
      }
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
