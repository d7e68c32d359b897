#include "jinja/parser.h"

#include <set>

#include "core/error.h"
#include "jinja/expression_parser.h"
#include "jinja/lexer.h"

namespace aha::jinja {
namespace {

class Parser : public ExpressionParser {
 public:
  Parser(std::vector<Token> tokens, std::string name) : ExpressionParser(std::move(tokens), std::move(name)) {}

  Body parse() {
    Body body = parse_body({});
    if (peek().type != TT::End) fail(peek().line, "unexpected tag");
    return body;
  }

 private:
  // Parses nodes until a block tag whose keyword is in `stops` (left unconsumed: the caller
  // reads it), or the end of the template.
  Body parse_body(const std::set<std::string>& stops) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == TT::End) {
        if (!stops.empty()) fail(open_line_, "'" + open_keyword_ + "' is never closed (expected " + join(stops) + ")");
        return body;
      }
      if (t.type == TT::Text) {
        auto node = make_node(Node::Type::Text, t.line);
        node->text = t.text;
        body.push_back(std::move(node));
        ++pos_;
      } else if (t.type == TT::VarBegin) {
        ++pos_;
        auto node = make_node(Node::Type::Output, t.line);
        node->expr = parse_expression();
        expect(TT::VarEnd, "}}");
        body.push_back(std::move(node));
      } else if (t.type == TT::BlockBegin) {
        const Token& keyword = tokens_[pos_ + 1];
        if (keyword.type == TT::Name && stops.count(keyword.text)) return body;
        ++pos_;
        body.push_back(parse_statement());
      } else {
        fail(t.line, "unexpected token '" + t.text + "'");
      }
    }
  }

  NodePtr parse_statement() {
    const Token& keyword = next();
    if (keyword.type != TT::Name) fail(keyword.line, "expected a statement keyword after {%");
    const std::string& k = keyword.text;
    if (k == "if") return parse_if(keyword.line);
    if (k == "for") return parse_for(keyword.line);
    if (k == "set") return parse_set(keyword.line);
    if (k == "break" || k == "continue") {
      if (loop_depth_ == 0) fail(keyword.line, "'" + k + "' outside a for loop");
      expect(TT::BlockEnd, "%}");
      return make_node(k == "break" ? Node::Type::Break : Node::Type::Continue, keyword.line);
    }
    static const std::set<std::string> kEnds = {"endif", "endfor", "else", "elif", "endset"};
    if (kEnds.count(k) && !open_keyword_.empty())
      fail(keyword.line, "unexpected '" + k + "': the '" + open_keyword_ + "' of line " + std::to_string(open_line_) +
                             " is not closed yet");
    if (kEnds.count(k)) fail(keyword.line, "'" + k + "' without a matching opening tag");
    fail(keyword.line, "the '" + k + "' statement is not supported (supported: if, for, set, break, continue)");
  }

  NodePtr parse_if(int line) {
    Depth depth(*this, line);
    auto node = make_node(Node::Type::If, line);
    ExprPtr condition = parse_expression();
    expect(TT::BlockEnd, "%}");
    while (true) {
      Opening opening(*this, "if", line);
      Body body = parse_body({"elif", "else", "endif"});
      node->branches.emplace_back(std::move(condition), std::move(body));
      ++pos_;  // {%
      const std::string keyword = next().text;
      if (keyword == "elif") {
        condition = parse_expression();
        expect(TT::BlockEnd, "%}");
        continue;
      }
      expect(TT::BlockEnd, "%}");
      if (keyword == "else") {
        node->else_body = parse_body({"endif"});
        ++pos_;
        next();
        expect(TT::BlockEnd, "%}");
      }
      return node;
    }
  }

  NodePtr parse_for(int line) {
    Depth depth(*this, line);
    auto node = make_node(Node::Type::For, line);
    do {
      const Token& target = next();
      if (target.type != TT::Name) fail(target.line, "expected a loop variable name after 'for'");
      node->targets.push_back(target.text);
    } while (accept_op(","));
    if (!accept_name("in")) fail(peek().line, "expected 'in' in the for statement");
    node->expr = parse_or_condition(false);
    if (accept_name("if")) node->filter = parse_or_condition(false);
    if (accept_name("recursive")) fail(line, "recursive for loops are not supported");
    expect(TT::BlockEnd, "%}");
    ++loop_depth_;
    {
      Opening opening(*this, "for", line);
      node->body = parse_body({"else", "endfor"});
    }
    --loop_depth_;
    ++pos_;
    if (next().text == "else") {
      expect(TT::BlockEnd, "%}");
      Opening opening(*this, "for", line);
      node->else_body = parse_body({"endfor"});
      ++pos_;
      next();
    }
    expect(TT::BlockEnd, "%}");
    return node;
  }

  NodePtr parse_set(int line) {
    auto node = make_node(Node::Type::Set, line);
    const Token& target = next();
    if (target.type != TT::Name) fail(target.line, "expected a variable name after 'set'");
    node->targets.push_back(target.text);
    if (accept_op(".")) {
      const Token& attribute = next();
      if (attribute.type != TT::Name) fail(attribute.line, "expected an attribute name after '.' in 'set'");
      node->targets.push_back(attribute.text);
    }
    if (peek().type == TT::BlockEnd) fail(line, "block assignments ({% set x %}...{% endset %}) are not supported");
    if (peek().type == TT::Op && peek().text == ",") fail(line, "assigning several names in one 'set' is not supported");
    if (!accept_op("=")) fail(peek().line, "expected '=' in the set statement");
    node->expr = parse_expression();
    expect(TT::BlockEnd, "%}");
    return node;
  }

  // --- helpers ---------------------------------------------------------------------------

  struct Opening {  // remembers the innermost open block for "never closed" errors
    Opening(Parser& p, std::string keyword, int line) : parser(p), saved_keyword(p.open_keyword_), saved_line(p.open_line_) {
      p.open_keyword_ = std::move(keyword);
      p.open_line_ = line;
    }
    ~Opening() {
      parser.open_keyword_ = saved_keyword;
      parser.open_line_ = saved_line;
    }
    Parser& parser;
    std::string saved_keyword;
    int saved_line;
  };

  static std::string join(const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + ("{% " + n + " %}");
    return out;
  }
  static NodePtr make_node(Node::Type type, int line) {
    auto n = std::make_unique<Node>();
    n->type = type;
    n->line = line;
    return n;
  }

  int loop_depth_ = 0;
  std::string open_keyword_;
  int open_line_ = 0;
};

}  // namespace

Body parse_template(const std::string& source, const std::string& template_name) {
  return Parser(tokenize(source, template_name), template_name).parse();
}

}  // namespace aha::jinja
