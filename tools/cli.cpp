#include "tools/cli.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <sstream>

#include "core/error.h"

namespace aha::cli {

const char* const kExitStatusText =
    "exit status: 0 done, 1 error (bad input, a failed operation), 2 usage error (unknown command or\n"
    "option, missing or extra argument, bad option value), 3 internal error (a bug: please report it)\n";

namespace {

// "decode*" -> {"decode", '*'}; "json!" -> {"json", '!'}; "model" -> {"model", ' '}.
std::pair<std::string, char> name_and_kind(const std::string& spec_name) {
  const char last = spec_name.empty() ? ' ' : spec_name.back();
  if (last == '!' || last == '*') return {spec_name.substr(0, spec_name.size() - 1), last};
  return {spec_name, ' '};
}

bool is_help_word(const std::string& word) { return word == "--help" || word == "-h"; }

}  // namespace

bool wants_help(const std::vector<std::string>& words) {
  for (const auto& w : words)
    if (is_help_word(w)) return true;
  return false;
}

std::string help_text(const std::string& command, const Spec& spec) {
  std::string out = "usage: aha " + command + (spec.usage.empty() ? "" : " " + spec.usage) + "\n";
  if (!spec.description.empty()) out += "\n" + spec.description + "\n";
  std::vector<std::pair<std::string, std::string>> rows;  // "--name VALUE", meaning (default)
  for (const auto& o : spec.options) {
    const auto [name, kind] = name_and_kind(o.name);
    std::string left = (o.alias.empty() ? "" : o.alias + ", ") + "--" + name;
    if (kind != '!') left += " " + (o.value.empty() ? std::string("VALUE") : o.value) + (kind == '*' ? "..." : "");
    std::string right = o.help;
    if (!o.fallback.empty()) right += o.fallback == "required" ? " (required)" : " (default: " + o.fallback + ")";
    rows.emplace_back(left, right);
  }
  rows.emplace_back("-h, --help", "print this help and exit");
  size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  out += "\noptions:\n";
  for (const auto& [left, right] : rows) out += "  " + left + std::string(width - left.size() + 2, ' ') + right + "\n";
  if (!spec.examples.empty()) {
    out += "\nexamples:\n";
    for (const auto& e : spec.examples) out += "  " + e + "\n";
  }
  return out + "\n" + kExitStatusText;
}

std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      ids.push_back(v);
    } catch (const std::exception&) {
      throw UsageError("--" + option + " must be comma-separated non-negative integers, got '" + item + "'");
    }
  }
  if (ids.empty()) throw UsageError("--" + option + " is empty");
  return ids;
}

std::set<std::string> parse_name_list(const std::string& text, const std::string& option,
                                      const std::vector<std::string>& known) {
  std::set<std::string> names;
  // Every comma-separated field, the empty ones (",a", "a,", "") included: they are unknown names.
  for (size_t begin = 0;;) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string name = text.substr(begin, end - begin);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw UsageError("--" + option + ": unknown name '" + name + "' (known: " + list + ")");
    }
    names.insert(name);
    if (end == text.size()) return names;
    begin = end + 1;
  }
}

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

Args::Args(const std::vector<std::string>& words, const Spec& spec, const std::string& command)
    : command_(command), help_(wants_help(words)) {
  std::map<std::string, char> kinds;  // ' ' value, '!' switch, '*' list
  std::map<std::string, std::string> aliases;  // "-n" -> "--n"
  for (const auto& o : spec.options) {
    kinds.insert(name_and_kind(o.name));
    if (!o.alias.empty()) aliases[o.alias] = "--" + name_and_kind(o.name).first;
  }
  const size_t max_positional = spec.max_positional;
  for (size_t i = 0; i < words.size(); ++i) {
    const auto alias = aliases.find(words[i]);
    const std::string& w = alias == aliases.end() ? words[i] : alias->second;
    if (is_help_word(w)) continue;
    if (w.rfind("--", 0) != 0 || w.size() == 2) {
      positional_.push_back(w);
      continue;
    }
    std::string name = w.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = kinds.find(name);
    if (it == kinds.end()) {
      std::string known;
      for (const auto& [k, kind] : kinds) known += (known.empty() ? "--" : ", --") + k;
      throw UsageError("aha " + command_ + ": unknown option --" + name +
                       (known.empty() ? "" : "; options are: " + known));
    }
    auto& slot = values_[name];
    if (it->second == '!') {
      slot.push_back("1");
    } else if (inline_value) {
      slot.push_back(*inline_value);
    } else if (it->second == '*') {
      while (i + 1 < words.size() && words[i + 1].rfind("--", 0) != 0 && !is_help_word(words[i + 1])) slot.push_back(words[++i]);
    } else {
      if (i + 1 >= words.size()) {
        if (help_) break;  // `aha CMD --out --help`: the help, not this error, was asked for
        throw UsageError("aha " + command_ + ": option --" + name + " needs a value");
      }
      slot.push_back(words[++i]);
    }
  }
  if (positional_.size() > max_positional && !help_) {
    std::string extra;
    for (size_t i = max_positional; i < positional_.size(); ++i) extra += (extra.empty() ? "'" : ", '") + positional_[i] + "'";
    const size_t count = positional_.size() - max_positional;
    throw UsageError("aha " + command_ + ": unexpected argument" + (count > 1 ? "s " : " ") + extra +
                (max_positional == 0 ? " (this command takes options only)"
                                     : " (it takes at most " + std::to_string(max_positional) + ")"));
  }
}

bool Args::flag(const std::string& name) const { return values_.count(name) > 0; }

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

std::string Args::required(const std::string& name) const {
  auto v = get(name);
  if (!v) throw UsageError("aha " + command_ + ": missing required option --" + name);
  return *v;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t min, int64_t max) const {
  auto v = get(name);
  if (!v) return fallback;
  const bool full_range = min == INT64_MIN && max == INT64_MAX;
  const std::string range = full_range ? std::string("a 64-bit integer")
                            : max == INT64_MAX ? "an integer >= " + std::to_string(min)
                                               : "an integer in " + std::to_string(min) + ".." + std::to_string(max);
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec == std::errc::invalid_argument || ptr != v->data() + v->size()) {
    throw UsageError("aha " + command_ + ": --" + name + " must be " + range + ", got '" + *v + "'");
  }
  if (ec == std::errc::result_out_of_range || out < min || out > max) {
    throw UsageError("aha " + command_ + ": --" + name + " " + *v + " is out of range: it must be " + range);
  }
  return out;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    double out = std::stod(*v, &used);
    if (used == v->size()) return out;
  } catch (const std::exception&) {
  }
  throw UsageError("aha " + command_ + ": --" + name + " must be a number, got '" + *v + "'");
}

std::vector<std::string> Args::list(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::positional(size_t index, const std::string& what) const {
  if (index >= positional_.size()) throw UsageError("aha " + command_ + ": missing " + what);
  return positional_[index];
}

}  // namespace aha::cli
