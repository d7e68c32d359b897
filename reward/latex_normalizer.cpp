#include "reward/latex_normalizer.h"

#include <cctype>
#include <vector>

#include "reward/deadline.h"

namespace aha::reward {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Builds a new string rather than replacing in place (GCC 12 warns falsely about the latter).
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = s.find(from);
  if (pos == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t start = 0;
  for (; pos != std::string::npos; pos = s.find(from, start)) {
    out.append(s, start, pos - start);
    out.append(to);
    start = pos + from.size();
  }
  out.append(s, start, std::string::npos);
  s = std::move(out);
}

// Replaces the command \name (not a longer command such as \leftarrow for \left). Builds a
// new string: replacing in place would cost a copy of the tail per occurrence.
void replace_command(std::string& s, std::string_view name, std::string_view to) {
  size_t pos = s.find(name);
  if (pos == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t start = 0;
  for (; pos != std::string::npos; pos = s.find(name, pos)) {
    size_t end = pos + name.size();
    if (!(end < s.size() && is_alpha(s[end]) && is_alpha(name.back()))) {
      out.append(s, start, pos - start);
      out.append(to);
      start = end;
    }
    pos = end;
  }
  out.append(s, start, std::string::npos);
  s = std::move(out);
}

// For each '{' of s, the index of the '}' that closes it (plain brace counting), else npos;
// one pass, so that every later use of a group's extent is O(1).
std::vector<size_t> match_braces(const std::string& s) {
  std::vector<size_t> match(s.size(), std::string::npos), open;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '{') {
      open.push_back(i);
    } else if (s[i] == '}' && !open.empty()) {
      match[open.back()] = i;
      open.pop_back();
    }
  }
  return match;
}

void trim(std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  s = s.substr(b, e - b);
}

constexpr std::string_view kTextCommands[] = {"\\text",   "\\textrm",       "\\textbf",     "\\textit",
                                              "\\mathrm", "\\mathbf",       "\\mathit",     "\\mbox",
                                              "\\boxed",  "\\operatorname", "\\textnormal", "\\fbox"};

// "\\frac" (a JSON-escaped backslash doubled once more) -> "\frac": a doubled backslash before
// a letter, in an answer with no '&' (in a matrix, "\\" before a letter is a row break).
void undouble_backslashes(std::string& s) {
  if (s.find("\\\\") == std::string::npos || s.find('&') != std::string::npos ||
      s.find("begin{") != std::string::npos) {
    return;
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size() && s[i + 1] == '\\' && is_alpha(s[i + 2])) continue;
    out += s[i];
  }
  s = std::move(out);
}

// Relation symbols become ASCII (<= >= != < >), so that one spelling of each is compared.
void ascii_relations(std::string& s) {
  for (auto [from, to] : {std::pair{"\\leqslant", "<="}, {"\\geqslant", ">="}, {"\\leq", "<="}, {"\\geq", ">="},
                          {"\\le", "<="}, {"\\ge", ">="}, {"\\neq", "!="}, {"\\ne", "!="}, {"\\lt", "<"},
                          {"\\gt", ">"}}) {
    replace_command(s, from, to);
  }
  replace_all(s, "\u2264", "<=");
  replace_all(s, "\u2265", ">=");
  replace_all(s, "\u2260", "!=");
}

// A trailing percent word ("28 percent", "28 pct", "28 \\text{ percentage}"): removes it and
// returns true.
bool strip_percent_word(std::string& s) {
  for (std::string_view word : {"percentage", "percent", "pct"}) {
    size_t end = s.size();
    if (end > 0 && s[end - 1] == '}') --end;  // \text{ percent}
    if (end < word.size() || s.compare(end - word.size(), word.size(), word) != 0) continue;
    size_t begin = end - word.size();
    if (begin > 0 && is_alpha(s[begin - 1])) continue;
    if (end != s.size()) {  // the word closes a group: drop "\\text{ " as well
      size_t open = s.rfind('{', begin);
      if (open == std::string::npos) continue;
      begin = open;
      while (begin > 0 && is_alpha(s[begin - 1])) --begin;
      if (begin > 0 && s[begin - 1] == '\\') --begin;
    }
    s.resize(begin);
    trim(s);
    return !s.empty();
  }
  return false;
}

// Removes trailing unit groups: "15\mbox{ cm}^2" -> "15", "5.4 \text{ cents}" -> "5.4". Works
// on an end index (no copy per removed group): linear in the length.
void remove_trailing_units(std::string& s) {
  trim(s);
  size_t len = s.size();
  for (;;) {
    check_deadline();
    while (len > 0 && is_space(s[len - 1])) --len;
    size_t end = len;
    if (end >= 2 && s[end - 2] == '^' && (s[end - 1] == '2' || s[end - 1] == '3'))
      end -= 2;
    else if (end >= 4 && s.compare(end - 4, 2, "^{") == 0 && s[end - 1] == '}' &&
             (s[end - 2] == '2' || s[end - 2] == '3'))
      end -= 4;
    if (end == 0 || s[end - 1] != '}') break;
    // A unit group holds words only (letters, spaces, dots), so its '{' is the first other
    // character before the '}'.
    size_t open = end - 1;
    bool any_letter = false;
    while (open > 0 && (is_alpha(s[open - 1]) || is_space(s[open - 1]) || s[open - 1] == '.')) {
      --open;
      any_letter = any_letter || is_alpha(s[open]);
    }
    if (open == 0 || s[--open] != '{' || !any_letter) break;
    size_t pos = std::string::npos;
    for (auto command : kTextCommands)
      if (open >= command.size() && s.compare(open - command.size(), command.size(), command) == 0)
        pos = open - command.size();
    if (pos == std::string::npos || pos == 0) break;
    size_t before = pos;
    while (before > 0 && is_space(s[before - 1])) --before;
    if (before == 0) break;  // nothing precedes the unit: it is the answer
    len = before;
  }
  s.resize(len);
}

// \text{x} and the like become x, nested ones too: one pass that drops each command with its
// opening brace and marks its closing brace to be dropped.
void unwrap_text_commands(std::string& s) {
  if (s.find('\\') == std::string::npos) return;
  const std::vector<size_t> match = match_braces(s);
  std::vector<bool> dropped(s.size(), false);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (dropped[i]) continue;
    if (s[i] == '\\') {
      bool unwrapped = false;
      for (auto command : kTextCommands) {
        size_t open = i + command.size();
        if (open < s.size() && s[open] == '{' && match[open] != std::string::npos &&
            s.compare(i, command.size(), command) == 0) {
          dropped[match[open]] = true;
          i = open;
          unwrapped = true;
          break;
        }
      }
      if (unwrapped) continue;
    }
    out += s[i];
  }
  s = std::move(out);
}

// "1,234,567" / "-10,080.5" (separator ',') or "10 080" (' '): one number with thousands
// separators.
bool is_grouped_number(const std::string& s, char separator) {
  size_t i = (s.size() > 0 && s[0] == '-') ? 1 : 0;
  size_t lead = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++lead;
  if (lead < 1 || lead > 3 || s[i - lead] == '0') return false;  // "0,111" is a decimal comma
  bool any_group = false;
  while (i < s.size() && s[i] == separator) {
    for (int k = 1; k <= 3; ++k)
      if (i + k >= s.size() || !is_digit(s[i + k])) return false;
    i += 4;
    any_group = true;
  }
  if (!any_group) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size()) return false;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  return i == s.size();
}

}  // namespace

NormalisedAnswer normalise_latex(std::string_view answer) {
  check_deadline();
  NormalisedAnswer out;
  std::string s(answer);
  trim(s);
  // Delimiters and dollars (a "\$18.90" answer is the number 18.90).
  if (s.size() >= 4 && (s.compare(0, 2, "\\(") == 0 || s.compare(0, 2, "\\[") == 0) &&
      (s.compare(s.size() - 2, 2, "\\)") == 0 || s.compare(s.size() - 2, 2, "\\]") == 0)) {
    s = s.substr(2, s.size() - 4);
  }
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  undouble_backslashes(s);
  ascii_relations(s);
  // Thousands separators in braces: "14{,}916", "14 {, }916".
  replace_all(s, " {,}", ",");
  replace_all(s, " {, }", ",");
  replace_all(s, "{,}", ",");
  replace_all(s, "{, }", ",");
  // Unicode.
  replace_all(s, "\u2212", "-");
  replace_all(s, "\u221e", "\\infty ");
  replace_all(s, "\u03c0", "\\pi ");
  replace_all(s, "\u00b0", "");
  replace_all(s, "\u00d7", "*");
  replace_all(s, "\u00b7", "*");
  // Thousands separators written with a negative space: "10,\!080", "11,\! 111".
  if (s.find(",\\!") != std::string::npos) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 3, ",\\!") == 0) {
        out += ',';
        i += 3;
        while (i < s.size() && s[i] == ' ') ++i;
        --i;
      } else {
        out += s[i];
      }
    }
    s = std::move(out);
  }
  for (auto spacing : {"\\left", "\\right", "\\displaystyle", "\\qquad", "\\quad", "\\bigl", "\\bigr",
                       "\\Bigl", "\\Bigr", "\\big", "\\Big"}) {
    replace_command(s, spacing, "");
  }
  // Spacing commands \! \, \; \: "\ " and ~ become spaces; a row break \\ stays.
  {
    std::string spaced;
    spaced.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
        spaced += "\\\\";
        ++i;
      } else if (s[i] == '\\' && i + 1 < s.size() &&
                 std::string_view("!,;: ").find(s[i + 1]) != std::string_view::npos) {
        spaced += ' ';
        ++i;
      } else {
        spaced += s[i] == '~' ? ' ' : s[i];
      }
    }
    s = std::move(spaced);
  }
  check_deadline();
  replace_command(s, "\\dfrac", "\\frac");
  replace_command(s, "\\cfrac", "\\frac");
  replace_command(s, "\\tfrac", "\\frac");
  replace_command(s, "\\cdot", "*");
  replace_command(s, "\\times", "*");
  replace_command(s, "\\div", "/");
  replace_command(s, "\\lbrace", "\\{");
  replace_command(s, "\\rbrace", "\\}");
  for (auto degree : {"^{\\circ}", "^\\circ", "\\circ", "\\degree"}) replace_all(s, degree, "");
  replace_all(s, "\\%", "%");
  trim(s);
  while (!s.empty() && s.back() == '.') s.pop_back();
  trim(s);
  if (!s.empty() && s.back() == '%') {
    out.percent = true;
    s.pop_back();
  }
  if (strip_percent_word(s)) out.percent = true;
  remove_trailing_units(s);
  check_deadline();
  unwrap_text_commands(s);
  check_deadline();
  // "x \in [-2,7]" -> "[-2,7]".
  {
    size_t i = 0;
    while (i < s.size() && is_space(s[i])) ++i;
    if (i < s.size() && is_alpha(s[i])) {
      size_t j = i + 1;
      while (j < s.size() && is_space(s[j])) ++j;
      if (s.compare(j, 3, "\\in") == 0 && (j + 3 >= s.size() || !is_alpha(s[j + 3]))) s = s.substr(j + 3);
    }
  }
  // Whitespace runs become one space; "percent" written as a word was a unit and is gone.
  std::string compact;
  compact.reserve(s.size());
  for (char c : s) {
    if (is_space(c)) {
      if (!compact.empty() && compact.back() != ' ') compact += ' ';
    } else {
      compact += c;
    }
  }
  s = std::move(compact);
  trim(s);
  // Lists written in words or with semicolons: "1 and 2", "19, 46, and 82", "(0;-2;6)".
  replace_all(s, ", and ", ", ");
  replace_all(s, " and ", ", ");
  replace_all(s, ";", ",");
  replace_all(s, " or ", ", ");
  replace_all(s, ")or(", "),(");
  while (!s.empty() && s.back() == '.') s.pop_back();
  trim(s);
  if (!s.empty() && s.back() == '%') {  // "50 \text{%}" and the like
    out.percent = true;
    s.pop_back();
    trim(s);
  }
  // Wrapping braces: "{5}" -> "5", "{{ {5} }}" -> "5" (with the matches found once, so
  // that deep wrapping stays linear).
  if (s.size() >= 2 && s.front() == '{') {
    const std::vector<size_t> match = match_braces(s);
    size_t b = 0, e = s.size();
    while (e - b >= 2 && s[b] == '{' && match[b] == e - 1) {
      ++b, --e;
      while (b < e && is_space(s[b])) ++b;
      while (e > b && is_space(s[e - 1])) --e;
    }
    s = s.substr(b, e - b);
  }
  check_deadline();
  if (is_grouped_number(s, ',')) replace_all(s, ",", "");
  if (is_grouped_number(s, ' ')) replace_all(s, " ", "");
  // Base subscripts: 4210_{5} -> 4210_5.
  if (s.find("_{") != std::string::npos) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 2, "_{") == 0 && !out.empty() && std::isalnum(static_cast<unsigned char>(out.back()))) {
        size_t k = i + 2;
        while (k < s.size() && is_digit(s[k])) ++k;
        if (k > i + 2 && k < s.size() && s[k] == '}') {
          out += '_';
          out.append(s, i + 2, k - i - 2);
          i = k;
          continue;
        }
      }
      out += s[i];
    }
    s = std::move(out);
  }
  out.text = std::move(s);
  return out;
}

}  // namespace aha::reward
