// Relations in a normalised math answer (reward/latex_normalizer.h): "x = 5", "5 >= x",
// "-2 <= x < 7", "a = b = c", "x \approx 3", for the math verifier (reward/math_equivalence.h),
// which compares their parts. Splitting is linear in the text; nothing here evaluates beyond
// parsing a chain's end parts (reward/math_expression.h, capped).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace aha::reward {

// A relation at the top level of a text: parts and the operators between them ("=", "<",
// "<=", ">", ">=", "!=", "~" for \approx). A plain expression is one part and no operator.
struct Relation {
  std::vector<std::string> parts;
  std::vector<std::string> ops;
};

Relation split_relation(std::string_view s);

// Brings a relation to the form compared: "x \approx 11" is "x = 11" and "1/3 \approx 1.3" is
// "1/3" (the value before an approximation is the answer); a chain of equalities keeps its first
// and last parts when the first names the value ("x = 5+5+1 = 11" is "x = 11"), else its last,
// and a computation between constants is its result; a chain of > / >= is read backwards with
// < / <=.
void canonical_relation(Relation& r);

// "x", "x_1", "\theta": one variable.
bool is_variable_name(const std::string& s);

// The left side of "label = value" that names the value rather than constrains it ("x",
// "f(x)", "|AB|", "a_{37}", "\frac{NO}{BO}", "A:B"): no digit outside subscripts and no + or -.
// "7 = 11a+c", "2x + z = 1" and "a^2 + b = 0" are equations, not labelled values.
bool is_answer_label(const std::string& s);

// "a < x <= b" (x a label) as the interval "(a,b]"; "x < b" as "(-\infty,b)" and "a < x" as
// "(a,\infty)"; else empty (not all < / <=, or no label where one belongs).
std::string relation_as_interval(const Relation& r);

}  // namespace aha::reward
