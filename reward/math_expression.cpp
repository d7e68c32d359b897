#include "reward/math_expression.h"

#include <cmath>
#include <numbers>

#include "reward/deadline.h"

namespace aha::reward {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

using Function = MathExpression::Function;

struct NamedFunction {
  std::string_view name;
  int id;
};
constexpr NamedFunction kFunctions[] = {
    {"sin", Function::kSin},       {"cos", Function::kCos},       {"tan", Function::kTan},
    {"cot", Function::kCot},       {"sec", Function::kSec},       {"csc", Function::kCsc},
    {"ln", Function::kLn},         {"log", Function::kLn},        {"exp", Function::kExp},
    {"arcsin", Function::kArcsin}, {"arccos", Function::kArccos}, {"arctan", Function::kArctan}};

constexpr std::string_view kGreek[] = {
    "alpha",  "beta",  "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",  "iota", "kappa",
    "lambda", "mu",    "nu",    "xi",    "rho",     "sigma",      "tau",  "phi", "varphi", "chi",  "psi",
    "omega",  "Gamma", "Delta", "Theta", "Lambda",  "Sigma",      "Phi",  "Psi", "Omega"};

}  // namespace

// Recursive descent over the normalised text; every method returns a node index or -1.
class ExpressionParser {
 public:
  using Node = MathExpression::Node;
  using Op = MathExpression::Op;

  ExpressionParser(std::string_view text, MathExpression& out) : s_(text), e_(out) {}

  bool run() {
    int root = expression();
    skip();
    if (root < 0 || pos_ != s_.size()) return false;
    e_.root_ = root;
    return true;
  }

 private:
  void skip() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  char peek() {
    skip();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  static Node make_node(Op op) {
    Node n;
    n.op = op;
    return n;
  }
  int add(Node node) {
    if (e_.nodes_.size() >= MathExpression::kMaxNodes) return -1;
    e_.nodes_.push_back(node);
    return static_cast<int>(e_.nodes_.size()) - 1;
  }
  int binary(Op op, int a, int b) {
    if (a < 0 || b < 0) return -1;
    Node n = make_node(op);
    n.a = a;
    n.b = b;
    return add(n);
  }
  int unary_node(Op op, int a, int index = 0) {
    if (a < 0) return -1;
    Node n = make_node(op);
    n.a = a;
    n.index = index;
    return add(n);
  }
  int variable(const std::string& name) {
    int index = -1;
    for (size_t i = 0; i < e_.variables_.size(); ++i)
      if (e_.variables_[i] == name) index = static_cast<int>(i);
    if (index < 0) {
      index = static_cast<int>(e_.variables_.size());
      e_.variables_.push_back(name);
    }
    Node n = make_node(Op::variable);
    n.index = index;
    return add(n);
  }
  // A command name after '\' (letters only); pos_ is left after it.
  std::string_view command() {
    size_t start = pos_;
    while (pos_ < s_.size() && is_letter(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  int expression() {
    int left = term();
    for (;;) {
      char c = peek();
      if (c != '+' && c != '-') return left;
      ++pos_;
      left = binary(c == '+' ? Op::add : Op::sub, left, term());
      if (left < 0) return -1;
    }
  }

  bool starts_factor() {
    char c = peek();
    if (is_letter(c) || c == '(' || c == '{' || c == '|') return true;
    if (c == '\\') {
      // \{ and \} are set braces and \infty is not a number: not a factor.
      return pos_ + 1 < s_.size() && is_letter(s_[pos_ + 1]) && s_.compare(pos_, 6, "\\infty") != 0;
    }
    return false;  // a digit right after a factor is "1 2": refused by the caller
  }

  int term() {
    int left = signed_factor();
    for (;;) {
      char c = peek();
      if (c == '*' || c == '/') {
        ++pos_;
        left = binary(c == '*' ? Op::mul : Op::div, left, signed_factor());
      } else if (starts_factor()) {
        left = binary(Op::mul, left, power());
      } else {
        return left;
      }
      if (left < 0) return -1;
    }
  }

  // Every cycle of the grammar's recursion passes through group(), signed_factor(),
  // exponent() or command_factor() ("((((", "----1", "2^-----1", "\sqrt\sqrt\sqrt..."); each
  // holds one Level, so that nesting stops at kMaxNesting levels instead of exhausting the
  // stack.
  class Level {
   public:
    explicit Level(int& depth) : depth_(depth) { ++depth_; }
    ~Level() { --depth_; }
    Level(const Level&) = delete;
    Level& operator=(const Level&) = delete;
    bool too_deep() const { return depth_ > kMaxNesting; }

   private:
    int& depth_;
  };

  int signed_factor() {
    Level level(depth_);
    if (level.too_deep()) return -1;
    if (accept('-')) return unary_node(Op::neg, signed_factor());
    if (accept('+')) return signed_factor();
    return power();
  }

  int power() {
    int base = postfix();
    if (base < 0) return -1;
    if (accept('^')) return binary(Op::pow, base, exponent());
    return base;
  }

  int exponent() {
    Level level(depth_);
    if (level.too_deep()) return -1;
    char c = peek();
    if (c == '{') return group('{', '}');
    if (c == '-') {
      ++pos_;
      return unary_node(Op::neg, exponent());
    }
    if (is_digit(c)) return number(false);
    if (is_letter(c)) return letter();
    if (c == '\\') return command_factor();
    if (c == '(') return group('(', ')');
    return -1;
  }

  int postfix() {
    int p = primary();
    while (p >= 0 && peek() == '!' && !(pos_ + 1 < s_.size() && s_[pos_ + 1] == '=')) {
      ++pos_;
      p = unary_node(Op::factorial, p);
    }
    return p;
  }

  int group(char open, char close) {
    // Brackets add no node, so the node cap does not bound nesting (see Level).
    Level level(depth_);
    if (level.too_deep() || !accept(open)) return -1;
    int inner = expression();
    if (!accept(close)) return -1;
    return inner;
  }

  int primary() {
    char c = peek();
    if (is_digit(c) || c == '.') return mixed_number();
    if (c == '(') return group('(', ')');
    if (c == '{') return group('{', '}');
    if (c == '[') return group('[', ']');
    if (c == '|') return unary_node(Op::abs, group('|', '|'));
    if (is_letter(c)) return letter_or_function();
    if (c == '\\') return command_factor();
    return -1;
  }

  // Largest mantissa or scale that still leaves room for one more digit within Rational's range.
  static constexpr __int128 kMaxMantissa = (static_cast<__int128>(1) << 124) / 10;

  // One literal: digits, optional fraction, optional exponent (1.5e-3). A decimal becomes the
  // exact rational it writes; one too long for 128 bits is kept inexact.
  int number(bool allow_fraction = true) {
    skip();
    size_t start = pos_;
    Node n = make_node(Op::number);
    __int128 mantissa = 0, scale = 1;
    bool fits = true;
    int digits = 0;
    auto take_digit = [&](char d) {
      if (mantissa > kMaxMantissa) fits = false;
      if (fits) mantissa = mantissa * 10 + (d - '0');
      ++digits;
    };
    while (pos_ < s_.size() && is_digit(s_[pos_])) take_digit(s_[pos_++]);
    if (allow_fraction && pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() &&
        is_digit(s_[pos_ + 1])) {
      ++pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) {
        take_digit(s_[pos_++]);
        if (scale > kMaxMantissa) fits = false;
        if (fits) scale *= 10;
      }
    }
    if (digits == 0) return -1;
    long long exponent10 = 0;
    if (allow_fraction && pos_ + 1 < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      bool negative = false;
      if (s_[p] == '+' || s_[p] == '-') negative = s_[p++] == '-';
      if (p < s_.size() && is_digit(s_[p])) {
        while (p < s_.size() && is_digit(s_[p]) && exponent10 < 1000)
          exponent10 = exponent10 * 10 + (s_[p++] - '0');
        if (p < s_.size() && is_digit(s_[p])) return -1;
        if (negative) exponent10 = -exponent10;
        pos_ = p;
      }
    }
    n.approx = std::strtod(std::string(s_.substr(start, pos_ - start)).c_str(), nullptr);
    std::optional<Rational> value;
    if (fits) value = Rational::make(mantissa, scale);
    if (value && exponent10 != 0) {
      auto p10 = aha::reward::power(Rational{10, 1}, exponent10);
      value = p10 ? multiply(*value, *p10) : std::nullopt;
    }
    n.exact_number = value.has_value();
    if (value) n.value = *value;
    return add(n);
  }

  // True when two \frac arguments with no group or command inside ("{45}", "{ 4 }", "4")
  // start at s_[p].
  bool flat_arguments(size_t p) const {
    for (int k = 0; k < 2; ++k) {
      while (p < s_.size() && s_[p] == ' ') ++p;
      if (p < s_.size() && is_digit(s_[p])) {
        ++p;
        continue;
      }
      if (p >= s_.size() || s_[p] != '{') return false;
      for (++p; p < s_.size() && s_[p] != '}'; ++p)
        if (s_[p] == '{' || s_[p] == '\\') return false;
      if (p++ >= s_.size()) return false;
    }
    return true;
  }

  // "1\frac{4}{5}" is the mixed number 1 + 4/5; any other number is itself. The \frac is
  // tried as a mixed part only when its arguments are flat (flat_arguments), so that the
  // retry by implicit multiplication re-reads a few characters, never a nested structure
  // ("1\frac{1\frac{1\frac..." would otherwise cost 2^depth parses).
  int mixed_number() {
    int whole = number();
    if (whole < 0) return -1;
    size_t save = pos_;
    const Node& w = e_.nodes_[whole];
    if (peek() == '\\' && s_.compare(pos_, 5, "\\frac") == 0 && w.exact_number && w.value.is_integer() &&
        flat_arguments(pos_ + 5)) {
      size_t nodes_before = e_.nodes_.size();
      int frac = command_factor();
      if (frac >= 0 && e_.nodes_[frac].op == Op::div) {
        const Node& top = e_.nodes_[e_.nodes_[frac].a];
        const Node& bottom = e_.nodes_[e_.nodes_[frac].b];
        if (top.op == Op::number && bottom.op == Op::number && top.value.is_integer() &&
            bottom.value.is_integer()) {
          return binary(Op::add, whole, frac);
        }
      }
      e_.nodes_.resize(nodes_before);  // not a mixed number: leave it to implicit multiplication
      pos_ = save;
    }
    return whole;
  }

  int letter() {
    std::string name(1, s_[pos_++]);
    if (name == "e") return add(make_node(Op::euler));
    if (pos_ < s_.size() && s_[pos_] == '_') {  // x_1, a_{n}
      size_t p = pos_ + 1;
      if (p < s_.size() && s_[p] == '{') {
        size_t close = s_.find('}', p);
        if (close == std::string_view::npos) return -1;
        name += '_';
        name.append(s_.substr(p + 1, close - p - 1));
        pos_ = close + 1;
      } else if (p < s_.size() && (is_digit(s_[p]) || is_letter(s_[p]))) {
        name += '_';
        name += s_[p];
        pos_ = p + 1;
      } else {
        return -1;
      }
    }
    return variable(name);
  }

  // Plain-text functions ("sqrt(2)", "sin(x)") are recognised when followed by '('.
  int letter_or_function() {
    // A word longer than any function name ("arcsin") is not one: reading further would make
    // "xxxx...x" quadratic, one rescan per letter.
    size_t end = pos_;
    while (end < s_.size() && is_letter(s_[end]) && end - pos_ < 7) ++end;
    std::string_view word = s_.substr(pos_, end - pos_);
    if (end < s_.size() && s_[end] == '(') {
      if (word == "sqrt") {
        pos_ = end;
        return unary_node(Op::root, group('(', ')'));
      }
      for (const auto& f : kFunctions) {
        if (word == f.name) {
          pos_ = end;
          return unary_node(Op::func, group('(', ')'), f.id);
        }
      }
    }
    if (word == "pi") {
      pos_ = end;
      return add(make_node(Op::pi));
    }
    return letter();
  }

  // A macro argument: {group} or a single token (\frac 34, \sqrt2).
  int argument() {
    char c = peek();
    if (c == '{') return group('{', '}');
    if (is_digit(c)) {
      Node n = make_node(Op::number);
      n.value = Rational{s_[pos_] - '0', 1};
      n.approx = s_[pos_] - '0';
      ++pos_;
      return add(n);
    }
    if (is_letter(c)) return letter();
    if (c == '\\') return command_factor();
    return -1;
  }

  int command_factor() {
    Level level(depth_);
    if (level.too_deep() || !accept('\\')) return -1;
    std::string_view name = command();
    if (name == "frac") {
      int top = argument();
      return binary(Op::div, top, argument());
    }
    if (name == "sqrt") {
      int index = -1;
      if (accept('[')) {
        index = expression();
        if (index < 0 || !accept(']')) return -1;
      }
      int radicand = argument();
      if (radicand < 0) return -1;
      Node n = make_node(Op::root);
      n.a = radicand;
      n.b = index;
      return add(n);
    }
    if (name == "pi") return add(make_node(Op::pi));
    if (name == "log" && peek() == '_') {  // \log_b x = ln x / ln b
      ++pos_;
      int base = argument();
      int arg = power();
      return binary(Op::div, unary_node(Op::func, arg, Function::kLn),
                    unary_node(Op::func, base, Function::kLn));
    }
    for (const auto& f : kFunctions) {
      if (name != f.name) continue;
      int exponent_node = -1;
      if (accept('^')) exponent_node = exponent();  // \sin^2 x
      int value = unary_node(Op::func, power(), f.id);
      return exponent_node >= 0 ? binary(Op::pow, value, exponent_node) : value;
    }
    for (auto greek : kGreek) {
      if (name == greek) {
        std::string variable_name = "\\";
        variable_name.append(name);
        return variable(variable_name);
      }
    }
    return -1;
  }

  // One bracket level costs at most four Levels ("\sqrt{-\sqrt{-...": command_factor, group
  // and two signed_factor), so 512 admits every answer within math_equivalence.h's nesting
  // cap of 64, and the stack stays small (a few hundred kB at worst).
  static constexpr int kMaxNesting = 512;
  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  MathExpression& e_;
};

std::optional<MathExpression> MathExpression::parse(std::string_view text) {
  check_deadline();
  MathExpression e;
  e.nodes_.reserve(16);
  ExpressionParser parser(text, e);
  if (!parser.run()) return std::nullopt;
  return e;
}

}  // namespace aha::reward
