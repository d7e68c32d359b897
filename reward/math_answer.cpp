#include "reward/math_answer.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/error.h"

namespace aha::reward {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// For each '{' of text, the index of its closing '}', else npos; \{ and \} do not count (a
// backslash escapes the character after it). One pass, so that reading every box argument,
// nested boxes included, stays linear in the text's length.
std::vector<size_t> match_braces(std::string_view text) {
  std::vector<size_t> match(text.size(), std::string_view::npos), open;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '{') {
      open.push_back(i);
    } else if (text[i] == '}' && !open.empty()) {
      match[open.back()] = i;
      open.pop_back();
    }
  }
  return match;
}

// Calls found(content_begin, content_end, command_begin) for each terminated \boxed / \fbox argument, in
// order: {balanced} or one token ("\boxed 5", "\boxed5": digits, letters or a dot).
template <typename Found>
void for_each_box(std::string_view text, Found&& found) {
  if (text.find('\\') == std::string_view::npos) return;
  std::vector<size_t> match;  // made on the first braced box
  size_t pos = 0;
  while ((pos = text.find('\\', pos)) != std::string_view::npos) {
    size_t after = 0;
    if (text.compare(pos, 6, "\\boxed") == 0)
      after = pos + 6;
    else if (text.compare(pos, 5, "\\fbox") == 0)
      after = pos + 5;
    if (after == 0 || (after < text.size() && std::isalpha(static_cast<unsigned char>(text[after])))) {
      ++pos;  // not a box, or a longer command such as \boxedfoo
      continue;
    }
    size_t arg = after;
    while (arg < text.size() && text[arg] == ' ') ++arg;
    if (arg < text.size() && text[arg] == '{') {
      if (match.empty()) match = match_braces(text);
      if (match[arg] != std::string_view::npos) found(arg + 1, match[arg], pos);
    } else {
      size_t end = arg;
      while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '.'))
        ++end;
      if (end > arg) found(arg, end, pos);
    }
    pos = after;
  }
}

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The length of a percent mark at text[pos] after optional spaces ("%", "\%", "percent", "pct",
// "percentage"), else 0.
size_t percent_suffix(std::string_view text, size_t pos) {
  size_t p = pos;
  while (p < text.size() && text[p] == ' ') ++p;
  for (std::string_view mark : {"\\%", "%", "percentage", "percent", "pct"}) {
    if (text.compare(p, mark.size(), mark) == 0 &&
        !(is_letter(mark.back()) && p + mark.size() < text.size() && is_letter(text[p + mark.size()]))) {
      return p + mark.size() - pos;
    }
  }
  return 0;
}

struct Span {
  size_t begin = 0, end = 0;  // the content
  size_t stop = 0;            // just past the closing delimiter
  bool percent = false;       // a percent mark follows
  size_t open = 0;            // where the opening delimiter (or \boxed) starts
};

// The math spans of text, in order: $...$ (one line), $$...$$, \(...\) (one line), \[...\].
// Linear: the scan resumes at the closer of every search (a failed one too), and a delimiter
// kind with no closer left is not searched for again.
std::vector<Span> math_spans(std::string_view text) {
  std::vector<Span> spans;
  bool no_more[4] = {false, false, false, false};  // $$, $, \), \]
  auto find_unescaped = [&](std::string_view closer, size_t from) {
    for (size_t p = text.find(closer, from); p != std::string_view::npos; p = text.find(closer, p + 1))
      if (p == 0 || text[p - 1] != '\\') return p;
    return std::string_view::npos;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    int kind = -1;
    size_t open = 0;
    std::string_view closer;
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '(' || text[i + 1] == '[')) {
      kind = text[i + 1] == '(' ? 2 : 3, open = 2, closer = text[i + 1] == '(' ? "\\)" : "\\]";
    } else if (text[i] == '\\') {
      ++i;  // an escaped character (\$ is a dollar, not a delimiter)
      continue;
    } else if (text.compare(i, 2, "$$") == 0) {
      kind = 0, open = 2, closer = "$$";
    } else if (text[i] == '$') {
      kind = 1, open = 1, closer = "$";
    }
    if (kind < 0 || no_more[kind]) continue;
    size_t close = find_unescaped(closer, i + open);
    if (close == std::string_view::npos) {
      no_more[kind] = true;
      continue;
    }
    bool one_line = kind == 0 || kind == 3 || text.substr(i, close - i).find('\n') == std::string_view::npos;
    if (!one_line) {  // "$ \n 9 \n $" is not inline math; a "$" closer may open the next span
      i = kind == 1 ? close - 1 : close + closer.size() - 1;
      continue;
    }
    Span span{i + open, close, close + closer.size()};
    span.percent = percent_suffix(text, span.stop) > 0;
    span.open = i;
    spans.push_back(span);
    i = close + closer.size() - 1;
  }
  return spans;
}

// The last number of text (not glued to a letter before it: "AZYUK2A" holds none), with its
// sign, thousands separators ("1,000", "1 000"), decimals (".4", "2,74") and percent mark.
std::optional<Span> last_number(std::string_view text) {
  std::optional<Span> last;
  for (size_t i = 0; i < text.size(); ++i) {
    bool starts = is_digit(text[i]) || (text[i] == '.' && i + 1 < text.size() && is_digit(text[i + 1]));
    if (!starts) continue;
    if (i > 0 && (is_letter(text[i - 1]) || text[i - 1] == '_' || text[i - 1] == '\\')) {
      while (i + 1 < text.size() && (is_digit(text[i + 1]) || is_letter(text[i + 1]))) ++i;
      continue;
    }
    size_t begin = i > 0 && text[i - 1] == '-' ? i - 1 : i, j = i;
    while (j < text.size() && is_digit(text[j])) ++j;
    for (;;) {
      if (j + 1 < text.size() && text[j] == ',' && is_digit(text[j + 1])) {
        for (++j; j < text.size() && is_digit(text[j]);) ++j;
      } else if (j + 3 < text.size() && text[j] == ' ' && is_digit(text[j + 1]) && is_digit(text[j + 2]) &&
                 is_digit(text[j + 3]) && (j + 4 == text.size() || !is_digit(text[j + 4]))) {
        j += 4;
      } else {
        break;
      }
    }
    if (j + 1 < text.size() && text[j] == '.' && is_digit(text[j + 1]))
      for (++j; j < text.size() && is_digit(text[j]);) ++j;
    if (j + 1 < text.size() && text[j] == '/' && is_digit(text[j + 1]))  // a fraction "2/3"
      for (++j; j < text.size() && is_digit(text[j]);) ++j;
    Span span{begin, j, j};
    span.open = begin;
    span.percent = percent_suffix(text, j) > 0;
    last = span;
    i = j - 1;
  }
  return last;
}

// Items written side by side are one answer: true when `between` holds only separators
// (spaces, commas, semicolons, "and", "+", \quad, "$", math delimiters). Not "or": "\boxed{15
// \frac{39}{40}} or \boxed{\frac{639}{40}}" gives one answer twice, not a list.
bool only_separators(std::string_view between) {
  if (between.size() > 64) return false;
  std::string rest(between);
  for (std::string_view token : {"\\text{ and }", "\\text{and}", "\\qquad", "\\quad", "\\,", "\\ ", "\\(", "\\)",
                                 "\\[", "\\]", "and", "$", ",", ";", "+", "\n", " ", "\\"}) {
    for (size_t p = rest.find(token); p != std::string::npos; p = rest.find(token)) rest.erase(p, token.size());
  }
  return rest.empty();
}

// What was found, and where it ends in the text searched (to tell which came last).
struct Found {
  std::string text;
  size_t end = 0;
};

// The last item of `items`, joined (", ") with those right before it that only separators
// divide; the last item's percent mark is kept ("28 pct" -> "28\%").
Found joined_tail(std::string_view text, const std::vector<Span>& items) {
  size_t first = items.size() - 1;
  while (first > 0 && items[first - 1].stop <= items[first].open &&
         only_separators(text.substr(items[first - 1].stop, items[first].open - items[first - 1].stop)))
    --first;
  Found found;
  for (size_t k = first; k < items.size(); ++k) {
    if (k > first) found.text += ", ";
    found.text += trim(text.substr(items[k].begin, items[k].end - items[k].begin));
  }
  if (items.back().percent) found.text += "\\%";
  found.end = items.back().stop;
  return found;
}

// The boxes of text that are not inside another box, as spans.
std::vector<Span> outer_boxes(std::string_view text) {
  std::vector<Span> boxes;
  for_each_box(text, [&](size_t b, size_t e, size_t c) {
    if (boxes.empty() || c > boxes.back().end) {
      Span box{b, e, e + 1};
      box.open = c;
      boxes.push_back(box);
    }
  });
  return boxes;
}

std::optional<Found> last_joined_boxes(std::string_view text) {
  std::vector<Span> boxes = outer_boxes(text);
  if (boxes.empty()) return std::nullopt;
  return joined_tail(text, boxes);
}

// The later-ending of the last math spans (joined_tail) and, when numbers count, the last
// number of text.
std::optional<Found> last_math_or_number(std::string_view text, bool numbers) {
  std::vector<Span> spans = math_spans(text);
  std::optional<Span> number = numbers ? last_number(text) : std::nullopt;
  if (number && (spans.empty() || number->end > spans.back().stop)) {
    std::string value = trim(text.substr(number->begin, number->end - number->begin));
    return Found{number->percent ? value + "\\%" : value, number->end};
  }
  if (!spans.empty()) return joined_tail(text, spans);
  return std::nullopt;
}

// What follows the last "final answer is" (or a like phrase), up to the end of its sentence;
// Found::end is where the phrase starts.
std::optional<Found> after_final_answer_phrase(std::string_view text, bool numbers) {
  const std::string lowered = lower(text);
  size_t best = std::string::npos, best_end = 0;
  for (std::string_view phrase : {"final answer is", "final answer:", "the answer is", "answer is:"}) {
    size_t at = lowered.rfind(phrase);
    if (at != std::string::npos && (best == std::string::npos || at > best)) best = at, best_end = at + phrase.size();
  }
  if (best == std::string::npos) return std::nullopt;
  std::string_view rest = text.substr(best_end);
  rest = rest.substr(0, std::min<size_t>(rest.find('\n'), 2000));
  // The sentence ends at ". " outside math (an even number of $ before it).
  int dollars = 0;
  for (size_t i = 0; i + 1 < rest.size(); ++i) {
    if (rest[i] == '$' && (i == 0 || rest[i - 1] != '\\')) ++dollars;
    if (rest[i] == '.' && rest[i + 1] == ' ' && dollars % 2 == 0) {
      rest = rest.substr(0, i);
      break;
    }
  }
  auto found = last_math_or_number(rest, numbers);
  if (found) found->end = best;
  return found;
}

// The answer of a final-answer phrase that starts after text[from] (stated after the last
// box, so it is the answer given last), else nullopt. Only the tail is searched.
std::optional<std::string> phrase_after(std::string_view text, size_t from, bool numbers) {
  if (auto phrase = after_final_answer_phrase(text.substr(from), numbers)) return phrase->text;
  return std::nullopt;
}

// A short text with no math delimiters and no words ("\frac{10}{9}", "-3/4"): the answer is
// all of it (its last number would be a piece of it).
bool is_bare_math(std::string_view text) {
  if (text.size() > 1000 || text.find('$') != std::string_view::npos) return false;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == '\\') {
      while (i + 1 < text.size() && is_letter(text[i + 1])) ++i;  // a command name
    } else if (is_letter(text[i]) && is_letter(text[i + 1])) {
      return false;  // a word
    }
  }
  return true;
}

std::optional<std::string> lenient_fallback(std::string_view text, bool numbers) {
  if (auto after = after_final_answer_phrase(text, numbers)) return after->text;
  auto found = last_math_or_number(text, false);
  if (!found && is_bare_math(text)) return trim(text);
  if (numbers) found = last_math_or_number(text, true);
  if (found) return found->text;
  return std::nullopt;
}

}  // namespace

std::vector<std::string> extract_boxed(std::string_view text) {
  std::vector<std::string> boxes;
  for_each_box(text, [&](size_t b, size_t e, size_t) { boxes.push_back(trim(text.substr(b, e - b))); });
  return boxes;
}

std::optional<std::string> extract_last_boxed(std::string_view text) {
  size_t begin = 0, end = 0;
  bool any = false;
  for_each_box(text, [&](size_t b, size_t e, size_t) {
    begin = b, end = e;
    any = true;
  });
  if (!any) return std::nullopt;
  return trim(text.substr(begin, end - begin));
}

std::optional<std::string> extract_answer_tag(std::string_view text) {
  size_t open = text.rfind("<answer>");
  if (open == std::string_view::npos) return std::nullopt;
  size_t start = open + 8;
  size_t close = text.find("</answer>", start);
  if (close == std::string_view::npos) return std::nullopt;
  return trim(text.substr(start, close - start));
}

ExtractionMode parse_extraction_mode(std::string_view name, std::string_view what) {
  if (name == "strict") return ExtractionMode::strict;
  if (name == "lenient") return ExtractionMode::lenient;
  throw Error(std::string(what) + " must be \"strict\" or \"lenient\", got \"" + std::string(name) + "\"");
}

std::optional<std::string> extract_final_answer(std::string_view completion, ExtractionMode mode, bool numbers) {
  if (mode == ExtractionMode::strict) {
    if (auto tagged = extract_answer_tag(completion)) {
      if (auto box = extract_last_boxed(*tagged)) return box;
      return tagged;
    }
    return extract_last_boxed(completion);
  }
  std::string_view text = completion;
  auto tagged = extract_answer_tag(completion);
  if (tagged) text = *tagged;
  // A final-answer phrase after the last box is the answer stated last.
  auto box = last_joined_boxes(text);
  if (box) return phrase_after(text, box->end, numbers).value_or(box->text);
  if (tagged) return lenient_fallback(*tagged, numbers).value_or(*tagged);
  return lenient_fallback(completion, numbers);
}

std::optional<std::string> extract_lenient_fallback(std::string_view text, bool numbers) {
  return lenient_fallback(text, numbers);
}

std::string extract_gold_answer(std::string_view gold, ExtractionMode mode) {
  size_t hashes = gold.rfind("####");
  if (hashes != std::string_view::npos) return trim(gold.substr(hashes + 4));
  if (mode == ExtractionMode::strict) {
    if (auto boxed = extract_last_boxed(gold)) return *boxed;
    return trim(gold);
  }
  if (auto box = last_joined_boxes(gold)) return phrase_after(gold, box->end, true).value_or(box->text);
  if (auto phrase = after_final_answer_phrase(gold, true)) return phrase->text;
  if (auto math = last_math_or_number(gold, false)) return math->text;
  return trim(gold);
}

}  // namespace aha::reward
