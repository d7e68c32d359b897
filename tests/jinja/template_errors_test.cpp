// What the renderer refuses, and how: every construct outside the subset, malformed templates
// and runaway renders are an aha::Error naming the template, the line and the construct.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "jinja/template.h"

namespace aha::jinja {
namespace {

// The message of the aha::Error that parsing and rendering `source` throws ("" when none).
std::string error_of(const std::string& source, const Dict& variables = {}, const RenderOptions& options = {}) {
  try {
    Template("" + source, "tpl").render(variables, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& source, const std::string& line, const std::string& words) {
  const std::string message = error_of(source);
  EXPECT_NE(message.find("tpl line " + line + ":"), std::string::npos) << source << " -> " << message;
  EXPECT_NE(message.find(words), std::string::npos) << source << " -> " << message;
}

TEST(JinjaErrors, UnsupportedStatementsNameTheConstructAndLine) {
  expect_error("a\n{% macro f() %}x{% endmacro %}", "2", "'macro' statement is not supported");
  expect_error("{% include 'x' %}", "1", "'include'");
  expect_error("\n\n{% generation %}x{% endgeneration %}", "3", "'generation'");
  expect_error("{% filter upper %}x{% endfilter %}", "1", "'filter'");
  expect_error("{% raw %}x{% endraw %}", "1", "'raw'");
  expect_error("{% set x %}body{% endset %}", "1", "block assignments");
  expect_error("{% set a, b = 1, 2 %}", "1", "several names");
  expect_error("{% for x in xs recursive %}{% endfor %}", "1", "recursive");
  expect_error("{{ (1, 2) }}", "1", "tuples are not supported");
}

TEST(JinjaErrors, UnknownFiltersTestsAndFunctionsAreNamed) {
  expect_error("\n\n{{ x | wordcount }}", "3", "filter 'wordcount' is not supported");
  expect_error("{% if x is callable %}{% endif %}", "1", "test 'callable' is not supported");
  expect_error("\n{{ range(3) }}", "2", "function 'range' is not supported");
  expect_error("{{ 'abc'.zfill(5) }}", "1", "string.zfill()");
  expect_error("{{ x | tojson(sort_keys=true) }}", "1", "only the indent argument");
}

TEST(JinjaErrors, MalformedTemplatesAreRefused) {
  expect_error("ok\n{% if x %}abc", "2", "'if' is never closed");
  expect_error("{% for x in y %}abc{% endif %}", "1", "unexpected 'endif': the 'for' of line 1 is not closed yet");
  expect_error("{{ x", "1", "{{ is never closed by }}");
  expect_error("{% if x", "1", "{% is never closed by %}");
  expect_error("a\n{# comment", "2", "comment {# is never closed");
  expect_error("{{ 'abc }}", "1", "string literal is never closed");
  expect_error("{% endif %}", "1", "'endif' without a matching opening tag");
  expect_error("{% else %}", "1", "'else' without a matching opening tag");
  expect_error("{% break %}", "1", "'break' outside a for loop");
  expect_error("{{ }}", "1", "expected an expression");
  expect_error("{{ a ) }}", "1", "unexpected ')'");
  expect_error("{{ a $ b }}", "1", "unexpected character '$'");
  expect_error("{{ 'x' | }}", "1", "expected a filter name");
  expect_error("{{ '\\N{BULLET}' }}", "1", "\\N{...} escapes are not supported");
  expect_error("{{ 99999999999999999999 }}", "1", "out of range");
}

TEST(JinjaErrors, DeepNestingIsRefusedBeforeItRecurses) {
  std::string parens(5000, '(');
  expect_error("{{ " + parens + "1" + std::string(5000, ')') + " }}", "1", "nesting deeper than 100 levels");
  std::string ifs;
  for (int i = 0; i < 500; ++i) ifs += "{% if true %}";
  expect_error(ifs + "x", "1", "nesting deeper than 100 levels");
  std::string nots;
  for (int i = 0; i < 5000; ++i) nots += "not ";
  expect_error("{{ " + nots + "x }}", "1", "nesting deeper");
  // 90 levels are fine.
  std::string ok;
  for (int i = 0; i < 90; ++i) ok += "{% if true %}";
  ok += "x";
  for (int i = 0; i < 90; ++i) ok += "{% endif %}";
  EXPECT_EQ(Template(ok, "tpl").render({}), "x");
}

TEST(JinjaErrors, RunawayRendersStopAtTheirLimits) {
  List thousand(1000, Value(1));
  RenderOptions options;
  options.limits.max_loop_iterations = 10000;
  const std::string nested = "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}";
  const std::string message = error_of(nested, {{"xs", Value(thousand)}}, options);
  EXPECT_NE(message.find("more than 10000 loop iterations"), std::string::npos) << message;
  options.limits.max_output_bytes = 1000;
  EXPECT_NE(error_of("{% for a in xs %}{{ 'xy' }}{% endfor %}", {{"xs", Value(thousand)}}, options).find("output exceeds 1000 bytes"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000000 }}").find("repetition result exceeds"), std::string::npos);
  EXPECT_NE(error_of("{{ 2 ** 100 }}").find("overflows 64 bits"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 // 0 }}").find("division by zero"), std::string::npos);
}

TEST(JinjaErrors, RenderErrorsNameTheLineAndTheMessage) {
  EXPECT_EQ(error_of("a\n\n{{ raise_exception('roles must alternate') }}"), "tpl line 3: raise_exception: roles must alternate");
  EXPECT_NE(error_of("\n{{ a.b.c }}").find("tpl line 2: 'a' is undefined (reading .b)"), std::string::npos);
  EXPECT_NE(error_of("{{ a.b.c }}", {{"a", Value(Dict{})}}).find("'a.b' is undefined (reading .c)"), std::string::npos);
  EXPECT_NE(error_of("{{ x + 1 }}").find("'x' is undefined (operand of '+')"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("unsupported operand types for +: string and integer"), std::string::npos);
  EXPECT_NE(error_of("{% set x = 1 %}{% set x.y = 2 %}").find("only namespace() objects take attributes"), std::string::npos);
  EXPECT_NE(error_of("{% for a, b in [[1, 2, 3]] %}{% endfor %}").find("cannot unpack 3 values into 2"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 < 'a' }}").find("'<' is not supported between integer and string"), std::string::npos);
  EXPECT_NE(error_of("{% for x in 5 %}{% endfor %}").find("integer is not iterable"), std::string::npos);
  EXPECT_NE(error_of("{{ u.strip() }}").find("cannot call .strip() on an undefined value"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a'.split('') }}").find("empty separator"), std::string::npos);
  EXPECT_NE(error_of("{{ none | tojson }}"), "x");
  EXPECT_NE(error_of("{{ u | tojson }}").find("undefined value cannot be written as JSON"), std::string::npos);
}

TEST(JinjaGlobals, StrftimeNowUsesTheGivenClock) {
  RenderOptions options;
  options.strftime_now = [](const std::string& format) { return format == "%d %b %Y" ? std::string("03 Dec 2026") : "?"; };
  // Llama 3.2's way of dating its system prompt.
  const std::string source =
      "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- else %}"
      "{%- set date_string = \"26 Jul 2024\" %}{%- endif %}Today Date: {{ date_string }}";
  EXPECT_EQ(Template(source, "tpl").render({}, options), "Today Date: 03 Dec 2026");
  EXPECT_EQ(Template("Today Date: {{ strftime_now('%d %b %Y') }}", "tpl").render({}, options), "Today Date: 03 Dec 2026");
  const std::string year = Template("{{ strftime_now('%Y') }}", "tpl").render({});
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
}

}  // namespace
}  // namespace aha::jinja
