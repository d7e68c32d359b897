#define PCRE2_CODE_UNIT_WIDTH 8
#include "policy/tokenizer/tokenizer_regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace aha {
namespace {

// Oniguruma's \s: the Unicode White_Space property.
constexpr const char* kWhiteSpaceMembers =
    "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
    "\\x{205f}\\x{3000}";
// Oniguruma's \w (Unicode): letters, marks, decimal digits, connector punctuation.
constexpr const char* kWordMembers = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string translate_oniguruma_pattern(std::string_view pattern, const std::string& where) {
  std::string out;
  bool in_class = false;
  size_t class_start = 0;  // where the current class began, to tell "[]...]" from "[]"
  auto unsupported = [&](std::string_view what) {
    throw Error(where + ": the pattern uses " + std::string(what) +
                ", which aha does not support (its meaning differs between Oniguruma and "
                "PCRE2); pattern: " + std::string(pattern));
  };
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c != '\\') {
      if (c == '[' && !in_class) {
        in_class = true;
        out += c;
        class_start = i;
        if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
        if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // literal ]
        continue;
      }
      if (c == '[' && in_class) unsupported("a nested character class");
      if (c == ']' && in_class && i != class_start) in_class = false;
      out += c;
      continue;
    }
    if (i + 1 >= pattern.size()) unsupported("a trailing backslash");
    char e = pattern[++i];
    std::string members;
    bool negated = false;
    switch (e) {
      case 's': members = kWhiteSpaceMembers; break;
      case 'S': members = kWhiteSpaceMembers; negated = true; break;
      case 'w': members = kWordMembers; break;
      case 'W': members = kWordMembers; negated = true; break;
      case 'd': members = "\\p{Nd}"; break;
      case 'D': members = "\\p{Nd}"; negated = true; break;
      case 'v': out += "\\x{0b}"; continue;
      case 'u': {
        if (i + 4 >= pattern.size() || !is_hex(pattern[i + 1]) || !is_hex(pattern[i + 2]) ||
            !is_hex(pattern[i + 3]) || !is_hex(pattern[i + 4]))
          unsupported("\\u without four hex digits");
        out += "\\x{" + std::string(pattern.substr(i + 1, 4)) + "}";
        i += 4;
        continue;
      }
      case 'p': case 'P': case 'x': case 't': case 'n': case 'r': case 'f': case 'e': case 'a':
        out += '\\';
        out += e;
        continue;
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
          unsupported(std::string("the escape \\") + e);
        out += '\\';  // an escaped punctuation character means itself in both
        out += e;
        continue;
    }
    if (!in_class) {
      out += negated ? "[^" : "[";
      out += members;
      out += "]";
    } else {
      if (negated) unsupported(std::string("\\") + e + " inside a character class");
      out += members;
    }
  }
  if (in_class) unsupported("an unterminated character class");
  return out;
}

SplitRegex::SplitRegex(std::string_view pattern, const std::string& where) {
  std::string translated = translate_oniguruma_pattern(pattern, where);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset,
                                   nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw Error(where + ": cannot compile the pattern " + std::string(pattern) + ": " +
                reinterpret_cast<const char*>(message) + " (at offset " +
                std::to_string(error_offset) + " of the PCRE2 form " + translated + ")");
  }
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

SplitRegex::~SplitRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

namespace {

// Per-thread match state: the ovector (one pair is all find() reads) and a JIT stack large
// enough for long whitespace runs with look-ahead.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

}  // namespace

bool SplitRegex::find(std::string_view text, size_t from, size_t& begin, size_t& end) const {
  thread_local MatchState state;
  auto* code = static_cast<pcre2_code*>(code_);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  while (from < text.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), from, 0, state.data, state.context)
                  : pcre2_match(code, subject, text.size(), from, 0, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      throw Error(std::string("pre-tokenizer split pattern: matching failed: ") +
                  reinterpret_cast<const char*>(message));
    }
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    if (ovector[1] > ovector[0]) {
      begin = ovector[0];
      end = ovector[1];
      return true;
    }
    from = ovector[0] + 1;  // an empty match: look again one byte further
    while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;
  }
  return false;
}

}  // namespace aha
