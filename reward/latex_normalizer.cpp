#include "reward/latex_normalizer.h"

#include <cctype>

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

// Replaces the command \name (not a longer command such as \leftarrow for \left).
void replace_command(std::string& s, std::string_view name, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(name, pos)) != std::string::npos) {
    size_t end = pos + name.size();
    if (end < s.size() && is_alpha(s[end]) && is_alpha(name.back())) {
      pos = end;
      continue;
    }
    s.replace(pos, name.size(), to);
    pos += to.size();
  }
}

// The index just after the brace group that opens at s[open] ('{'), or npos.
size_t skip_group(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string::npos;
}

void trim(std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  s = s.substr(b, e - b);
}

constexpr std::string_view kTextCommands[] = {"\\text",   "\\textrm",       "\\textbf",
                                              "\\textit", "\\mathrm",       "\\mathbf",
                                              "\\mbox",   "\\operatorname", "\\textnormal"};

// Removes trailing unit groups: "15\mbox{ cm}^2" -> "15", "5.4 \text{ cents}" -> "5.4".
void remove_trailing_units(std::string& s) {
  for (;;) {
    trim(s);
    size_t end = s.size();
    if (end >= 2 && s[end - 2] == '^' && (s[end - 1] == '2' || s[end - 1] == '3'))
      end -= 2;
    else if (end >= 4 && s.compare(end - 4, 2, "^{") == 0 && s[end - 1] == '}' &&
             (s[end - 2] == '2' || s[end - 2] == '3'))
      end -= 4;
    if (end == 0 || s[end - 1] != '}') return;
    // Find the command whose group ends at end-1.
    bool removed = false;
    for (auto command : kTextCommands) {
      size_t pos = s.rfind(std::string(command) + "{");
      if (pos == std::string::npos || pos == 0) continue;
      size_t open = pos + command.size();
      if (skip_group(s, open) != end) continue;
      std::string_view content(s.data() + open + 1, end - open - 2);
      bool words = !content.empty();
      bool any_letter = false;
      for (char c : content) {
        if (is_alpha(c))
          any_letter = true;
        else if (!is_space(c) && c != '.')
          words = false;
      }
      std::string before = s.substr(0, pos);
      trim(before);
      if (!words || !any_letter || before.empty()) return;
      s = before;
      removed = true;
      break;
    }
    if (!removed) return;
  }
}

void unwrap_text_commands(std::string& s) {
  for (auto command : kTextCommands) {
    size_t pos = 0;
    std::string opener = std::string(command) + "{";
    while ((pos = s.find(opener, pos)) != std::string::npos) {
      size_t open = pos + command.size();
      size_t close = skip_group(s, open);
      if (close == std::string::npos) break;
      std::string content = s.substr(open + 1, close - open - 2);
      s.replace(pos, close - pos, content);
    }
  }
}

// "1,234,567" / "-10,080.5" (separator ',') or "10 080" (' '): one number with thousands
// separators.
bool is_grouped_number(const std::string& s, char separator) {
  size_t i = (s.size() > 0 && s[0] == '-') ? 1 : 0;
  size_t lead = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++lead;
  if (lead < 1 || lead > 3) return false;
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
  replace_command(s, "\\dfrac", "\\frac");
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
  remove_trailing_units(s);
  unwrap_text_commands(s);
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
  while (!s.empty() && s.back() == '.') s.pop_back();
  trim(s);
  if (!s.empty() && s.back() == '%') {  // "50 \text{%}" and the like
    out.percent = true;
    s.pop_back();
    trim(s);
  }
  // Wrapping braces: "{5}" -> "5".
  while (s.size() >= 2 && s.front() == '{' && skip_group(s, 0) == s.size()) {
    s = s.substr(1, s.size() - 2);
    trim(s);
  }
  if (is_grouped_number(s, ',')) replace_all(s, ",", "");
  if (is_grouped_number(s, ' ')) replace_all(s, " ", "");
  // Base subscripts: 4210_{5} -> 4210_5.
  for (size_t pos = 0; (pos = s.find("_{", pos)) != std::string::npos; ++pos) {
    size_t close = s.find('}', pos);
    bool digits = close != std::string::npos && close > pos + 2;
    for (size_t k = pos + 2; digits && k < close; ++k) digits = is_digit(s[k]);
    if (digits && pos > 0 && std::isalnum(static_cast<unsigned char>(s[pos - 1]))) {
      s = s.substr(0, pos + 1) + s.substr(pos + 2, close - pos - 2) + s.substr(close + 1);
    }
  }
  out.text = std::move(s);
  return out;
}

}  // namespace aha::reward
