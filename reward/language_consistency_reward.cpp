// language_consistency: DeepSeek-R1's language-consistency reward, the share of the reasoning's
// words that are in the target language.
//
// Words are found by Unicode script, which needs no dictionary and separates the languages
// R1 mixes (English and Chinese): a run of Latin letters is one word (single letters are
// left out: they are mostly math variables, and so is a run right after '\', a LaTeX
// command); each Han character is one word (Chinese is written without spaces); runs of
// Cyrillic, Greek, Arabic, Hebrew, Hangul, Kana and other scripts' letters are one word each.
// Digits, punctuation and symbols are not words. The target is "en" (Latin) or "zh" (Han).
// Scope "think" scores the text inside <think>...</think> (the whole completion when there is
// no such block, or from the start up to </think> when the prompt opened it); "completion"
// scores everything (but the tags themselves). No words at all scores 0.
#include <cstdint>

#include "core/error.h"
#include "reward/builtin_rewards.h"

namespace aha::reward {
namespace {

enum class Script { none, latin, han, other };

Script script_of(uint32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7)) {
    return Script::latin;
  }
  if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
      (c >= 0x20000 && c <= 0x2A6DF)) {
    return Script::han;
  }
  if ((c >= 0x370 && c <= 0x3FF) || (c >= 0x400 && c <= 0x52F) || (c >= 0x590 && c <= 0x6FF) ||
      (c >= 0x900 && c <= 0xDFF) || (c >= 0xE00 && c <= 0xEFF) || (c >= 0x3040 && c <= 0x30FF) ||
      (c >= 0xAC00 && c <= 0xD7AF)) {
    return Script::other;
  }
  return Script::none;
}

// Decodes one UTF-8 code point at text[i], advancing i; invalid bytes decode as U+FFFD.
uint32_t next_code_point(std::string_view text, size_t& i) {
  unsigned char c = text[i++];
  int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (extra < 0) return 0xFFFD;
  uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
  for (int k = 0; k < extra; ++k) {
    if (i >= text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (static_cast<unsigned char>(text[i++]) & 0x3F);
  }
  return cp;
}

struct WordCounts {
  int64_t latin = 0, han = 0, other = 0;
  int64_t total() const { return latin + han + other; }
};

WordCounts count_words(std::string_view text) {
  WordCounts counts;
  Script run = Script::none;
  int64_t run_length = 0;
  bool run_is_command = false;
  char previous = ' ';
  auto close_run = [&] {
    if (run == Script::latin && run_length >= 2 && !run_is_command) ++counts.latin;
    if (run == Script::other) ++counts.other;
    run = Script::none;
    run_length = 0;
  };
  for (size_t i = 0; i < text.size();) {
    char first_byte = text[i];
    Script s = script_of(next_code_point(text, i));
    if (s == Script::han) {
      close_run();
      ++counts.han;
    } else if (s != run) {
      close_run();
      if (s != Script::none) {
        run = s;
        run_length = 1;
        run_is_command = previous == '\\';
      }
    } else if (s != Script::none) {
      ++run_length;
    }
    previous = first_byte;
  }
  close_run();
  return counts;
}

class LanguageConsistencyReward : public Reward {
 public:
  LanguageConsistencyReward(bool chinese, bool think_only) : chinese_(chinese), think_only_(think_only) {}

  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    std::string_view text = completion.text;
    if (think_only_) {
      size_t open = text.find("<think>");
      size_t start = open == std::string_view::npos ? 0 : open + 7;
      size_t close = text.find("</think>", start);
      if (close != std::string_view::npos)
        text = text.substr(start, close - start);
      else
        text = text.substr(start);
    }
    // The format's own tags are not words of the reasoning.
    std::string untagged;
    untagged.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      bool tag = false;
      for (std::string_view t : {"<think>", "</think>", "<answer>", "</answer>"}) {
        if (text.substr(i, t.size()) == t) {
          untagged += ' ';
          i += t.size() - 1;
          tag = true;
          break;
        }
      }
      if (!tag) untagged += text[i];
    }
    WordCounts counts = count_words(untagged);
    RewardOutput out;
    if (counts.total() == 0) {
      out.diagnostic = "no words";
      return out;
    }
    int64_t target = chinese_ ? counts.han : counts.latin;
    out.value = static_cast<double>(target) / static_cast<double>(counts.total());
    out.diagnostic = std::to_string(target) + " of " + std::to_string(counts.total()) + " words in " +
                     (chinese_ ? "zh" : "en");
    return out;
  }

 private:
  bool chinese_;
  bool think_only_;
};

}  // namespace

std::unique_ptr<Reward> make_language_consistency_reward(const json::ObjectReader& options) {
  options.reject_unknown({"language", "scope"});
  std::string language = options.get_string("language", "en");
  std::string scope = options.get_string("scope", "think");
  require(language == "en" || language == "zh",
          options.context() + ": option 'language' must be \"en\" or \"zh\", got \"" + language + "\"");
  require(scope == "think" || scope == "completion",
          options.context() + ": option 'scope' must be \"think\" or \"completion\", got \"" + scope + "\"");
  return std::make_unique<LanguageConsistencyReward>(language == "zh", scope == "think");
}

}  // namespace aha::reward
