// The math verifier against hand-worked cases: equal forms it must accept and near misses it
// must refuse (wrong sign, off by one, 0.5 vs 1/3, lists, hedges, giant expressions).
#include <gtest/gtest.h>

#include <random>

#include "reward/latex_normalizer.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

namespace aha::reward {
namespace {

struct Pair {
  const char* answer;
  const char* gold;
};

TEST(MathEquivalence, AcceptsEqualForms) {
  const Pair cases[] = {
      {"42", "42"},
      {"42.0", "42"},
      {"42.000", "42"},
      {"0.5", "\\frac{1}{2}"},
      {"\\dfrac{1}{2}", "\\frac12"},
      {"\\tfrac 34", "0.75"},
      {"\\frac{2}{4}", "\\frac{1}{2}"},
      {"1/2", "\\frac{1}{2}"},
      {".35625", "0.35625"},
      {"1.5e3", "1500"},
      {"1.5 \\times 10^{3}", "1500"},
      {"6.72 \\times 10^{-5}", ".0000672"},
      {"10,080", "10,\\!080"},
      {"10080", "10,\\!080"},
      {"11111111100", "11,\\! 111,\\! 111,\\! 100"},
      {"10\\,080", "10080"},
      {"1 234 567.5", "1234567.5"},
      {"1267650600228229401496703205376", "2^{100}"},
      {"-1329227995784915872903807060280344575", "-(2^{120}-1)"},
      {"\\$32,348", "\\$32,\\!348"},
      {"18.9", "\\$18.90"},
      {"50\\%", "50"},
      {"50", "50\\%"},
      {"0.5", "50\\%"},
      {"90^\\circ", "90"},
      {"90", "90^{\\circ}"},
      {"15", "15\\mbox{ cm}^2"},
      {"5.4", "5.4 \\text{ cents}"},
      {"\\frac{270}{7}", "\\frac{270}7\\text{ degrees}"},
      {"2\\sqrt{5}", "\\sqrt{20}"},
      {"\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}"},
      {"11\\sqrt{2}", "11\\sqrt2"},
      {"\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}"},
      {"\\sqrt[3]{8}", "2"},
      {"\\frac{\\sqrt{8}}{\\sqrt{2}}", "2"},
      {"\\sqrt{8}", "2\\sqrt{2}"},
      {"\\sqrt{12}+\\sqrt{27}", "5\\sqrt{3}"},
      {"4^{1/2}", "2"},
      {"2\\pi", "\\pi + \\pi"},
      {"12\\pi", "12 \\pi"},
      {"\\frac{20000}{\\pi}", "20000/\\pi"},
      {"-\\frac{\\pi}{6}", "-\\pi/6"},
      {"\\frac{3}{2}", "1\\frac{1}{2}"},
      {"137.5", "137 \\frac{1}{2}"},
      {"9/5", "1\\frac{4}{5}"},
      {"(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"},
      {"[\\pi^2/8, 5\\pi^2/4]", "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]"},
      {"(-\\infty,0]", "(-\\infty, 0]"},
      {"(3,\\infty) \\cup (-\\infty, 2)", "(-\\infty, 2) \\cup (3, \\infty)"},
      {"1, -2", "-2, 1"},
      {"\\{-2, 1\\}", "-2,1"},
      {"7, 5, 3", "3, 5, 7"},
      {"1+\\sqrt{19}, 1-\\sqrt{19}", "1 \\pm \\sqrt{19}"},
      {"\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}", "\\{1\\pm\\sqrt{5},-2\\}"},
      {"x = 5", "x=5"},
      {"5", "x=5"},
      {"x=5", "5"},
      {"y=2x+3", "y = 2x + 3"},
      {"y = 3 + 2x", "y = 2x + 3"},
      {"10x - 14y + 22z + 8 = 0", "5x - 7y + 11z + 4 = 0"},
      {"2(k+1)", "2k+2"},
      {"(a+5)(b+2)", "ab + 2a + 5b + 10"},
      {"-1+x-x^2-x^4+x^3+x^5", "x^5 - x^4 + x^3 - x^2 + x - 1"},
      {"\\frac{9a+11}{20}", "\\frac{11+9a}{20}"},
      {"\\cot x", "\\frac{\\cos x}{\\sin x}"},
      {"6r^2 - 4r - 24", "2(3r^2-2r-12)"},
      {"-2+7i", "-2 + 7i"},
      {"7i - 2", "-2 + 7i"},
      {"\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}"},
      {"\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}",
       "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}"},
      {"B", "\\text{(B)}"},
      {"(C)", "\\text{(C)}"},
      {"\\text{evelyn}", "\\text{Evelyn}"},
      {"East", "\\text{east}"},
      {"204_5", "204_5"},
      {"204", "204_5"},
      {"4210_5", "4210_{5}"},
      {"[-2, 7]", "x \\in [-2,7]"},
      {"$\\frac{1}{4}$", "\\frac14"},
      {"{5}", "5"},
      {"5.", "5"},
      {"5!", "120"},
      {"\\binom", "\\binom"},  // identical text is equal even when it does not parse
      {"\u2212 3", "-3"},
  };
  for (const auto& c : cases) {
    EXPECT_TRUE(math_answers_equivalent(c.answer, c.gold))
        << "answer '" << c.answer << "' gold '" << c.gold << "'";
  }
}

TEST(MathEquivalence, RefusesNearMissesAndHedges) {
  const Pair cases[] = {
      {"-42", "42"},
      {"41", "42"},
      {"43", "42"},
      {"0.5", "\\frac{1}{3}"},
      {"0.333", "\\frac{1}{3}"},
      {"\\frac{1}{2}", "\\frac{2}{1}"},
      {"1 + 10^{-40}", "1"},
      {"1+10^{-20}", "1"},
      {"37.699", "12\\pi"},
      {"", "1"},
      {"1", ""},
      {"1, 2", "1"},
      {"1 \\text{ or } 2", "1"},
      {"1 or 2", "1"},
      {"1 2", "12"},
      {"1 23", "123"},
      {"1267650600228229401496703205377", "2^{100}"},
      {"\\{1, 2\\}", "\\{1, 2, 3\\}"},
      {"1, 1", "1"},
      {"x", "1"},
      {"x - x + 1", "1"},
      {"1+0*(1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16+17+18+19+20+21+22+23+24)", "1"},
      {"(2, 4]", "(2, 4)"},
      {"(4, 2)", "(2, 4)"},
      {"(-\\infty, 0)", "(-\\infty, 0]"},
      {"2k+1", "2k+2"},
      {"x^5 - x^4 + x^3 - x^2 + x + 1", "x^5 - x^4 + x^3 - x^2 + x - 1"},
      {"-2 - 7i", "-2 + 7i"},
      {"\\begin{pmatrix} -1 & 0 \\\\ 0 & 1 \\end{pmatrix}",
       "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}"},
      {"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}"},
      {"(B)", "\\text{(C)}"},
      {"seat", "\\text{east}"},
      {"Navin", "\\text{Evelyn}"},
      {"y = 2x + 4", "y = 2x + 3"},
      {"x = 4", "x=5"},
      {"x = 5 = 6", "5"},
      {"1/0", "2/0"},
      {"\\infty", "1"},
      {"2^{1000000}", "2^{1000001}"},
      {"100!", "101!"},
      {"5\\%", "50"},
      {"1 \\pm 1 \\pm 1 \\pm 1 \\pm 1", "1"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(math_answers_equivalent(c.answer, c.gold))
        << "answer '" << c.answer << "' gold '" << c.gold << "'";
  }
}

TEST(MathEquivalence, DecimalsMatchConstantsWithinTheStatedPrecision) {
  // Relative 1e-6 by default: a decimal written to about 7 significant digits answers the
  // constant it rounds; fewer digits, or two exact forms that differ at all, do not.
  const Pair close_enough[] = {{"0.3333333333", "\\frac{1}{3}"}, {"\\sqrt{2}", "1.41421356"},
                               {"2.718281828", "e"},            {"1.41421356237", "\\sqrt{2}"},
                               {"3.14159265358979", "\\pi"},    {"0.0833333", "\\frac{1}{12}"}};
  for (const auto& c : close_enough) {
    EXPECT_TRUE(math_answers_equivalent(c.answer, c.gold)) << c.answer << " vs " << c.gold;
    EXPECT_FALSE(math_answers_equivalent(c.answer, c.gold, {.relative_precision = 0}))
        << c.answer << " vs " << c.gold << " with relative_precision 0";
  }
  const Pair too_far[] = {{"0.333", "\\frac{1}{3}"}, {"3.1416", "\\pi"}, {"0.08333", "\\frac{1}{12}"},
                          {"1.3", "\\frac{4}{3}"},   {"1 + 10^{-9}", "1"}, {"\\frac{1000001}{1000000}", "1"},
                          // a finite decimal must be written exactly, however close
                          {"12345678.8", "12345678.9"}, {"0.2500001", "\\frac{1}{4}"}, {"1000000.1", "1000000"}};
  for (const auto& c : too_far) EXPECT_FALSE(math_answers_equivalent(c.answer, c.gold)) << c.answer << " vs " << c.gold;
  // A looser stated precision admits a coarser decimal, and only that.
  EXPECT_TRUE(math_answers_equivalent("0.33", "\\frac{1}{3}", {.relative_precision = 0.02}));
  EXPECT_FALSE(math_answers_equivalent("0.3", "\\frac{1}{3}", {.relative_precision = 0.02}));
}

TEST(LatexNormaliser, NormalisesNotation) {
  EXPECT_EQ(normalise_latex("\\left( 3, \\dfrac{\\pi}{2} \\right)").text, "( 3, \\frac{\\pi}{2} )");
  EXPECT_EQ(normalise_latex("10,\\!080").text, "10080");
  EXPECT_EQ(normalise_latex("1,234").text, "1234");
  EXPECT_EQ(normalise_latex("1,23").text, "1,23");
  EXPECT_EQ(normalise_latex("(1,234)").text, "(1,234)");
  EXPECT_EQ(normalise_latex("864 \\mbox{ inches}^2").text, "864");
  EXPECT_EQ(normalise_latex("\\text{Evelyn}").text, "Evelyn");
  auto percent = normalise_latex("12.5\\%");
  EXPECT_EQ(percent.text, "12.5");
  EXPECT_TRUE(percent.percent);
  EXPECT_EQ(normalise_latex("$x \\in [-2,7]$").text, "[-2,7]");
  EXPECT_EQ(normalise_latex("4210_{5}").text, "4210_5");
}

TEST(MathEquivalence, StaysBoundedOnHostileInput) {
  // Deep nesting and long inputs are refused quickly rather than exhausting the stack.
  std::string deep(5000, '(');
  deep += "1" + std::string(5000, ')');
  EXPECT_FALSE(math_answers_equivalent(deep, deep.substr(0, 0) + "1"));
  std::string long_gold(3000, '(');
  long_gold += "1" + std::string(3000, ')');
  EXPECT_TRUE(math_answers_equivalent(long_gold, long_gold));  // identical text
  EXPECT_FALSE(math_answers_equivalent(long_gold + "+0", long_gold));
  EXPECT_FALSE(math_answers_equivalent("2^{2^{2^{2^{2^{2}}}}}", "4"));
  EXPECT_FALSE(math_answers_equivalent("10^{10^{10}}", "10^{10^{10}}+1"));
  EXPECT_FALSE(math_answers_equivalent("\\boxed{", "1"));
}

TEST(MathEquivalence, RandomLatexIsHandledAndReflexive) {
  // Random strings of LaTeX pieces (fixed seed): nothing crashes or hangs, and an answer is
  // equal to itself exactly when it is not empty after normalisation.
  const char* pieces[] = {"\\frac",
                          "{",
                          "}",
                          "(",
                          ")",
                          "[",
                          "]",
                          "1",
                          "23",
                          "0.5",
                          "x",
                          "y",
                          "^",
                          "\\sqrt",
                          "\\pm",
                          ",",
                          "\\cup",
                          "=",
                          "\\boxed",
                          "\\text{",
                          "\\%",
                          ".",
                          "-",
                          "+",
                          "*",
                          "/",
                          "e",
                          "\\pi",
                          " ",
                          "\\\\",
                          "&",
                          "\\begin{pmatrix}",
                          "\\end{pmatrix}",
                          "!",
                          "|",
                          "_",
                          "\\{",
                          "\\}",
                          "\\infty",
                          "\\sin",
                          "\\left(",
                          "\\right)",
                          "$",
                          "\\!",
                          "1e5",
                          "99999999999999999999",
                          "<answer>",
                          "</answer>",
                          "\\log_",
                          "\\sqrt[",
                          "\\dfrac"};
  std::mt19937 random(1234);
  std::uniform_int_distribution<size_t> piece(0, std::size(pieces) - 1), length(0, 14);
  auto make = [&] {
    std::string s;
    for (size_t i = length(random); i > 0; --i) s += pieces[piece(random)];
    return s;
  };
  size_t equal_pairs = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string a = make(), b = make();
    EXPECT_EQ(math_answers_equivalent(a, a), !normalise_latex(a).text.empty()) << "'" << a << "'";
    equal_pairs += math_answers_equivalent(a, b);
    extract_final_answer(a + b);
  }
  EXPECT_LT(equal_pairs, 200u);  // unrelated random strings are rarely equal
}

}  // namespace
}  // namespace aha::reward
