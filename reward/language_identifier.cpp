#include "reward/language_identifier.h"

// compact_lang_det.h uses FILE without including <cstdio>.
#include <cstdio>
// clang-format off
#include <cld2/public/compact_lang_det.h>
// clang-format on

#include <algorithm>
#include <climits>

#include "core/error.h"
#include "core/utf8.h"

namespace aha::reward {
namespace {

// CLD2's code for a language, as ISO 639-1; empty when it has none (CLD2's three-letter
// codes, script pseudo-languages "xx-...", "un").
std::string iso_code(CLD2::Language language) {
  std::string code = CLD2::LanguageCode(language);
  code = code.substr(0, code.find('-'));  // zh-Hant -> zh, sr-ME -> sr
  if (code == "iw") return "he";          // CLD2 keeps the codes ISO withdrew in 1989
  if (code == "jw") return "jv";
  bool two_letters = code.size() == 2 && std::all_of(code.begin(), code.end(), [](char c) {
                       return c >= 'a' && c <= 'z';
                     });
  return two_letters && code != "un" ? code : std::string();
}

}  // namespace

double LanguageIdentification::share_of(std::string_view code) const {
  for (const auto& l : languages)
    if (l.code == code) return l.share;
  return 0;
}

LanguageIdentification identify_languages(std::string_view text) {
  std::string valid = utf8::is_valid(text) ? std::string(text) : utf8::lossy(text);
  require(valid.size() < static_cast<size_t>(INT_MAX), "language identification: text longer than 2 GB");
  CLD2::Language top3[3];
  int percent3[3];
  double normalized_score3[3];
  int text_bytes = 0;
  bool is_reliable = false;
  int valid_prefix_bytes = 0;
  CLD2::ExtDetectLanguageSummaryCheckUTF8(valid.data(), static_cast<int>(valid.size()), /*is_plain_text=*/true,
                                          /*cld_hints=*/nullptr, /*flags=*/0, top3, percent3,
                                          normalized_score3, /*resultchunkvector=*/nullptr, &text_bytes,
                                          &is_reliable, &valid_prefix_bytes);
  LanguageIdentification out;
  out.letter_bytes = text_bytes;
  int identified_percent = 0;
  for (int i = 0; i < 3; ++i) {
    std::string code = iso_code(top3[i]);
    if (code.empty() || percent3[i] <= 0) continue;
    identified_percent += percent3[i];
    auto same = std::find_if(out.languages.begin(), out.languages.end(),
                             [&](const LanguageShare& l) { return l.code == code; });
    if (same != out.languages.end())
      same->share += percent3[i];  // Simplified and Traditional Chinese are both "zh"
    else
      out.languages.push_back({code, static_cast<double>(percent3[i])});
  }
  for (auto& l : out.languages) l.share /= identified_percent;
  std::stable_sort(out.languages.begin(), out.languages.end(),
                   [](const LanguageShare& a, const LanguageShare& b) { return a.share > b.share; });
  return out;
}

const std::vector<std::string>& identifiable_languages() {
  // The languages the standard table of Debian's libcld2 detects (CLD2 names 170+ languages,
  // but the table linked here scores about 80; those without an ISO 639-1 code, such as
  // Cebuano or Hmong, are left out). Checked against the translations in /usr/share/locale
  // where Debian has them; a code outside this list would never be found, so it is refused.
  static const std::vector<std::string> codes = {
      "af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "dv", "el", "en", "es", "et",
      "eu", "fa", "fi", "fr", "ga", "gd", "gl", "gu", "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it",
      "iu", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "lg", "lo", "lt", "lv", "mg", "mk", "ml",
      "mr", "ms", "mt", "my", "ne", "nl", "no", "ny", "or", "pa", "pl", "pt", "ro", "ru", "rw", "si", "sk",
      "sl", "sq", "sr", "sv", "sw", "ta", "te", "tg", "th", "tl", "tr", "uk", "ur", "uz", "vi", "yi", "zh"};
  return codes;
}

bool is_identifiable_language(std::string_view code) {
  const auto& codes = identifiable_languages();
  return std::binary_search(codes.begin(), codes.end(), code);
}

}  // namespace aha::reward
