#include "jinja/template.h"

#include <cmath>
#include <ctime>
#include <unordered_map>

#include "core/error.h"
#include "jinja/builtins.h"
#include "jinja/parser.h"

namespace aha::jinja {
namespace {

struct BreakLoop {};
struct ContinueLoop {};

class Renderer {
 public:
  Renderer(const std::string& name, const Dict& variables, const RenderOptions& options)
      : name_(name), options_(options) {
    // The globals, defined for "is defined" checks (Llama 3.2 asks "strftime_now is defined");
    // calls of them are dispatched by name in call().
    scopes_.emplace_back();
    for (const char* global : {"raise_exception", "strftime_now", "namespace"})
      scopes_.back()[global] = Value(std::string("<function ") + global + ">");
    scopes_.emplace_back();
    for (const auto& [key, value] : variables) scopes_.back()[key] = value;
  }

  std::string run(const Body& body) {
    render_body(body);
    return std::move(out_);
  }

 private:
  void render_body(const Body& body) {
    for (const auto& node : body) render_node(*node);
  }

  void render_node(const Node& node) {
    switch (node.type) {
      case Node::Type::Text: emit(node.text, node.line); return;
      case Node::Type::Output: emit(eval(*node.expr).str(), node.line); return;
      case Node::Type::If:
        for (const auto& [condition, body] : node.branches)
          if (eval(*condition).truthy()) return render_body(body);
        return render_body(node.else_body);
      case Node::Type::For: return render_for(node);
      case Node::Type::Set: return render_set(node);
      case Node::Type::Break: throw BreakLoop{};
      case Node::Type::Continue: throw ContinueLoop{};
    }
  }

  void render_for(const Node& node) {
    const List all = iterate(eval(*node.expr), where(node.line));
    List items;
    if (node.filter) {
      for (const Value& item : all) {
        Scope scope(*this);
        bind_targets(node, item);
        if (eval(*node.filter).truthy()) items.push_back(item);
      }
    } else {
      items = all;
    }
    if (items.empty()) return render_body(node.else_body);
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      if (++iterations_ > options_.limits.max_loop_iterations)
        fail(node.line, "more than " + std::to_string(options_.limits.max_loop_iterations) + " loop iterations");
      Scope scope(*this);
      Dict loop = {{"index", Value(i + 1)},          {"index0", Value(i)},
                   {"revindex", Value(n - i)},       {"revindex0", Value(n - i - 1)},
                   {"first", Value(i == 0)},         {"last", Value(i == n - 1)},
                   {"length", Value(n)},
                   {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value()},
                   {"nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value()}};
      scopes_.back()["loop"] = Value(std::move(loop));
      bind_targets(node, items[static_cast<size_t>(i)]);
      try {
        render_body(node.body);
      } catch (const ContinueLoop&) {
        continue;
      } catch (const BreakLoop&) {
        break;
      }
    }
  }

  void bind_targets(const Node& node, const Value& item) {
    if (node.targets.size() == 1) {
      scopes_.back()[node.targets[0]] = item;
      return;
    }
    const List parts = iterate(item, where(node.line));
    if (parts.size() != node.targets.size())
      fail(node.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                          std::to_string(node.targets.size()) + " loop variables");
    for (size_t i = 0; i < parts.size(); ++i) scopes_.back()[node.targets[i]] = parts[i];
  }

  void render_set(const Node& node) {
    Value value = eval(*node.expr);
    if (node.targets.size() == 1) {
      scopes_.back()[node.targets[0]] = std::move(value);
      return;
    }
    const Value target = lookup(node.targets[0]);
    if (target.kind() != Value::Kind::Namespace)
      fail(node.line, "cannot set attribute '" + node.targets[1] + "' of '" + node.targets[0] + "' (" +
                          target.type_name() + "): only namespace() objects take attributes");
    Dict& members = target.mutable_dict();
    for (auto& [key, member] : members)
      if (key == node.targets[1]) {
        member = std::move(value);
        return;
      }
    members.emplace_back(node.targets[1], std::move(value));
  }

  // --- expressions ---------------------------------------------------------------------------

  Value eval(const Expr& e) {
    switch (e.type) {
      case Expr::Type::Literal: return e.literal;
      case Expr::Type::Name: return lookup(e.name);
      case Expr::Type::List: {
        List items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return Value(std::move(items));
      }
      case Expr::Type::Dict: {
        Dict items;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value key = eval(*e.args[i]);
          if (!key.is_string()) fail(e.line, "dict keys must be strings, not " + key.type_name());
          bool replaced = false;
          for (auto& [k, v] : items)
            if (k == key.as_string()) v = eval(*e.args[i + 1]), replaced = true;
          if (!replaced) items.emplace_back(key.as_string(), eval(*e.args[i + 1]));
        }
        return Value(std::move(items));
      }
      case Expr::Type::Attr: {
        const Value object = eval(*e.args[0]);
        if (object.is_undefined()) fail(e.line, "'" + describe(*e.args[0]) + "' is undefined (reading ." + e.name + ")");
        const Value* member = object.find(e.name);
        return member ? *member : Value();
      }
      case Expr::Type::Item: return subscript(eval(*e.args[0]), eval(*e.args[1]), e);
      case Expr::Type::Slice: return slice(e);
      case Expr::Type::Call: return call(e);
      case Expr::Type::Filter: {
        const Value subject = eval(*e.args[0]);
        return apply_filter(e.name, subject, eval_args(e), eval_kwargs(e), where(e.line));
      }
      case Expr::Type::Test: {
        const Value subject = eval(*e.args[0]);
        return Value(apply_test(e.name, subject, eval_args(e), where(e.line)) != e.negated);
      }
      case Expr::Type::Unary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (v.kind() == Value::Kind::Int) return Value(e.name == "-" ? -v.as_int() : v.as_int());
        if (v.kind() == Value::Kind::Float) return Value(e.name == "-" ? -v.as_double() : v.as_double());
        fail(e.line, "bad operand type for unary " + e.name + ": " + v.type_name());
      }
      case Expr::Type::Binary: return binary(e);
      case Expr::Type::Cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
    }
    return Value();
  }

  Args eval_args(const Expr& e) {
    Args args;
    for (size_t i = 1; i < e.args.size(); ++i) args.push_back(eval(*e.args[i]));
    return args;
  }
  Kwargs eval_kwargs(const Expr& e) {
    Kwargs kwargs;
    for (const auto& [key, value] : e.kwargs) kwargs.emplace_back(key, eval(*value));
    return kwargs;
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    if (callee.type == Expr::Type::Attr) {
      const Value object = eval(*callee.args[0]);
      return call_method(object, callee.name, eval_args(e), eval_kwargs(e), where(e.line));
    }
    if (callee.type != Expr::Type::Name) fail(e.line, "only functions and methods can be called");
    const Args args = eval_args(e);
    const Kwargs kwargs = eval_kwargs(e);
    if (callee.name == "raise_exception") {
      if (args.size() != 1 || !kwargs.empty()) fail(e.line, "raise_exception takes one message");
      fail(e.line, "raise_exception: " + args[0].str());
    }
    if (callee.name == "strftime_now") {
      if (args.size() != 1 || !args[0].is_string() || !kwargs.empty()) fail(e.line, "strftime_now takes one format string");
      return Value(options_.strftime_now ? options_.strftime_now(args[0].as_string()) : strftime_now_local(args[0].as_string()));
    }
    if (callee.name == "namespace") {
      Dict members;
      for (const Value& a : args) {
        if (!a.is_mapping()) fail(e.line, "namespace() takes keyword arguments or a dict");
        for (const auto& member : a.as_dict()) members.push_back(member);
      }
      for (const auto& member : kwargs) members.push_back(member);
      return Value::namespace_of(std::move(members));
    }
    fail(e.line, "the function '" + callee.name + "' is not supported (supported: raise_exception, strftime_now, namespace)");
  }

  Value subscript(const Value& object, const Value& key, const Expr& e) {
    if (object.is_undefined()) fail(e.line, "'" + describe(*e.args[0]) + "' is undefined (subscripted)");
    if (object.is_mapping()) {
      if (!key.is_string()) return Value();
      const Value* member = object.find(key.as_string());
      return member ? *member : Value();
    }
    if (object.kind() == Value::Kind::List || object.is_string()) {
      if (key.kind() != Value::Kind::Int) return Value();
      if (object.kind() == Value::Kind::List) {
        const List& items = object.as_list();
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i < 0 || i >= static_cast<int64_t>(items.size())) return Value();
        return items[static_cast<size_t>(i)];
      }
      const std::u32string s = to_code_points(object.as_string());
      int64_t i = key.as_int();
      if (i < 0) i += static_cast<int64_t>(s.size());
      if (i < 0 || i >= static_cast<int64_t>(s.size())) return Value();
      return Value(to_utf8(s.substr(static_cast<size_t>(i), 1)));
    }
    return Value();
  }

  Value slice(const Expr& e) {
    const Value object = eval(*e.args[0]);
    int64_t bounds[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.args[static_cast<size_t>(k + 1)]) continue;
      const Value v = eval(*e.args[static_cast<size_t>(k + 1)]);
      if (v.is_none()) continue;
      if (v.kind() != Value::Kind::Int) fail(e.line, "slice indices must be integers, not " + v.type_name());
      bounds[k] = v.as_int();
      given[k] = true;
    }
    const int64_t step = bounds[2];
    if (step == 0) fail(e.line, "slice step cannot be zero");
    int64_t n;
    std::u32string text;
    if (object.is_string()) {
      text = to_code_points(object.as_string());
      n = static_cast<int64_t>(text.size());
    } else if (object.kind() == Value::Kind::List) {
      n = static_cast<int64_t>(object.as_list().size());
    } else {
      fail(e.line, "cannot slice " + object.type_name());
    }
    // Python's slice.indices()
    auto adjust = [&](int64_t v, bool is_given, int64_t fallback) {
      if (!is_given) return fallback;
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t start = adjust(bounds[0], given[0], step > 0 ? 0 : n - 1);
    const int64_t stop = adjust(bounds[1], given[1], step > 0 ? n : -1);
    List items;
    std::u32string chars;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (object.is_string()) chars += text[static_cast<size_t>(i)];
      else items.push_back(object.as_list()[static_cast<size_t>(i)]);
    }
    return object.is_string() ? Value(to_utf8(chars)) : Value(std::move(items));
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value left = eval(*e.args[0]);
      return left.truthy() ? eval(*e.args[1]) : left;
    }
    if (op == "or") {
      Value left = eval(*e.args[0]);
      return left.truthy() ? left : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]);
    const Value b = eval(*e.args[1]);
    using K = Value::Kind;
    if (op == "~") return checked(Value(a.str() + b.str()), e);
    if (op == "==") return Value(a == b);
    if (op == "!=") return Value(!(a == b));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) fail(e.line, "'in <string>' requires a string on the left, not " + a.type_name());
        found = b.as_string().find(a.as_string()) != std::string::npos;
      } else if (b.is_mapping()) {
        found = a.is_string() && b.find(a.as_string()) != nullptr;
      } else {
        for (const Value& item : iterate(b, where(e.line))) found = found || item == a;
      }
      return Value(found != (op == "not in"));
    }
    auto number = [](const Value& v) { return v.is_number() || v.kind() == K::Bool; };
    auto as_int = [](const Value& v) { return v.kind() == K::Bool ? int64_t{v.as_bool()} : v.as_int(); };
    auto as_double = [](const Value& v) { return v.kind() == K::Bool ? double{v.as_bool() ? 1.0 : 0.0} : v.as_double(); };
    const bool both_int = (a.kind() == K::Int || a.kind() == K::Bool) && (b.kind() == K::Int || b.kind() == K::Bool);
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      int order;
      if (number(a) && number(b)) {
        const double x = as_double(a), y = as_double(b);
        order = both_int ? (as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b)) : (x < y ? -1 : x > y);
      } else if (a.is_string() && b.is_string()) {
        order = a.as_string().compare(b.as_string());
        order = order < 0 ? -1 : order > 0;
      } else {
        fail(e.line, "'" + op + "' is not supported between " + a.type_name() + " and " + b.type_name());
      }
      if (op == "<") return Value(order < 0);
      if (op == "<=") return Value(order <= 0);
      if (op == ">") return Value(order > 0);
      return Value(order >= 0);
    }
    if (number(a) && number(b)) {
      if (op == "+") return both_int ? Value(as_int(a) + as_int(b)) : Value(as_double(a) + as_double(b));
      if (op == "-") return both_int ? Value(as_int(a) - as_int(b)) : Value(as_double(a) - as_double(b));
      if (op == "*") return both_int ? Value(as_int(a) * as_int(b)) : Value(as_double(a) * as_double(b));
      if (op == "/") {
        if (as_double(b) == 0) fail(e.line, "division by zero");
        return Value(as_double(a) / as_double(b));
      }
      if (op == "//" || op == "%") {
        if (as_double(b) == 0) fail(e.line, op == "%" ? "modulo by zero" : "division by zero");
        if (both_int) {
          const int64_t x = as_int(a), y = as_int(b);
          int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // Python floors
          return op == "//" ? Value(q) : Value(x - q * y);
        }
        const double x = as_double(a), y = as_double(b);
        const double q = std::floor(x / y);
        return op == "//" ? Value(q) : Value(x - q * y);
      }
      if (op == "**") {
        if (both_int && as_int(b) >= 0) {
          int64_t result = 1;
          for (int64_t i = 0; i < as_int(b); ++i) {
            if (std::abs(static_cast<double>(result) * static_cast<double>(as_int(a))) > 9.2e18)
              fail(e.line, "integer power overflows 64 bits");
            result *= as_int(a);
          }
          return Value(result);
        }
        return Value(std::pow(as_double(a), as_double(b)));
      }
    }
    if (op == "+" && a.is_string() && b.is_string()) return checked(Value(a.as_string() + b.as_string()), e);
    if (op == "+" && a.kind() == K::List && b.kind() == K::List) {
      List items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(items));
    }
    if (op == "*" && (a.is_string() || a.kind() == K::List) && b.kind() == K::Int) {
      const int64_t times = std::max<int64_t>(b.as_int(), 0);
      const size_t unit = a.is_string() ? a.as_string().size() : a.as_list().size();
      if (unit > 0 && static_cast<double>(unit) * static_cast<double>(times) > static_cast<double>(options_.limits.max_output_bytes))
        fail(e.line, "repetition result exceeds " + std::to_string(options_.limits.max_output_bytes) + " bytes");
      if (a.is_string()) {
        std::string s;
        for (int64_t i = 0; i < times; ++i) s += a.as_string();
        return Value(s);
      }
      List items;
      for (int64_t i = 0; i < times; ++i) items.insert(items.end(), a.as_list().begin(), a.as_list().end());
      return Value(std::move(items));
    }
    if (a.is_undefined() || b.is_undefined())
      fail(e.line, "'" + describe(*e.args[a.is_undefined() ? 0 : 1]) + "' is undefined (operand of '" + op + "')");
    fail(e.line, "unsupported operand types for " + op + ": " + a.type_name() + " and " + b.type_name());
  }

  Value checked(Value v, const Expr& e) {
    if (v.as_string().size() > options_.limits.max_output_bytes)
      fail(e.line, "a string exceeds " + std::to_string(options_.limits.max_output_bytes) + " bytes");
    return v;
  }

  // --- scopes, output and errors ----------------------------------------------------------------

  struct Scope {  // each loop iteration has its own variables, as in jinja2
    explicit Scope(Renderer& r) : renderer(r) { renderer.scopes_.emplace_back(); }
    ~Scope() { renderer.scopes_.pop_back(); }
    Renderer& renderer;
  };

  Value lookup(const std::string& name) const {
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend(); ++scope) {
      auto found = scope->find(name);
      if (found != scope->end()) return found->second;
    }
    return Value();
  }

  void emit(const std::string& text, int line) {
    if (out_.size() + text.size() > options_.limits.max_output_bytes)
      fail(line, "output exceeds " + std::to_string(options_.limits.max_output_bytes) + " bytes");
    out_ += text;
  }

  static std::string describe(const Expr& e) {
    if (e.type == Expr::Type::Name) return e.name;
    if (e.type == Expr::Type::Attr) return describe(*e.args[0]) + "." + e.name;
    return "value";
  }

  std::string where(int line) const { return name_ + " line " + std::to_string(line); }
  [[noreturn]] void fail(int line, const std::string& message) const { throw Error(where(line) + ": " + message); }

  const std::string& name_;
  const RenderOptions& options_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string out_;
  uint64_t iterations_ = 0;
};

}  // namespace

Template::Template(const std::string& source, std::string name)
    : name_(std::move(name)), body_(std::make_shared<Body>(parse_template(source, name_))) {}

std::string Template::render(const Dict& variables, const RenderOptions& options) const {
  return Renderer(name_, variables, options).run(*body_);
}

std::string strftime_now_local(const std::string& format) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[512];
  const size_t n = std::strftime(buffer, sizeof buffer, format.c_str(), &local);
  if (n == 0 && !format.empty()) throw Error("strftime_now: the format '" + format + "' gives no text or too much");
  return std::string(buffer, n);
}

}  // namespace aha::jinja
