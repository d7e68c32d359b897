#include "core/reflection_words.h"

#include <cctype>

namespace aha {
namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

const std::vector<std::string>& default_reflection_words() {
  static const std::vector<std::string> words = {"wait", "verify", "re-check", "recheck", "let me", "double-check"};
  return words;
}

int64_t count_reflection_words(const std::string& text, const std::vector<std::string>& words) {
  const std::string haystack = lower(text);
  int64_t count = 0;
  for (const auto& word : words) {
    const std::string needle = lower(word);
    if (needle.empty()) continue;
    for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) {
      const size_t end = at + needle.size();
      if ((at == 0 || !is_word_char(haystack[at - 1])) && (end == haystack.size() || !is_word_char(haystack[end])))
        ++count;
    }
  }
  return count;
}

}  // namespace aha
