// The expression half of the Jinja parser (jinja/parser.h): jinja2's precedence from
// conditional expressions down to literals, with filters, tests, calls, subscripts and slices.
// The statement parser (jinja/parser.cpp) derives from it and shares its token cursor and its
// nesting guard, so errors name the same template and line either way.
#pragma once
#include <string>
#include <vector>

#include "jinja/ast.h"
#include "jinja/lexer.h"

namespace aha::jinja {

class ExpressionParser {
 protected:
  using TT = Token::Type;
  ExpressionParser(std::vector<Token> tokens, std::string name) : tokens_(std::move(tokens)), name_(std::move(name)) {}

  // --- expressions, with jinja2's precedence -------------------------------------------------
  ExprPtr parse_expression();
  // or-expression, optionally followed by "if cond [else expr]".
  ExprPtr parse_or_condition(bool with_condition);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr subject, int line);
  ExprPtr parse_call(ExprPtr callee, int line);
  // "(a, b, key=value)" into node.args (appended) and node.kwargs.
  void parse_arguments(Expr& node);
  ExprPtr parse_filters(ExprPtr node);

  // --- helpers ---------------------------------------------------------------------------

  struct Depth {  // counts nesting; refuses templates that would recurse too deep
    Depth(ExpressionParser& p, int line);
    ~Depth() { --parser.depth_; }
    ExpressionParser& parser;
  };

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right);
  static ExprPtr make_expr(Expr::Type type, int line);

  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (t.type != TT::End) ++pos_;
    return t;
  }
  bool peek_op(const char* op) const { return peek().type == TT::Op && peek().text == op; }
  bool peek_name(const char* name) const { return peek().type == TT::Name && peek().text == name; }
  bool accept_op(const char* op) {
    if (!peek_op(op)) return false;
    ++pos_;
    return true;
  }
  bool accept_name(const char* name) {
    if (!peek_name(name)) return false;
    ++pos_;
    return true;
  }
  void expect_op(const char* op);
  void expect(TT type, const char* what);
  std::string found() const;  // ", found 'x'" for errors
  [[noreturn]] void fail(int line, const std::string& message) const;

  std::vector<Token> tokens_;
  std::string name_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace aha::jinja
