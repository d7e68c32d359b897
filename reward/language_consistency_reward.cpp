// language_consistency: DeepSeek-R1's language-consistency reward, the share of the reasoning
// that is in the target language.
//
// What is scored: the text inside <think>...</think> (scope "think"; the whole completion when
// there is no such block, or from the start up to </think> when the prompt opened it), or the
// whole completion (scope "completion"); the format's tags themselves are left out. Nothing
// there to identify scores 0.
//
// Two identifiers measure the share ("identifier" option):
// - "cld2" (the default): CLD2 (reward/language_identifier.h) on the scored text with LaTeX
//   commands blanked out; the value is the target language's share of the letter bytes CLD2
//   assigned to any language (it assigns chunks of a few words, so a share is accurate to a
//   few hundredths). Any language of reward/language_identifier.h; tells French from English.
// - "script" ("en" and "zh" only): words by Unicode script, no dictionary, ten times cheaper
//   (bench_language_id). A run of Latin letters is one word (single letters are left out: they
//   are mostly math variables, and so is a run right after '\', a LaTeX command); each Han
//   character is one word (Chinese is written without spaces); runs of Cyrillic, Greek, Arabic,
//   Hebrew, Hangul, Kana and other scripts' letters are one word each. Digits, punctuation and
//   symbols are not words. The value is the share of words in the target's script (Latin for
//   "en", Han for "zh"). It cannot tell Latin-script languages apart (French reasoning scores 1
//   for "en"), and it weighs words, not bytes, so on English/Chinese mixes it differs from
//   "cld2" by 0.11 on average: it is not the default for that reason.
// Languages are ISO 639-1 codes; an unknown code is an error listing the known ones.
#include <cstdint>
#include <cstdio>

#include "core/error.h"
#include "reward/builtin_rewards.h"
#include "reward/language_identifier.h"

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

// The scored part of a completion (see the top of the file).
std::string_view scored_region(std::string_view text, bool think_only) {
  if (!think_only) return text;
  size_t open = text.find("<think>");
  size_t start = open == std::string_view::npos ? 0 : open + 7;
  size_t close = text.find("</think>", start);
  return close != std::string_view::npos ? text.substr(start, close - start) : text.substr(start);
}

// The text with the format's tags, and with blank_latex also LaTeX commands (\frac, \times),
// replaced by a space: neither is a word of the reasoning.
std::string without_markup(std::string_view text, bool blank_latex) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    bool tag = false;
    for (std::string_view t : {"<think>", "</think>", "<answer>", "</answer>"}) {
      if (text.substr(i, t.size()) == t) {
        out += ' ';
        i += t.size() - 1;
        tag = true;
        break;
      }
    }
    if (tag) continue;
    if (blank_latex && text[i] == '\\') {
      size_t end = i + 1;
      while (end < text.size() && ((text[end] >= 'a' && text[end] <= 'z') || (text[end] >= 'A' && text[end] <= 'Z')))
        ++end;
      out += ' ';
      i = end == i + 1 ? i : end - 1;
      continue;
    }
    out += text[i];
  }
  return out;
}

class ScriptLanguageReward : public Reward {
 public:
  ScriptLanguageReward(bool chinese, bool think_only) : chinese_(chinese), think_only_(think_only) {}

  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    WordCounts counts = count_words(without_markup(scored_region(completion.text, think_only_), false));
    RewardOutput out;
    if (counts.total() == 0) {
      out.diagnostic = "no words";
      return out;
    }
    int64_t target = chinese_ ? counts.han : counts.latin;
    out.value = static_cast<double>(target) / static_cast<double>(counts.total());
    out.diagnostic = std::to_string(target) + " of " + std::to_string(counts.total()) + " words in " +
                     (chinese_ ? "zh" : "en") + " (by script)";
    return out;
  }

 private:
  bool chinese_;
  bool think_only_;
};

class Cld2LanguageReward : public Reward {
 public:
  Cld2LanguageReward(std::string language, bool think_only) : language_(std::move(language)), think_only_(think_only) {}

  RewardOutput score(const RewardExample&, const Completion& completion) const override {
    LanguageIdentification found =
        identify_languages(without_markup(scored_region(completion.text, think_only_), true));
    RewardOutput out;
    if (found.languages.empty()) {
      out.diagnostic = "no language identified in " + std::to_string(found.letter_bytes) + " letter bytes";
      return out;
    }
    out.value = found.share_of(language_);
    for (const auto& l : found.languages) {
      char share[16];
      std::snprintf(share, sizeof share, "%.2f", l.share);
      out.diagnostic += (out.diagnostic.empty() ? "" : ", ") + l.code + " " + share;
    }
    out.diagnostic += " (cld2, " + std::to_string(found.letter_bytes) + " letter bytes)";
    return out;
  }

 private:
  std::string language_;
  bool think_only_;
};

std::string known_languages() {
  std::string out;
  for (const auto& code : identifiable_languages()) out += (out.empty() ? "" : ", ") + code;
  return out;
}

}  // namespace

std::unique_ptr<Reward> make_language_consistency_reward(const json::ObjectReader& options) {
  options.reject_unknown({"language", "scope", "identifier"});
  std::string language = options.get_string("language", "en");
  std::string scope = options.get_string("scope", "think");
  bool script_knows = language == "en" || language == "zh";
  std::string identifier = options.get_string("identifier", "cld2");
  require(is_identifiable_language(language), options.context() + ": option 'language' \"" + language +
                                                  "\" is not a known ISO 639-1 code; known: " + known_languages());
  require(scope == "think" || scope == "completion",
          options.context() + ": option 'scope' must be \"think\" or \"completion\", got \"" + scope + "\"");
  require(identifier == "script" || identifier == "cld2",
          options.context() + ": option 'identifier' must be \"script\" or \"cld2\", got \"" + identifier + "\"");
  require(identifier == "cld2" || script_knows,
          options.context() + ": identifier \"script\" knows only \"en\" and \"zh\" (by Latin and Han script); "
                              "use \"cld2\" for \"" + language + "\"");
  bool think_only = scope == "think";
  if (identifier == "script") return std::make_unique<ScriptLanguageReward>(language == "zh", think_only);
  return std::make_unique<Cld2LanguageReward>(language, think_only);
}

}  // namespace aha::reward
