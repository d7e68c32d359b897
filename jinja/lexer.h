// Splits template source into text and tag tokens the way jinja2's lexer does with
// trim_blocks=True and lstrip_blocks=True (the environment transformers renders chat templates
// in): {%- -%} {{- -}} {#- -#} strip whitespace, a block or comment tag alone on its line takes
// its indentation and line break with it, newlines are normalised to \n and one trailing
// newline is dropped. Comments are removed here.
#pragma once
#include <string>
#include <vector>

namespace aha::jinja {

struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
  Type type;
  std::string text;  // Text: the text; String: the unescaped value; Name/Op/Int/Float: as written
  int line;
};

// Throws aha::Error naming `template_name` and the line for unclosed tags, comments and strings,
// and characters that are not Jinja syntax.
std::vector<Token> tokenize(const std::string& source, const std::string& template_name);

}  // namespace aha::jinja
