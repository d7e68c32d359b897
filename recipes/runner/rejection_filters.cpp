#include "recipes/runner/rejection_filters.h"

#include <algorithm>
#include <set>
#include <unordered_set>

#include "core/error.h"

namespace aha::recipes {
namespace {

double component(const Candidate& c, const std::string& name, const std::string& filter) {
  auto it = c.components.find(name);
  if (it == c.components.end()) {
    std::string known;
    for (const auto& kv : c.components) known += (known.empty() ? "" : ", ") + kv.first;
    throw Error("rejection filter '" + filter + "' needs the reward component '" + name +
                "', which the rewards do not give (components: " + (known.empty() ? "none" : known) +
                "); add a reward of that name or switch the filter off");
  }
  return it->second;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : text) {
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::unordered_set<std::string> shingles(std::string_view text, size_t n) {
  auto words = words_of(text);
  std::unordered_set<std::string> out;
  if (words.size() < n) {
    std::string all;
    for (const auto& w : words) all += w + ' ';
    out.insert(all);
    return out;
  }
  for (size_t i = 0; i + n <= words.size(); ++i) {
    std::string s;
    for (size_t k = 0; k < n; ++k) s += words[i + k] + ' ';
    out.insert(std::move(s));
  }
  return out;
}

double jaccard(const std::unordered_set<std::string>& a, const std::unordered_set<std::string>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t common = 0;
  for (const auto& s : a) common += b.count(s);
  return static_cast<double>(common) / static_cast<double>(a.size() + b.size() - common);
}

}  // namespace

const std::vector<std::string>& rejection_filter_names() {
  static const std::vector<std::string> names = {"correct", "format", "language",  "no_code",
                                                 "paragraph", "length", "exact_dup", "near_dup"};
  return names;
}

void enable_filters(RejectionFilters& f, const std::string& comma_list, const std::string& what) {
  size_t start = 0;
  while (start <= comma_list.size()) {
    size_t comma = comma_list.find(',', start);
    std::string name = comma_list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? comma_list.size() + 1 : comma + 1;
    if (name.empty()) continue;
    bool* flag = name == "correct"     ? &f.correct
                 : name == "format"    ? &f.format
                 : name == "language"  ? &f.language
                 : name == "no_code"   ? &f.no_code
                 : name == "paragraph" ? &f.paragraph
                 : name == "length"    ? &f.length
                 : name == "exact_dup" ? &f.exact_dup
                 : name == "near_dup"  ? &f.near_dup
                                       : nullptr;
    if (!flag) {
      std::string known;
      for (const auto& n : rejection_filter_names()) known += (known.empty() ? "" : ", ") + n;
      throw Error(what + ": unknown filter '" + name + "'; known: " + known);
    }
    *flag = true;
  }
}

std::vector<std::string> enabled_filters(const RejectionFilters& f) {
  const bool on[] = {f.correct, f.format, f.language, f.no_code, f.paragraph, f.length, f.exact_dup, f.near_dup};
  std::vector<std::string> out;
  for (size_t i = 0; i < rejection_filter_names().size(); ++i)
    if (on[i]) out.push_back(rejection_filter_names()[i]);
  return out;
}

void validate(const RejectionFilters& f) {
  require(f.language_threshold >= 0 && f.language_threshold <= 1,
          "rejection filters: language_threshold must be in [0, 1], got " + std::to_string(f.language_threshold));
  require(f.near_dup_threshold >= 0 && f.near_dup_threshold <= 1,
          "rejection filters: near_dup_threshold must be in [0, 1], got " + std::to_string(f.near_dup_threshold));
  require(f.max_paragraph_chars >= 1, "rejection filters: max_paragraph_chars must be at least 1");
  require(f.min_tokens >= 0 && f.min_tokens <= f.max_tokens,
          "rejection filters: min_tokens must be in [0, max_tokens], got " + std::to_string(f.min_tokens));
}

std::string_view reasoning_of(std::string_view text) {
  size_t close = text.find("</think>");
  if (close == std::string_view::npos) return {};
  size_t open = text.substr(0, close).find("<think>");
  size_t start = open == std::string_view::npos ? 0 : open + 7;
  return text.substr(start, close - start);
}

int64_t longest_paragraph_chars(std::string_view text) {
  int64_t longest = 0, current = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      current = 0;  // a blank line ends the paragraph
    } else {
      if (current > 0) ++current;  // the line break inside the paragraph
      for (unsigned char c : line) current += (c & 0xC0) != 0x80;
      longest = std::max(longest, current);
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return longest;
}

double shingle_jaccard(std::string_view a, std::string_view b, size_t n) {
  return jaccard(shingles(a, n), shingles(b, n));
}

FilterVerdicts apply_filters(const RejectionFilters& f, const std::vector<Candidate>& candidates, int64_t keep) {
  FilterVerdicts v;
  v.reasons.assign(candidates.size(), "");
  std::vector<size_t> survivors;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    std::string& why = v.reasons[i];
    if (f.correct && component(c, f.accuracy_reward, "correct") < 1.0)
      why = "correct";
    else if (f.format && component(c, f.format_reward, "format") < 1.0)
      why = "format";
    else if (f.language && component(c, f.language_reward, "language") < f.language_threshold)
      why = "language";
    else if (f.no_code && c.math && reasoning_of(c.text).find("```") != std::string_view::npos)
      why = "no_code";
    else if (f.paragraph && longest_paragraph_chars(c.text) > f.max_paragraph_chars)
      why = "paragraph";
    else if (f.length && (c.truncated || c.tokens < f.min_tokens || c.tokens > f.max_tokens))
      why = "length";
    if (why.empty()) survivors.push_back(i);
  }
  std::set<std::string> seen;
  std::vector<std::unordered_set<std::string>> kept_shingles;
  for (size_t i : survivors) {
    const std::string& text = candidates[i].text;
    if (f.exact_dup && seen.count(text)) {
      v.reasons[i] = "exact_dup";
      continue;
    }
    std::unordered_set<std::string> mine;
    if (f.near_dup) {
      mine = shingles(text, 3);
      bool near = false;
      for (const auto& other : kept_shingles) near = near || jaccard(mine, other) >= f.near_dup_threshold;
      if (near) {
        v.reasons[i] = "near_dup";
        continue;
      }
    }
    if (static_cast<int64_t>(v.kept.size()) >= keep) {
      v.reasons[i] = "over_keep";
      continue;
    }
    seen.insert(text);
    if (f.near_dup) kept_shingles.push_back(std::move(mine));
    v.kept.push_back(i);
  }
  return v;
}

}  // namespace aha::recipes
