#include "datasets/countdown.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>
#include <numeric>

#include "core/error.h"

namespace aha {

namespace {

using i128 = __int128;

// An exact fraction num/den in lowest terms with den > 0.
struct Rational {
  int64_t num = 0, den = 1;
};

i128 abs128(i128 v) { return v < 0 ? -v : v; }

i128 gcd128(i128 a, i128 b) {
  a = abs128(a);
  b = abs128(b);
  while (b != 0) {
    i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Reduces num/den (den != 0); nullopt when it does not fit in 64 bits.
std::optional<Rational> make_rational(i128 num, i128 den) {
  if (den < 0) num = -num, den = -den;
  i128 g = gcd128(num, den);
  if (g > 1) num /= g, den /= g;
  constexpr i128 lo = std::numeric_limits<int64_t>::min() + 1, hi = std::numeric_limits<int64_t>::max();
  if (num < lo || num > hi || den > hi) return std::nullopt;
  return Rational{static_cast<int64_t>(num), static_cast<int64_t>(den)};
}

enum class ApplyError { none, division_by_zero, overflow };

// a op b into out; op is one of + - * /.
ApplyError apply(char op, Rational a, Rational b, Rational& out) {
  i128 an = a.num, ad = a.den, bn = b.num, bd = b.den;
  std::optional<Rational> r;
  switch (op) {
    case '+': r = make_rational(an * bd + bn * ad, ad * bd); break;
    case '-': r = make_rational(an * bd - bn * ad, ad * bd); break;
    case '*': r = make_rational(an * bn, ad * bd); break;
    default:
      if (bn == 0) return ApplyError::division_by_zero;
      r = make_rational(an * bd, ad * bn);
  }
  if (!r) return ApplyError::overflow;
  out = *r;
  return ApplyError::none;
}

std::string to_text(Rational r) {
  return r.den == 1 ? std::to_string(r.num) : std::to_string(r.num) + "/" + std::to_string(r.den);
}

std::string list_text(const std::vector<int64_t>& numbers) {
  std::string s;
  for (size_t i = 0; i < numbers.size(); ++i) s += (i ? ", " : "") + std::to_string(numbers[i]);
  return s;
}

// The parsed expression: a binary tree in a vector (children before parents).
struct Node {
  char op = 0;  // 0: a literal
  int64_t literal = 0;
  int left = -1, right = -1;
};

// Recursive descent: expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
// factor := digits | '(' expr ')'. Nesting is bounded so that adversarial input cannot
// exhaust the stack.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  // The root node, or -1 with error() set.
  int parse() {
    int root = expr(0);
    if (root >= 0) {
      skip_spaces();
      if (pos_ != text_.size())
        return fail("unexpected '" + std::string(1, text_[pos_]) + "' at position " + std::to_string(pos_));
    }
    return root;
  }
  const std::string& error() const { return error_; }
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  static constexpr int kMaxDepth = 64;

  int fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return -1;
  }
  void skip_spaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  int binary(char op, int left, int right) {
    nodes_.push_back(Node{op, 0, left, right});
    return static_cast<int>(nodes_.size()) - 1;
  }
  int expr(int depth) {
    int left = term(depth);
    while (left >= 0) {
      skip_spaces();
      if (pos_ >= text_.size() || (text_[pos_] != '+' && text_[pos_] != '-')) break;
      char op = text_[pos_++];
      int right = term(depth);
      if (right < 0) return -1;
      left = binary(op, left, right);
    }
    return left;
  }
  int term(int depth) {
    int left = factor(depth);
    while (left >= 0) {
      skip_spaces();
      if (pos_ >= text_.size() || (text_[pos_] != '*' && text_[pos_] != '/')) break;
      char op = text_[pos_++];
      int right = factor(depth);
      if (right < 0) return -1;
      left = binary(op, left, right);
    }
    return left;
  }
  int factor(int depth) {
    skip_spaces();
    if (pos_ >= text_.size()) return fail("unexpected end of expression");
    char c = text_[pos_];
    if (c == '(') {
      if (depth >= kMaxDepth) return fail("parentheses nested deeper than " + std::to_string(kMaxDepth));
      ++pos_;
      int inner = expr(depth + 1);
      if (inner < 0) return -1;
      skip_spaces();
      if (pos_ >= text_.size() || text_[pos_] != ')') return fail("missing ')' at position " + std::to_string(pos_));
      ++pos_;
      return inner;
    }
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return fail("expected a number or '(' at position " + std::to_string(pos_) + ", got '" + std::string(1, c) + "'");
    int64_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      if (value > (std::numeric_limits<int64_t>::max() - 9) / 10)
        return fail("number too long at position " + std::to_string(pos_));
      value = value * 10 + (text_[pos_++] - '0');
    }
    nodes_.push_back(Node{0, value, -1, -1});
    return static_cast<int>(nodes_.size()) - 1;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::vector<Node> nodes_;
  std::string error_;
};

// Exhaustive search over every way of combining two values. Values live in an arena used as a
// stack (a branch's nodes are dropped when it returns); derivation text is built only when a
// value is recorded, which keeps the search cheap enough to run once per generated instance.
class Search {
 public:
  Search(const std::vector<int64_t>& numbers, bool all_numbers) : all_numbers_(all_numbers), total_(numbers.size()) {
    std::vector<Item> items;
    for (int64_t n : numbers) {
      arena_.push_back(SearchNode{Rational{n, 1}, 0, -1, -1});
      items.push_back(Item{static_cast<int>(arena_.size()) - 1, 1, n > 0});
    }
    run(items);
  }

  std::map<int64_t, CountdownDerivation> take() {
    std::map<int64_t, CountdownDerivation> out;
    for (auto& [value, f] : found_) out.emplace(value, std::move(f.derivation));
    return out;
  }

 private:
  struct SearchNode {
    Rational value;
    char op;  // 0: a given number
    int left, right;
  };
  struct Item {
    int node;
    size_t numbers_used;
    bool clean;  // every value on the way (this one included) is a positive integer
  };
  struct Found {
    CountdownDerivation derivation;
    bool clean;
  };

  std::string expression(int node) const {
    const SearchNode& n = arena_[node];
    if (n.op == 0) return std::to_string(n.value.num);
    std::string out;
    for (int child : {n.left, n.right}) {
      bool wrap = arena_[child].op != 0;
      if (child == n.right) {
        out += ' ';
        out += n.op;
        out += ' ';
      }
      if (wrap) out += '(';
      out += expression(child);
      if (wrap) out += ')';
    }
    return out;
  }

  void steps(int node, std::vector<std::string>& out) const {
    const SearchNode& n = arena_[node];
    if (n.op == 0) return;
    steps(n.left, out);
    steps(n.right, out);
    out.push_back(to_text(arena_[n.left].value) + " " + n.op + " " + to_text(arena_[n.right].value) + " = " +
                  to_text(n.value));
  }

  // Records integer values (made from all the numbers only, when all_numbers_), keeping the
  // first derivation found unless a later one is clean and it was not, so that solutions read
  // naturally where they can.
  void record(const Item& item) {
    const Rational& v = arena_[item.node].value;
    if (v.den != 1 || (all_numbers_ && item.numbers_used != total_)) return;
    auto it = found_.find(v.num);
    if (it != found_.end() && (it->second.clean || !item.clean)) return;
    Found f{{expression(item.node), {}}, item.clean};
    steps(item.node, f.derivation.steps);
    if (it == found_.end())
      found_.emplace(v.num, std::move(f));
    else
      it->second = std::move(f);
  }

  void run(const std::vector<Item>& items) {
    for (const Item& item : items) record(item);
    if (items.size() < 2) return;
    std::vector<Item> next;
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t j = 0; j < items.size(); ++j) {
        if (i == j) continue;
        for (char op : {'+', '-', '*', '/'}) {
          if ((op == '+' || op == '*') && j < i) continue;  // commutative: one order is enough
          Rational value;
          if (apply(op, arena_[items[i].node].value, arena_[items[j].node].value, value) != ApplyError::none) continue;
          size_t mark = arena_.size();
          arena_.push_back(SearchNode{value, op, items[i].node, items[j].node});
          next.clear();
          for (size_t k = 0; k < items.size(); ++k)
            if (k != i && k != j) next.push_back(items[k]);
          next.push_back(Item{static_cast<int>(mark), items[i].numbers_used + items[j].numbers_used,
                              items[i].clean && items[j].clean && value.den == 1 && value.num > 0});
          run(next);
          arena_.resize(mark);
        }
      }
    }
    // Subsets of the numbers are covered: every intermediate item is recorded on the way.
  }

  bool all_numbers_;
  size_t total_;
  std::vector<SearchNode> arena_;
  std::map<int64_t, Found> found_;
};

}  // namespace

const char* countdown_verdict_name(CountdownVerdict verdict) {
  switch (verdict) {
    case CountdownVerdict::correct: return "correct";
    case CountdownVerdict::wrong_result: return "wrong_result";
    case CountdownVerdict::syntax_error: return "syntax_error";
    case CountdownVerdict::number_not_given: return "number_not_given";
    case CountdownVerdict::number_reused: return "number_reused";
    case CountdownVerdict::division_by_zero: return "division_by_zero";
    case CountdownVerdict::overflow: return "overflow";
  }
  return "syntax_error";
}

CountdownCheck check_countdown_expression(std::string_view expression, const std::vector<int64_t>& numbers,
                                          int64_t target) {
  Parser parser(expression);
  int root = parser.parse();
  if (root < 0) return {CountdownVerdict::syntax_error, parser.error()};
  const std::vector<Node>& nodes = parser.nodes();

  // Literals in reading order are the leaves in creation order.
  std::vector<int64_t> unused = numbers;
  for (const Node& n : nodes) {
    if (n.op != 0) continue;
    auto it = std::find(unused.begin(), unused.end(), n.literal);
    if (it != unused.end()) {
      unused.erase(it);
      continue;
    }
    bool given = std::find(numbers.begin(), numbers.end(), n.literal) != numbers.end();
    if (given)
      return {CountdownVerdict::number_reused,
              std::to_string(n.literal) + " is used more times than given (numbers: " + list_text(numbers) + ")"};
    return {CountdownVerdict::number_not_given,
            std::to_string(n.literal) + " is not one of the numbers " + list_text(numbers)};
  }

  // Children precede parents in `nodes`, so one forward pass evaluates the tree.
  std::vector<Rational> values(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.op == 0) {
      values[i] = Rational{n.literal, 1};
      continue;
    }
    ApplyError e = apply(n.op, values[n.left], values[n.right], values[i]);
    if (e == ApplyError::division_by_zero)
      return {CountdownVerdict::division_by_zero, "division by zero: " + to_text(values[n.left]) + " / 0"};
    if (e == ApplyError::overflow) return {CountdownVerdict::overflow, "an intermediate value does not fit in 64 bits"};
  }
  Rational result = values[root];
  if (result.den == 1 && result.num == target) return {CountdownVerdict::correct, ""};
  return {CountdownVerdict::wrong_result,
          "the expression equals " + to_text(result) + ", not " + std::to_string(target)};
}

std::map<int64_t, CountdownDerivation> countdown_reachable_integers(const std::vector<int64_t>& numbers,
                                                                    bool all_numbers) {
  // The search grows like n! * 6^(n-1); past 6 numbers it is too slow to be useful.
  require(numbers.size() <= 6, "countdown search takes at most 6 numbers, got " + std::to_string(numbers.size()));
  return Search(numbers, all_numbers).take();
}

std::optional<CountdownDerivation> solve_countdown(const std::vector<int64_t>& numbers, int64_t target) {
  auto found = countdown_reachable_integers(numbers);
  auto it = found.find(target);
  if (it == found.end()) return std::nullopt;
  return it->second;
}

}  // namespace aha
