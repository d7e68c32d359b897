#include "policy/tokenizer/tokenizer_nfc.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "policy/tokenizer/tokenizer_nfc_data.h"
#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha {
namespace {

// Hangul syllables compose and decompose by arithmetic (Unicode 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr uint32_t kSCount = kLCount * kNCount;

struct Tables {
  std::unordered_map<uint32_t, uint8_t> combining_class;
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> decomposition;
  std::unordered_map<uint64_t, uint32_t> composition;

  Tables() {
    for (size_t i = 0; i < nfc_data::kCombiningClass_size; ++i)
      combining_class[nfc_data::kCombiningClass[i][0]] = static_cast<uint8_t>(nfc_data::kCombiningClass[i][1]);
    for (size_t i = 0; i < nfc_data::kDecomposition_size; ++i) {
      const auto& d = nfc_data::kDecomposition[i];
      decomposition[d[0]] = {d[1], d[2]};
    }
    for (size_t i = 0; i < nfc_data::kComposition_size; ++i) {
      const auto& c = nfc_data::kComposition[i];
      composition[(uint64_t{c[0]} << 32) | c[1]] = c[2];
    }
  }
};

const Tables& tables() {
  static const Tables instance;
  return instance;
}

// Below U+0300 every character has class 0 and quick-check Yes.
constexpr uint32_t kFirstInteresting = 0x300;

uint8_t combining_class(int64_t cp) {
  if (cp < kFirstInteresting) return 0;
  const auto& table = tables().combining_class;
  auto it = table.find(static_cast<uint32_t>(cp));
  return it == table.end() ? 0 : it->second;
}

bool quick_check_not_yes(uint32_t cp) {
  if (cp < kFirstInteresting) return false;
  if ((cp >= kVBase && cp < kVBase + kVCount) || (cp > kTBase && cp < kTBase + kTCount)) return true;
  const auto* begin = nfc_data::kNotQuickCheckYes;
  const auto* end = begin + nfc_data::kNotQuickCheckYes_size;
  const auto* it = std::lower_bound(begin, end, cp, [](const uint32_t (&row)[1], uint32_t v) { return row[0] < v; });
  return it != end && (*it)[0] == cp;
}

// Code points, with an invalid byte b stored as -1 - b.
void decompose(int64_t cp, std::vector<int64_t>& out) {
  if (cp < 0xC0) {  // nothing below U+00C0 decomposes
    out.push_back(cp);
    return;
  }
  auto ucp = static_cast<uint32_t>(cp);
  if (ucp >= kSBase && ucp < kSBase + kSCount) {
    uint32_t s = ucp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto& table = tables().decomposition;
  auto it = table.find(ucp);
  if (it == table.end()) {
    out.push_back(cp);
    return;
  }
  decompose(it->second.first, out);
  if (it->second.second != 0) decompose(it->second.second, out);
}

int64_t compose_pair(int64_t first, int64_t second) {
  if (first < 0 || second < 0) return -1;
  auto a = static_cast<uint32_t>(first), b = static_cast<uint32_t>(second);
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto& table = tables().composition;
  auto it = table.find((uint64_t{a} << 32) | b);
  return it == table.end() ? int64_t{-1} : int64_t{it->second};
}

}  // namespace

bool is_nfc_quick(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  uint8_t last_class = 0;
  while (p < end) {
    if (static_cast<unsigned char>(*p) < 0x80) {
      ++p;
      last_class = 0;
      continue;
    }
    size_t length;
    int32_t cp = utf8::decode_char(p, end, length);
    p += length;
    if (cp < 0) {
      last_class = 0;
      continue;
    }
    uint8_t c = combining_class(cp);
    if ((c != 0 && last_class > c) || quick_check_not_yes(static_cast<uint32_t>(cp))) return false;
    last_class = c;
  }
  return true;
}

std::string nfc(std::string_view text) {
  if (is_nfc_quick(text)) return std::string(text);
  // 1. Full canonical decomposition.
  std::vector<int64_t> cps;
  cps.reserve(text.size() * 2);
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    size_t length;
    int32_t cp = utf8::decode_char(p, end, length);
    if (cp < 0) cps.push_back(-1 - static_cast<int64_t>(static_cast<unsigned char>(*p)));
    else decompose(cp, cps);
    p += length;
  }
  // 2. Canonical ordering: a stable sort by class of each run of non-starters.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<long>(i), cps.begin() + static_cast<long>(j),
                     [](int64_t a, int64_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // 3. Canonical composition: a character joins the last starter unless a character between
  // them has class 0 or a class at least its own (it is "blocked").
  std::vector<int64_t> out;
  out.reserve(cps.size());
  long starter = -1;
  for (int64_t cp : cps) {
    uint8_t c = combining_class(cp);
    if (starter >= 0) {
      bool adjacent = out.size() - 1 == static_cast<size_t>(starter);
      bool blocked = !adjacent && combining_class(out.back()) >= c;
      if (!blocked) {
        int64_t composite = compose_pair(out[static_cast<size_t>(starter)], cp);
        if (composite >= 0) {
          out[static_cast<size_t>(starter)] = composite;
          continue;
        }
      }
    }
    out.push_back(cp);
    if (c == 0) starter = static_cast<long>(out.size()) - 1;
  }
  std::string result;
  result.reserve(text.size());
  for (int64_t cp : out) {
    if (cp < 0) result.push_back(static_cast<char>(-1 - cp));
    else utf8::append_char(result, static_cast<uint32_t>(cp));
  }
  return result;
}

}  // namespace aha
