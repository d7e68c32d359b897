#include "reward/countdown_check.h"

#include <algorithm>
#include <limits>

#include "core/exact_fraction.h"

namespace aha::reward {
namespace {

std::string list_text(const std::vector<int64_t>& numbers) {
  std::string s;
  for (size_t i = 0; i < numbers.size(); ++i) s += (i ? ", " : "") + std::to_string(numbers[i]);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The parsed expression: a binary tree in a vector (children before parents).
struct Node {
  char op = 0;  // 0: a literal
  int64_t literal = 0;
  int left = -1, right = -1;
};

// Recursive descent: expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
// factor := digits | '(' expr ')'. The nesting bound keeps hostile input off the stack's end.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  // The root node, or -1 with error() set.
  int parse() {
    int root = expr(0);
    if (root >= 0) {
      skip_spaces();
      if (pos_ != text_.size()) return fail("unexpected " + quoted_here() + " at byte " + std::to_string(pos_));
    }
    return root;
  }
  const std::string& error() const { return error_; }
  const std::vector<Node>& nodes() const { return nodes_; }

 private:
  int fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return -1;
  }
  // The character at pos_ for a message: printable ASCII as itself, anything else as hex.
  std::string quoted_here() const {
    unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    const char* hex = "0123456789ABCDEF";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 15] + " (only ASCII digits, + - * / ( ) are allowed)";
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
    if (text_[pos_] == '(') {
      if (depth >= kMaxNesting) return fail("parentheses nested deeper than " + std::to_string(kMaxNesting));
      ++pos_;
      int inner = expr(depth + 1);
      if (inner < 0) return -1;
      skip_spaces();
      if (pos_ >= text_.size() || text_[pos_] != ')') return fail("missing ')' at byte " + std::to_string(pos_));
      ++pos_;
      return inner;
    }
    if (!is_digit(text_[pos_]))
      return fail("expected a number or '(' at byte " + std::to_string(pos_) + ", got " + quoted_here());
    int64_t value = 0;
    while (pos_ < text_.size() && is_digit(text_[pos_])) {
      if (value > (std::numeric_limits<int64_t>::max() - 9) / 10)
        return fail("number too long at byte " + std::to_string(pos_));
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

}  // namespace

const char* countdown_verdict_name(CountdownVerdict verdict) {
  switch (verdict) {
    case CountdownVerdict::correct: return "correct";
    case CountdownVerdict::wrong_result: return "wrong_result";
    case CountdownVerdict::syntax_error: return "syntax_error";
    case CountdownVerdict::number_not_given: return "number_not_given";
    case CountdownVerdict::number_reused: return "number_reused";
    case CountdownVerdict::number_unused: return "number_unused";
    case CountdownVerdict::division_by_zero: return "division_by_zero";
    case CountdownVerdict::non_integer_intermediate: return "non_integer_intermediate";
    case CountdownVerdict::overflow: return "overflow";
  }
  return "syntax_error";
}

CountdownCheck check_countdown_expression(std::string_view expression, const std::vector<int64_t>& numbers,
                                          int64_t target, const CountdownRules& rules) {
  if (expression.size() > kMaxExpressionBytes)
    return {CountdownVerdict::syntax_error, "expression longer than " + std::to_string(kMaxExpressionBytes) +
                                                " bytes (" + std::to_string(expression.size()) + ")"};
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
  if (rules.use_all_numbers && !unused.empty())
    return {CountdownVerdict::number_unused, "every number must be used; left out: " + list_text(unused)};

  // Children precede parents in `nodes`, so one forward pass evaluates the tree.
  std::vector<Fraction> values(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (n.op == 0) {
      values[i] = Fraction{n.literal, 1};
      continue;
    }
    FractionError e = apply_operation(n.op, values[n.left], values[n.right], values[i]);
    if (e == FractionError::division_by_zero)
      return {CountdownVerdict::division_by_zero, "division by zero: " + values[n.left].to_string() + " / 0"};
    if (e == FractionError::overflow)
      return {CountdownVerdict::overflow, "an intermediate value does not fit in 64 bits"};
    if (rules.integer_intermediates && !values[i].is_integer())
      return {CountdownVerdict::non_integer_intermediate,
              values[n.left].to_string() + " " + n.op + " " + values[n.right].to_string() + " = " +
                  values[i].to_string() + " is not an integer"};
  }
  const Fraction& result = values[root];
  if (result.is_integer() && result.num == target) return {CountdownVerdict::correct, ""};
  return {CountdownVerdict::wrong_result,
          "the expression equals " + result.to_string() + ", not " + std::to_string(target)};
}

}  // namespace aha::reward
