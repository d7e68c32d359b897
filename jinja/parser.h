// Builds the statement tree of a template from its tokens. The supported subset is what the
// chat templates of Qwen2.5/Qwen3, Llama 3.x, DeepSeek-R1 (and its distilled models) and
// Mistral use: if/elif/else, for (with "if" filter, else, loop.*), set (names and namespace
// attributes), break/continue, and expressions with filters, tests, calls, subscripts and slices.
// Anything else (macro, call, block, include, filter blocks, raw, ...) is an aha::Error naming
// the construct and its line, so a template is never rendered wrongly.
#pragma once
#include <string>

#include "jinja/ast.h"

namespace aha::jinja {

// Nesting deeper than this (blocks or expressions) is refused: it guards the recursion.
constexpr int kMaxNestingDepth = 100;

Body parse_template(const std::string& source, const std::string& template_name);

}  // namespace aha::jinja
