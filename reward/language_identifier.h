// Language identification by CLD2 (Google's Compact Language Detector 2, Debian's libcld2):
// which languages a text is written in, and in what shares. Used by the language_consistency
// reward (reward/builtin_rewards.h) when the target language cannot be told by script alone.
//
// What a share is: CLD2 reads the text's letters only (not digits, punctuation, spaces), cuts
// them into runs of one script and scores each run in chunks of a few words; a language's
// share is the fraction of the letter bytes in chunks it won, among the bytes of chunks that
// any language won (chunks too short or too mixed to call are left out, so the shares of the
// languages found sum to 1). CLD2 reports the top three languages; a fourth one, if present,
// is not counted.
//
// Languages are ISO 639-1 codes ("en", "fr", "zh"...). CLD2's own codes are mapped to them:
// Traditional Chinese ("zh-Hant") counts as "zh", "iw" as "he", "jw" as "jv". Thread-safe;
// linear in the text's length; invalid UTF-8 is replaced with U+FFFD first (CLD2 refuses it).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aha::reward {

struct LanguageShare {
  std::string code;  // ISO 639-1
  double share = 0;  // in (0, 1]
};

struct LanguageIdentification {
  std::vector<LanguageShare> languages;  // largest first; empty when no language was identified
  int64_t letter_bytes = 0;              // the letters CLD2 read

  // The share of `code` (0 when it was not among those identified).
  double share_of(std::string_view code) const;
};

LanguageIdentification identify_languages(std::string_view text);

// The ISO 639-1 codes identify_languages can find (CLD2's standard table), sorted.
const std::vector<std::string>& identifiable_languages();
bool is_identifiable_language(std::string_view code);

}  // namespace aha::reward
