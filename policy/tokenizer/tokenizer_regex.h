// A pre-tokenizer split pattern from tokenizer.json, compiled with PCRE2 (JIT, UTF mode).
//
// Hugging Face tokenizers runs these patterns with Oniguruma, whose escapes differ from
// PCRE2's: \s is Unicode White_Space (PCRE2's is ASCII, or lacks U+0085 with UCP), \d and
// \w are Unicode, \h is a hex digit, \v a vertical tab, \uHHHH a code point. The pattern is
// translated to PCRE2 syntax with the same meaning; an escape whose meaning would differ and
// that is not translated (\b, \h, back-references, ...) is an error naming the pattern.
//
// Contract: find() works on any bytes. Invalid UTF-8 never matches (PCRE2_MATCH_INVALID_UTF),
// so a run of invalid bytes ends up in the gaps between matches. Thread-safe: each thread
// uses its own match data.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace aha {

// Oniguruma pattern -> PCRE2 pattern; `where` names the pattern in errors.
std::string translate_oniguruma_pattern(std::string_view pattern, const std::string& where);

class SplitRegex {
 public:
  // `pattern` is in Oniguruma syntax (as in tokenizer.json); `where` names it in errors.
  SplitRegex(std::string_view pattern, const std::string& where);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // The first non-empty match in text at or after `from`: sets [begin, end) and returns true.
  bool find(std::string_view text, size_t from, size_t& begin, size_t& end) const;

 private:
  void* code_;  // pcre2_code_8*, kept opaque so that pcre2.h stays out of this header
  bool jit_;
};

}  // namespace aha
