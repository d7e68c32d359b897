#include "jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"
#include "jinja/python_str.h"

namespace aha::jinja {
namespace {

// Positional argument i, else keyword `name`, else undefined.
Value arg(const Args& args, const Kwargs& kwargs, size_t i, const char* name) {
  if (i < args.size()) return args[i];
  for (const auto& [key, value] : kwargs)
    if (key == name) return value;
  return Value();
}

void check_arity(const std::string& what, const Args& args, const Kwargs& kwargs, size_t max,
                 std::initializer_list<const char*> keywords, const std::string& where) {
  if (args.size() > max)
    throw Error(where + ": " + what + " takes at most " + std::to_string(max) + " arguments, " +
                std::to_string(args.size()) + " given");
  for (const auto& [key, value] : kwargs) {
    bool known = false;
    for (const char* k : keywords) known = known || key == k;
    if (!known) throw Error(where + ": " + what + " has no argument named '" + key + "'");
  }
}

Value length_of(const Value& v, const std::string& where) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return Value(int64_t{0});
    case Value::Kind::String: return Value(static_cast<int64_t>(to_code_points(v.as_string()).size()));
    case Value::Kind::List: return Value(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::Dict: return Value(static_cast<int64_t>(v.as_dict().size()));
    default: throw Error(where + ": object of type " + v.type_name() + " has no length");
  }
}

// The attribute of an item as jinja's selectattr/map read it (dotted paths allowed).
Value attribute_of(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const Value* member = current.find(key);
    current = member ? *member : Value();
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

Value select(const Value& subject, const Args& args, bool by_attribute, bool keep, const std::string& what,
             const std::string& where) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.empty()) throw Error(where + ": " + what + " needs an attribute name");
    attribute = require_string(args[next++], what + "'s attribute", where);
  }
  std::string test = "truthy";
  if (next < args.size()) test = require_string(args[next++], what + "'s test", where);
  if (test != "truthy" && !is_known_test(test)) throw Error(where + ": " + what + ": the test '" + test + "' is not supported");
  const Args test_args(args.begin() + static_cast<std::ptrdiff_t>(std::min(next, args.size())), args.end());
  List out;
  for (const Value& item : iterate(subject, where)) {
    const Value probe = by_attribute ? attribute_of(item, attribute) : item;
    const bool passes = test == "truthy" ? probe.truthy() : apply_test(test, probe, test_args, where);
    if (passes == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

List dict_items(const Value& v) {
  List out;
  for (const auto& [key, value] : v.as_dict()) out.push_back(Value::tuple(List{Value(key), value}));
  return out;
}

}  // namespace

List iterate(const Value& value, const std::string& where) {
  switch (value.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return value.as_list();
    case Value::Kind::Dict: {
      List keys;
      for (const auto& [key, item] : value.as_dict()) keys.push_back(Value(key));
      return keys;
    }
    case Value::Kind::String: {
      List chars;
      for (char32_t c : to_code_points(value.as_string())) chars.push_back(Value(to_utf8(std::u32string(1, c))));
      return chars;
    }
    default: throw Error(where + ": " + value.type_name() + " is not iterable");
  }
}

bool is_known_filter(const std::string& name) {
  static const char* const kFilters[] = {
      "trim",   "tojson", "length", "count",   "default",   "d",          "upper",  "lower",  "first",
      "last",   "join",   "replace", "string", "int",       "float",      "list",   "items",  "selectattr",
      "rejectattr", "select", "reject", "map", "capitalize", "title", "abs", "reverse", "safe"};
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

bool is_known_test(const std::string& name) {
  static const char* const kTests[] = {"defined", "undefined", "none",  "string",  "mapping", "iterable",
                                       "sequence", "number",   "integer", "float", "boolean", "true",
                                       "false",    "equalto",  "eq",     "ne",      "sameas",  "odd",
                                       "even",     "divisibleby", "lower", "upper", "in"};
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

Value apply_filter(const std::string& name, const Value& subject, const Args& args, const Kwargs& kwargs,
                   const std::string& where_) {
  const std::string where = where_ + ": filter '" + name + "'";
  if (name == "trim") {
    check_arity(name, args, kwargs, 1, {"chars"}, where);
    return Value(strip(subject.str(), arg(args, kwargs, 0, "chars"), true, true, where));
  }
  if (name == "tojson") {
    check_arity(name, args, kwargs, 0, {"indent", "ensure_ascii", "sort_keys", "separators"}, where);
    for (const auto& [key, value] : kwargs)
      if (key != "indent" && !(key == "ensure_ascii" && value.kind() == Value::Kind::Bool && !value.as_bool()))
        throw Error(where + ": only the indent argument is supported");
    const Value indent = arg(args, kwargs, 99, "indent");
    return Value(subject.to_json(indent.is_undefined() || indent.is_none() ? -1 : static_cast<int>(require_int(indent, "indent", where))));
  }
  if (name == "length" || name == "count") {
    check_arity(name, args, kwargs, 0, {}, where);
    return length_of(subject, where);
  }
  if (name == "default" || name == "d") {
    check_arity(name, args, kwargs, 2, {"default_value", "boolean"}, where);
    const Value fallback = arg(args, kwargs, 0, "default_value");
    const bool boolean = arg(args, kwargs, 1, "boolean").truthy();
    if (subject.is_undefined() || (boolean && !subject.truthy())) return fallback.is_undefined() ? Value("") : fallback;
    return subject;
  }
  if (name == "upper" || name == "lower") {
    check_arity(name, args, kwargs, 0, {}, where);
    return Value(change_case(subject.str(), name == "upper"));
  }
  if (name == "capitalize" || name == "title") {
    check_arity(name, args, kwargs, 0, {}, where);
    std::string s = change_case(subject.str(), false);
    bool start = true;
    for (char& c : s) {
      if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      start = name == "title" ? !std::isalnum(static_cast<unsigned char>(c)) : false;
    }
    return Value(s);
  }
  if (name == "first" || name == "last") {
    check_arity(name, args, kwargs, 0, {}, where);
    const List items = iterate(subject, where);
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    check_arity(name, args, kwargs, 0, {}, where);
    if (subject.is_string()) {
      std::u32string s = to_code_points(subject.as_string());
      std::reverse(s.begin(), s.end());
      return Value(to_utf8(s));
    }
    List items = iterate(subject, where);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "join") {
    check_arity(name, args, kwargs, 2, {"d", "attribute"}, where);
    const Value separator = arg(args, kwargs, 0, "d");
    const Value attribute = arg(args, kwargs, 1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(subject, where)) {
      if (!first) out += separator.str();
      first = false;
      out += (attribute.is_undefined() ? item : attribute_of(item, attribute.str())).str();
    }
    return Value(out);
  }
  if (name == "replace") {
    check_arity(name, args, kwargs, 3, {"old", "new", "count"}, where);
    const Value count = arg(args, kwargs, 2, "count");
    return Value(replace(subject.str(), require_string(arg(args, kwargs, 0, "old"), "old", where),
                         require_string(arg(args, kwargs, 1, "new"), "new", where),
                         count.is_undefined() || count.is_none() ? -1 : require_int(count, "count", where)));
  }
  if (name == "string" || name == "safe") {
    check_arity(name, args, kwargs, 0, {}, where);
    return Value(subject.str());
  }
  if (name == "int") {
    check_arity(name, args, kwargs, 1, {"default"}, where);
    const Value fallback = arg(args, kwargs, 0, "default");
    if (subject.kind() == Value::Kind::Int) return subject;
    if (subject.kind() == Value::Kind::Bool) return Value(static_cast<int64_t>(subject.as_bool()));
    if (subject.kind() == Value::Kind::Float) return Value(static_cast<int64_t>(std::trunc(subject.as_double())));
    if (subject.is_string()) {
      try {
        size_t used = 0;
        const std::string text = strip(subject.as_string(), Value(), true, true, where);
        const int64_t v = std::stoll(text, &used);
        if (used == text.size()) return Value(v);
      } catch (const std::exception&) {
      }
    }
    return fallback.is_undefined() ? Value(int64_t{0}) : fallback;
  }
  if (name == "float") {
    check_arity(name, args, kwargs, 1, {"default"}, where);
    if (subject.is_number()) return Value(subject.as_double());
    if (subject.is_string()) {
      try {
        size_t used = 0;
        const std::string text = strip(subject.as_string(), Value(), true, true, where);
        const double v = std::stod(text, &used);
        if (used == text.size()) return Value(v);
      } catch (const std::exception&) {
      }
    }
    const Value fallback = arg(args, kwargs, 0, "default");
    return fallback.is_undefined() ? Value(0.0) : fallback;
  }
  if (name == "abs") {
    check_arity(name, args, kwargs, 0, {}, where);
    if (subject.kind() == Value::Kind::Int) return Value(subject.as_int() < 0 ? -subject.as_int() : subject.as_int());
    if (subject.is_number()) return Value(std::fabs(subject.as_double()));
    throw Error(where + ": expected a number, not " + subject.type_name());
  }
  if (name == "list") {
    check_arity(name, args, kwargs, 0, {}, where);
    return Value(iterate(subject, where));
  }
  if (name == "items") {
    check_arity(name, args, kwargs, 0, {}, where);
    if (subject.is_undefined()) return Value(List{});
    if (!subject.is_mapping()) throw Error(where + ": expected a mapping, not " + subject.type_name());
    return Value(dict_items(subject));
  }
  if (name == "selectattr" || name == "rejectattr") {
    if (!kwargs.empty()) throw Error(where + ": keyword arguments are not supported");
    return select(subject, args, true, name == "selectattr", name, where);
  }
  if (name == "select" || name == "reject") {
    if (!kwargs.empty()) throw Error(where + ": keyword arguments are not supported");
    return select(subject, args, false, name == "select", name, where);
  }
  if (name == "map") {
    check_arity(name, args, kwargs, 0, {"attribute", "default"}, where);
    const Value attribute = arg(args, kwargs, 99, "attribute");
    if (attribute.is_undefined()) throw Error(where + ": only map(attribute=...) is supported");
    const Value fallback = arg(args, kwargs, 99, "default");
    List out;
    for (const Value& item : iterate(subject, where)) {
      Value v = attribute_of(item, attribute.str());
      out.push_back(v.is_undefined() && !fallback.is_undefined() ? fallback : v);
    }
    return Value(std::move(out));
  }
  throw Error(where + ": not supported");
}

bool apply_test(const std::string& name, const Value& v, const Args& args, const std::string& where_) {
  const std::string where = where_ + ": test '" + name + "'";
  using K = Value::Kind;
  auto need = [&](size_t n) {
    if (args.size() != n)
      throw Error(where + ": takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s") + ", " +
                  std::to_string(args.size()) + " given");
  };
  if (name == "defined" || name == "undefined") {
    need(0);
    return v.is_undefined() == (name == "undefined");
  }
  if (name == "none") return need(0), v.is_none();
  if (name == "string") return need(0), v.is_string();
  if (name == "mapping") return need(0), v.kind() == K::Dict;
  if (name == "iterable") return need(0), v.is_undefined() || v.is_string() || v.kind() == K::List || v.kind() == K::Dict;
  if (name == "sequence") return need(0), v.is_string() || v.kind() == K::List || v.kind() == K::Dict;
  if (name == "number") return need(0), v.is_number() || v.kind() == K::Bool;
  if (name == "integer") return need(0), v.kind() == K::Int;
  if (name == "float") return need(0), v.kind() == K::Float;
  if (name == "boolean") return need(0), v.kind() == K::Bool;
  if (name == "true") return need(0), v.kind() == K::Bool && v.as_bool();
  if (name == "false") return need(0), v.kind() == K::Bool && !v.as_bool();
  if (name == "lower" || name == "upper") return need(0), v.is_string() && change_case(v.as_string(), name == "upper") == v.as_string();
  if (name == "equalto" || name == "eq") return need(1), v == args[0];
  if (name == "ne") return need(1), !(v == args[0]);
  if (name == "sameas") {
    need(1);
    const Value& o = args[0];
    if (v.kind() != o.kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.kind() == K::Bool) return v.as_bool() == o.as_bool();
    if (v.is_mapping()) return &v.as_dict() == &o.as_dict();
    if (v.kind() == K::List) return &v.as_list() == &o.as_list();
    return false;  // Python "is" on equal strings and numbers is an accident of interning
  }
  if (name == "odd" || name == "even") {
    need(0);
    const int64_t i = require_int(v, "the value", where);
    return (((i % 2) + 2) % 2 == 1) == (name == "odd");
  }
  if (name == "divisibleby") {
    need(1);
    const int64_t d = require_int(args[0], "the divisor", where);
    if (d == 0) throw Error(where + ": division by zero");
    return require_int(v, "the value", where) % d == 0;
  }
  if (name == "in") {
    need(1);
    const Value& container = args[0];
    if (container.is_string()) return container.as_string().find(require_string(v, "the value", where)) != std::string::npos;
    for (const Value& item : iterate(container, where))
      if (item == v) return true;
    return false;
  }
  throw Error(where + ": not supported");
}

Value call_method(const Value& object, const std::string& name, const Args& args, const Kwargs& kwargs,
                  const std::string& where_) {
  const std::string where = where_ + ": " + object.type_name() + "." + name + "()";
  if (object.is_string()) {
    const std::string& s = object.as_string();
    if (name == "startswith" || name == "endswith") {
      check_arity(name, args, kwargs, 1, {}, where);
      const Value& affix = arg(args, kwargs, 0, "");
      List candidates = affix.kind() == Value::Kind::List ? affix.as_list() : List{affix};
      for (const Value& c : candidates) {
        const std::string a = require_string(c, "the argument", where);
        if (a.size() <= s.size() && (name == "startswith" ? s.compare(0, a.size(), a) == 0
                                                         : s.compare(s.size() - a.size(), a.size(), a) == 0))
          return Value(true);
      }
      return Value(false);
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      check_arity(name, args, kwargs, 1, {}, where);
      return Value(strip(s, arg(args, kwargs, 0, ""), name != "rstrip", name != "lstrip", where));
    }
    if (name == "split") {
      check_arity(name, args, kwargs, 2, {"sep", "maxsplit"}, where);
      const Value max_split = arg(args, kwargs, 1, "maxsplit");
      List out;
      for (auto& part : split(s, arg(args, kwargs, 0, "sep"), max_split.is_undefined() ? -1 : require_int(max_split, "maxsplit", where), where))
        out.push_back(Value(std::move(part)));
      return Value(std::move(out));
    }
    if (name == "replace") {
      check_arity(name, args, kwargs, 3, {}, where);
      const Value count = arg(args, kwargs, 2, "count");
      return Value(replace(s, require_string(arg(args, kwargs, 0, ""), "old", where),
                           require_string(arg(args, kwargs, 1, ""), "new", where),
                           count.is_undefined() ? -1 : require_int(count, "count", where)));
    }
    if (name == "upper" || name == "lower") {
      check_arity(name, args, kwargs, 0, {}, where);
      return Value(change_case(s, name == "upper"));
    }
    if (name == "title" || name == "capitalize") return apply_filter(name, object, args, kwargs, where_);
    if (name == "find") {
      check_arity(name, args, kwargs, 1, {}, where);
      const size_t at = s.find(require_string(arg(args, kwargs, 0, ""), "the argument", where));
      if (at == std::string::npos) return Value(int64_t{-1});
      return Value(static_cast<int64_t>(to_code_points(s.substr(0, at)).size()));
    }
  } else if (object.kind() == Value::Kind::Dict) {
    if (name == "items") {
      check_arity(name, args, kwargs, 0, {}, where);
      return Value(dict_items(object));
    }
    if (name == "keys" || name == "values") {
      check_arity(name, args, kwargs, 0, {}, where);
      List out;
      for (const auto& [key, value] : object.as_dict()) out.push_back(name == "keys" ? Value(key) : value);
      return Value(std::move(out));
    }
    if (name == "get") {
      check_arity(name, args, kwargs, 2, {}, where);
      const Value* member = object.find(require_string(arg(args, kwargs, 0, ""), "the key", where));
      if (member) return *member;
      const Value fallback = arg(args, kwargs, 1, "");
      return fallback.is_undefined() ? Value::none() : fallback;
    }
  } else if (object.is_undefined()) {
    throw Error(where_ + ": cannot call ." + name + "() on an undefined value");
  }
  throw Error(where + ": this method is not supported");
}

}  // namespace aha::jinja
