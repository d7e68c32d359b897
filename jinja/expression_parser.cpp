#include "jinja/expression_parser.h"

#include "core/error.h"
#include "jinja/builtins.h"
#include "jinja/parser.h"  // kMaxNestingDepth

namespace aha::jinja {

ExprPtr ExpressionParser::parse_expression() {
  Depth depth(*this, peek().line);
  ExprPtr value = parse_or_condition(true);
  return value;
}

// or-expression, optionally followed by "if cond [else expr]".
ExprPtr ExpressionParser::parse_or_condition(bool with_condition) {
  ExprPtr value = parse_or();
  while (with_condition && peek_name("if")) {
    const int line = next().line;
    auto cond = make_expr(Expr::Type::Cond, line);
    cond->args.push_back(std::move(value));
    cond->args.push_back(parse_or());
    cond->args.push_back(accept_name("else") ? parse_or_condition(true) : nullptr);
    value = std::move(cond);
  }
  return value;
}

ExprPtr ExpressionParser::parse_or() {
  ExprPtr left = parse_and();
  while (accept_name("or")) left = binary("or", std::move(left), parse_and());
  return left;
}
ExprPtr ExpressionParser::parse_and() {
  ExprPtr left = parse_not();
  while (accept_name("and")) left = binary("and", std::move(left), parse_not());
  return left;
}
ExprPtr ExpressionParser::parse_not() {
  if (peek_name("not")) {
    const int line = next().line;
    auto node = make_expr(Expr::Type::Unary, line);
    node->name = "not";
    Depth depth(*this, line);
    node->args.push_back(parse_not());
    return node;
  }
  return parse_compare();
}
ExprPtr ExpressionParser::parse_compare() {
  ExprPtr left = parse_math1();
  while (true) {
    const Token& t = peek();
    if (t.type == TT::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" ||
                             t.text == ">=")) {
      const std::string op = next().text;
      left = binary(op, std::move(left), parse_math1());
    } else if (peek_name("in")) {
      next();
      left = binary("in", std::move(left), parse_math1());
    } else if (peek_name("not") && tokens_[pos_ + 1].type == TT::Name && tokens_[pos_ + 1].text == "in") {
      pos_ += 2;
      left = binary("not in", std::move(left), parse_math1());
    } else {
      return left;
    }
  }
}
ExprPtr ExpressionParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (peek_op("+") || peek_op("-")) {
    const std::string op = next().text;
    left = binary(op, std::move(left), parse_concat());
  }
  return left;
}
ExprPtr ExpressionParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (peek_op("~")) {
    next();
    left = binary("~", std::move(left), parse_math2());
  }
  return left;
}
ExprPtr ExpressionParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
    const std::string op = next().text;
    left = binary(op, std::move(left), parse_pow());
  }
  return left;
}
ExprPtr ExpressionParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (peek_op("**")) {
    next();
    left = binary("**", std::move(left), parse_unary(true));
  }
  return left;
}
ExprPtr ExpressionParser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (peek_op("-") || peek_op("+")) {
    const Token& op = next();
    Depth depth(*this, op.line);
    node = make_expr(Expr::Type::Unary, op.line);
    node->name = op.text;
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_postfix(parse_primary());
  }
  return with_filter ? parse_filters(std::move(node)) : std::move(node);
}

ExprPtr ExpressionParser::parse_primary() {
  const Token& t = next();
  switch (t.type) {
    case TT::String: {
      std::string text = t.text;
      while (peek().type == TT::String) text += next().text;  // adjacent literals concatenate
      auto node = make_expr(Expr::Type::Literal, t.line);
      node->literal = Value(std::move(text));
      return node;
    }
    case TT::Int: {
      auto node = make_expr(Expr::Type::Literal, t.line);
      try {
        node->literal = Value(static_cast<int64_t>(std::stoll(t.text)));
      } catch (const std::exception&) {
        fail(t.line, "integer literal " + t.text + " is out of range");
      }
      return node;
    }
    case TT::Float: {
      auto node = make_expr(Expr::Type::Literal, t.line);
      node->literal = Value(std::stod(t.text));
      return node;
    }
    case TT::Name: {
      auto node = make_expr(Expr::Type::Literal, t.line);
      if (t.text == "true" || t.text == "True") node->literal = Value(true);
      else if (t.text == "false" || t.text == "False") node->literal = Value(false);
      else if (t.text == "none" || t.text == "None") node->literal = Value::none();
      else {
        node->type = Expr::Type::Name;
        node->name = t.text;
      }
      return node;
    }
    case TT::Op:
      if (t.text == "(") {
        Depth depth(*this, t.line);
        if (peek_op(")")) fail(t.line, "tuples are not supported");
        ExprPtr inner = parse_expression();
        if (peek_op(",")) fail(t.line, "tuples are not supported");
        expect_op(")");
        return inner;
      }
      if (t.text == "[") {
        Depth depth(*this, t.line);
        auto node = make_expr(Expr::Type::List, t.line);
        while (!peek_op("]")) {
          node->args.push_back(parse_expression());
          if (!accept_op(",")) break;
        }
        expect_op("]");
        return node;
      }
      if (t.text == "{") {
        Depth depth(*this, t.line);
        auto node = make_expr(Expr::Type::Dict, t.line);
        while (!peek_op("}")) {
          node->args.push_back(parse_expression());
          expect_op(":");
          node->args.push_back(parse_expression());
          if (!accept_op(",")) break;
        }
        expect_op("}");
        return node;
      }
      break;
    default: break;
  }
  fail(t.line, t.type == TT::VarEnd || t.type == TT::BlockEnd ? "expected an expression before the tag's end"
                                                                 : "unexpected '" + t.text + "' in an expression");
}

ExprPtr ExpressionParser::parse_postfix(ExprPtr node) {
  while (true) {
    const int line = peek().line;
    if (accept_op(".")) {
      const Token& attribute = next();
      if (attribute.type == TT::Int) {
        auto item = make_expr(Expr::Type::Item, line);
        item->args.push_back(std::move(node));
        auto index = make_expr(Expr::Type::Literal, line);
        index->literal = Value(static_cast<int64_t>(std::stoll(attribute.text)));
        item->args.push_back(std::move(index));
        node = std::move(item);
        continue;
      }
      if (attribute.type != TT::Name) fail(line, "expected an attribute name after '.'");
      auto attr = make_expr(Expr::Type::Attr, line);
      attr->name = attribute.text;
      attr->args.push_back(std::move(node));
      node = std::move(attr);
    } else if (accept_op("[")) {
      Depth depth(*this, line);
      node = parse_subscript(std::move(node), line);
    } else if (peek_op("(")) {
      node = parse_call(std::move(node), line);
    } else {
      return node;
    }
  }
}

ExprPtr ExpressionParser::parse_subscript(ExprPtr subject, int line) {
  ExprPtr parts[3];
  bool is_slice = false;
  for (int part = 0; part < 3; ++part) {
    if (!peek_op(":") && !peek_op("]")) parts[part] = parse_expression();
    if (part < 2 && accept_op(":")) {
      is_slice = true;
      continue;
    }
    break;
  }
  expect_op("]");
  if (!is_slice) {
    auto item = make_expr(Expr::Type::Item, line);
    item->args.push_back(std::move(subject));
    item->args.push_back(std::move(parts[0]));
    return item;
  }
  auto slice = make_expr(Expr::Type::Slice, line);
  slice->args.push_back(std::move(subject));
  for (auto& p : parts) slice->args.push_back(std::move(p));
  return slice;
}

ExprPtr ExpressionParser::parse_call(ExprPtr callee, int line) {
  auto call = make_expr(Expr::Type::Call, line);
  call->args.push_back(std::move(callee));
  parse_arguments(*call);
  return call;
}

// "(a, b, key=value)" into node.args (appended) and node.kwargs.
void ExpressionParser::parse_arguments(Expr& node) {
  Depth depth(*this, peek().line);
  expect_op("(");
  while (!peek_op(")")) {
    if (peek().type == TT::Name && tokens_[pos_ + 1].type == TT::Op && tokens_[pos_ + 1].text == "=") {
      const std::string key = next().text;
      next();
      node.kwargs.emplace_back(key, parse_expression());
    } else {
      if (peek_op("*") || peek_op("**")) fail(peek().line, "*args and **kwargs in calls are not supported");
      if (!node.kwargs.empty()) fail(peek().line, "a positional argument follows a keyword argument");
      node.args.push_back(parse_expression());
    }
    if (!accept_op(",")) break;
  }
  expect_op(")");
}

ExprPtr ExpressionParser::parse_filters(ExprPtr node) {
  while (true) {
    const int line = peek().line;
    if (accept_op("|")) {
      const Token& name = next();
      if (name.type != TT::Name) fail(line, "expected a filter name after '|'");
      if (!is_known_filter(name.text)) fail(line, "the filter '" + name.text + "' is not supported");
      auto filter = make_expr(Expr::Type::Filter, line);
      filter->name = name.text;
      filter->args.push_back(std::move(node));
      if (peek_op("(")) parse_arguments(*filter);
      node = std::move(filter);
    } else if (peek_name("is")) {
      next();
      auto test = make_expr(Expr::Type::Test, line);
      test->negated = accept_name("not");
      const Token& name = next();
      if (name.type != TT::Name) fail(line, "expected a test name after 'is'");
      if (!is_known_test(name.text)) fail(line, "the test '" + name.text + "' is not supported");
      test->name = name.text;
      test->args.push_back(std::move(node));
      if (peek_op("(")) {
        parse_arguments(*test);
      } else {
        const Token& t = peek();
        const bool starts_argument =
            t.type == TT::String || t.type == TT::Int || t.type == TT::Float ||
            (t.type == TT::Name && t.text != "else" && t.text != "or" && t.text != "and" && t.text != "if" &&
             t.text != "in" && t.text != "not" && t.text != "is") ||
            (t.type == TT::Op && (t.text == "[" || t.text == "{"));
        if (starts_argument) test->args.push_back(parse_postfix(parse_primary()));
      }
      node = std::move(test);
    } else {
      return node;
    }
  }
}

ExpressionParser::Depth::Depth(ExpressionParser& p, int line) : parser(p) {
  if (++parser.depth_ > kMaxNestingDepth)
    parser.fail(line, "nesting deeper than " + std::to_string(kMaxNestingDepth) + " levels");
}

ExprPtr ExpressionParser::binary(const std::string& op, ExprPtr left, ExprPtr right) {
  auto node = make_expr(Expr::Type::Binary, left->line);
  node->name = op;
  node->args.push_back(std::move(left));
  node->args.push_back(std::move(right));
  return node;
}

ExprPtr ExpressionParser::make_expr(Expr::Type type, int line) {
  auto e = std::make_unique<Expr>();
  e->type = type;
  e->line = line;
  return e;
}

void ExpressionParser::expect_op(const char* op) {
  if (!accept_op(op)) fail(peek().line, std::string("expected '") + op + "'" + found());
}

void ExpressionParser::expect(TT type, const char* what) {
  if (peek().type != type) fail(peek().line, std::string("expected '") + what + "'" + found());
  ++pos_;
}

std::string ExpressionParser::found() const {
  const Token& t = peek();
  if (t.type == TT::End) return " before the end of the template";
  if (t.type == TT::VarEnd) return ", found '}}'";
  if (t.type == TT::BlockEnd) return ", found '%}'";
  return ", found '" + t.text + "'";
}

void ExpressionParser::fail(int line, const std::string& message) const {
  throw Error(name_ + " line " + std::to_string(line) + ": " + message);
}

}  // namespace aha::jinja
