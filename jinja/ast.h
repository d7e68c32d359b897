// The parsed form of a template: expressions and statements, each with its source line so that
// render errors can name where they happened.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace aha::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Type {
    Literal,  // literal
    Name,     // name
    List,     // args: items
    Dict,     // args: key, value, key, value...
    Attr,     // args[0].name
    Item,     // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]], absent parts null
    Call,     // args[0](args[1..], kwargs)
    Filter,   // args[0] | name(args[1..], kwargs)
    Test,     // args[0] is [not] name(args[1..])
    Unary,    // name ("not", "-", "+") args[0]
    Binary,   // args[0] name args[1]
    Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Type type;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // tests: "is not"
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Type { Text, Output, If, For, Set, Break, Continue };
  Type type;
  int line = 0;
  std::string text;                                      // Text
  ExprPtr expr;                                          // Output, Set value, For iterable
  std::vector<std::pair<ExprPtr, Body>> branches;        // If: condition and body, in order
  Body else_body;                                        // If, For
  std::vector<std::string> targets;                      // For: loop variables; Set: name [, attribute]
  ExprPtr filter;                                        // For: the "if" after the iterable
  Body body;                                             // For
};

}  // namespace aha::jinja
