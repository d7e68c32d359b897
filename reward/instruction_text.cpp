#include "reward/instruction_text.h"

#include "core/utf8.h"

namespace aha::reward {
namespace {

std::string_view trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

}  // namespace

std::string final_answer_text(std::string_view completion, bool think_in_prompt) {
  std::string_view answer;
  size_t close = completion.rfind("</think>");
  if (close != std::string_view::npos)
    answer = completion.substr(close + 8);
  else if (think_in_prompt || completion.find("<think>") != std::string_view::npos)
    answer = {};  // the reasoning never ended: there is no answer
  else
    answer = completion;
  std::string out;
  out.reserve(answer.size());
  for (size_t i = 0; i < answer.size();) {
    if (answer.substr(i, 8) == "<answer>") {
      i += 8;
    } else if (answer.substr(i, 9) == "</answer>") {
      i += 9;
    } else {
      out += answer[i++];
    }
  }
  return std::string(trim(out));
}

uint32_t simple_lowercase(uint32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x130) return 'i';  // capital I with dot above
  if (c >= 0x100 && c <= 0x137) return c | 1;  // pairs: even upper, odd lower
  if (c >= 0x139 && c <= 0x148) return c % 2 == 1 ? c + 1 : c;  // odd upper
  if (c >= 0x14A && c <= 0x177) return c | 1;
  if (c == 0x178) return 0xFF;
  if (c >= 0x179 && c <= 0x17E) return c % 2 == 1 ? c + 1 : c;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F)) return c | 1;
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x4C1 && c <= 0x4CE) return c % 2 == 1 ? c + 1 : c;
  if (c >= 0x531 && c <= 0x556) return c + 48;
  if (c >= 0x1E00 && c <= 0x1EFF && c != 0x1E9E && (c < 0x1E96 || c > 0x1E9F)) return c | 1;
  if (c == 0x1E9E) return 0xDF;  // capital sharp s
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
  return c;
}

std::string lowercase_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const char* end = text.data() + text.size();
  for (const char* p = text.data(); p < end;) {
    size_t length = 0;
    int32_t c = utf8::decode_char(p, end, length);
    if (c < 0)
      out += *p;
    else
      utf8::append_char(out, simple_lowercase(static_cast<uint32_t>(c)));
    p += length;
  }
  return out;
}

bool is_unspaced_script(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0x20000 && c <= 0x2FFFF) || (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF);
}

bool is_word_char(uint32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  if (c < 0xC0 || c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x2000 && c <= 0x2BFF) return false;  // punctuation, symbols, arrows, math operators
  if (c >= 0x3000 && c <= 0x303F) return false;  // CJK punctuation, ideographic space
  if (c >= 0xFE30 && c <= 0xFE6F) return false;  // CJK compatibility and small forms
  if ((c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
      (c >= 0xFF5B && c <= 0xFF65))
    return false;  // fullwidth punctuation
  if (c == 0xFEFF || c == 0xFFFD) return false;
  return true;
}

int64_t count_words(std::string_view text) {
  int64_t words = 0;
  bool in_word = false;
  const char* end = text.data() + text.size();
  for (const char* p = text.data(); p < end;) {
    size_t length = 0;
    int32_t c = utf8::decode_char(p, end, length);
    p += length;
    uint32_t cp = c < 0 ? 0xFFFD : static_cast<uint32_t>(c);
    if (is_unspaced_script(cp)) {
      ++words;
      in_word = false;
    } else if (is_word_char(cp)) {
      if (!in_word) ++words;
      in_word = true;
    } else {
      in_word = false;
    }
  }
  return words;
}

}  // namespace aha::reward
