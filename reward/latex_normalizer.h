// Normalising a LaTeX or plain-text math answer before comparison.
//
// What it does (in this order): drops $ and \( \) \[ \] delimiters and dollar signs; undoes a
// backslash doubled before a letter (outside environments and '&'); relation symbols become
// ASCII (\leq \le to <=, \geq to >=, \neq \ne to !=, \lt \gt to < >); "14{,}916" becomes
// "14,916"; maps a few Unicode symbols (− ∞ π ° × · ≤ ≥ ≠) to LaTeX or ASCII; removes spacing
// and sizing commands (\left \right \! \, \; \: \quad \displaystyle ~); \dfrac, \tfrac and
// \cfrac become \frac, \cdot and \times become *, \div becomes /; removes degree marks (^\circ,
// ^{\circ}, \circ, \degree); a trailing \% or % (or the word percent / pct / percentage) becomes
// NormalisedAnswer::percent; trailing unit words in \text{} / \mbox{} / \mathrm{} /
// \textnormal{} (with an optional ^2 / ^3) are removed when something precedes them; the
// remaining \text{x}, \mathrm{x}, \textbf{x}, \mathbf{x}, \mbox{x}, \boxed{x}, \fbox{x},
// \operatorname{x} become x; a leading "x \in " is dropped; "1 and 2", "a; b" and
// "(1,2)or(2,1)" become comma lists; thousands separators are removed when the whole answer is
// one number written with them (1,234,567, 10,\!080 or 10\,080; a leading "0," group is a
// decimal comma, not thousands); a number's base subscript 4210_{5} becomes 4210_5; whitespace
// runs become one space; a trailing full stop and wrapping braces are removed. Everything else
// (fractions, roots, \pi, brackets) is left for the expression parser.
//
// Cost: linear in the answer's length, whatever its nesting (no step rescans the text once per
// occurrence or per level); between passes it checks the reward call's deadline
// (reward/deadline.h).
#pragma once
#include <string>
#include <string_view>

namespace aha::reward {

struct NormalisedAnswer {
  std::string text;
  bool percent = false;  // the answer ended in % (its number is "per cent")
};

NormalisedAnswer normalise_latex(std::string_view answer);

}  // namespace aha::reward
