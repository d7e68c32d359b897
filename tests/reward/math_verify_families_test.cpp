// The math verifier on the families of cases that Hugging Face Math-Verify's test suite covers
// (numbers in every notation, LaTeX spellings, percentages, units, relations, chains, sets,
// intervals, tuples, matrices, lenient extraction from prose), with our own cases and
// hand-worked expectations, both directions: each family has equal pairs and near misses.
// Every pair goes through lenient extraction on both sides, as `aha eval` with
// "extraction": "lenient" does. Math-Verify itself is never run or copied here; the agreement
// figure against its own cases is tools/bench/math_verify_agreement.py.
#include <gtest/gtest.h>

#include <string>

#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

namespace aha::reward {
namespace {

struct Case {
  const char* pred;  // a completion (or just an answer)
  const char* gold;  // a gold answer or a worked solution
  bool equal;
};

bool lenient_equal(const std::string& pred, const std::string& gold, bool numbers = true) {
  auto answer = extract_final_answer(pred, ExtractionMode::lenient, numbers);
  return answer && math_answers_equivalent(*answer, extract_gold_answer(gold, ExtractionMode::lenient));
}

void expect_all(const char* family, std::initializer_list<Case> cases) {
  for (const auto& c : cases) {
    EXPECT_EQ(lenient_equal(c.pred, c.gold), c.equal)
        << family << ": pred '" << c.pred << "' gold '" << c.gold << "' should be " << (c.equal ? "equal" : "unequal");
  }
}

TEST(MathVerifyFamilies, NumbersInEveryNotation) {
  expect_all("numbers", {
      {"-7", "-7", true},
      {"3,250,000", "3250000", true},
      {"2 500", "2500", true},
      {"86 400 seconds", "86400", true},
      {"3000.0", "3000", true},
      {"2,000.5", "2000.5", true},
      {"4512,75", "4512.75", true},
      {"3.45", "3,45", true},
      {"Le total : 6,35 euros.", "6.35", true},
      {"0,275", "0.275", true},
      {"0.275", "0,275", true},
      {".25", "0.25", true},
      {"-.5", "-\\frac{1}{2}", true},
      {"$7,300.25", "7300.25", true},
      {"7,300.25$", "7300.25", true},
      {"the cost was not 12 but 4,050.10€", "4050.10", true},
      {"so it is 9 and finally 2,300.5m²", "2300.5", true},
      {"2.5e3", "2500", true},
      {"2.5 \\times 10^{3}", "2500", true},
      {"4 \\cdot 10^{-2}", "0.04", true},
      {"1.2E-4", "0.00012", true},
      {"21{,}804", "21804", true},
      {"The count is $21 {, }804$.", "21804", true},
      {"$3,\\!141$", "3141", true},
      {"0.0625", "\\frac{1}{16}", true},
      // near misses
      {"QXW7Z", "7", false},
      {"-7", "7", false},
      {"3,250,001", "3250000", false},
      {"2.5e4", "2500", false},
      {"1,5", "1.5", false},  // one digit after the comma: the list 1, 5
      {"45, 120", "45120", false},
      {"4512,75", "451275", false},
      {"3.46", "3,45", false},
      {"0,2751", "0.275", false},
      {"2,500", "2.5", false},  // three digits after the comma: a thousands separator
      {"-1,024", "-1024", true},
      {"1 048 576", "1048576", true},
      {"12,345,678.9", "12345678.9", true},
      {"6.02 \\times 10^{23}", "602000000000000000000000", true},
      {"5 \\cdot 10^{3}", "5000", true},
      {"$0,5$", "\\frac{1}{2}", false},  // one digit after the comma: the list 0, 5
      {"-1,025", "-1024", false},
      {"6.02 \\times 10^{22}", "602000000000000000000000", false},
      {"12,345,678.8", "12345678.9", false},
  });
}

TEST(MathVerifyFamilies, LatexSpellingsAndDelimiters) {
  expect_all("latex", {
      {"Result \\[ 14 \\]", "$14$", true},
      {"Result $ 14 $", "$14$", true},
      {"Result $$ 14 $$", "$14$", true},
      {"Result \\( 14 \\)", "$14$", true},
      {"Result \\( (10+4) \\)", "$14$", true},
      {"Result \\[ \n 14 \n \\]", "$14$", true},
      {"Result $$ \n 14 \n $$", "$14$", true},
      {"Result $ \\frac{3}{4} \\$ = \\frac{7}{5} $", "$7/5$", true},
      {"$\\frac25$", "$2/5$", true},
      {"$\\frac5{5}$", "$1$", true},
      {"$\\sqrt7$", "$\\sqrt{7}$", true},
      {"$\\cfrac{2}{5}$", "$2/5$", true},
      {"$\\dfrac{2}{5}$", "$2/5$", true},
      {"$\\tfrac{2}{5}$", "$2/5$", true},
      {"$ 2/5 $", "$\\frac{2}{5}$", true},
      {"$\\left( \\frac{2}{5} \\right)$", "$2/5$", true},
      {"$\\boxed{\\frac{2}{5}}$", "$2/5$", true},
      {"$\\frac{2}{5} \\text{litres}$", "$2/5$", true},
      {"$\\frac{2}{5} \\textbf{litres}$", "$2/5$", true},
      {"$m = \\frac{2}{5}$", "$2/5$", true},
      {"$\\\\left(\\\\frac{2}{7},\\\\frac{3}{7}\\\\right)$", "$(\\frac{2}{7}, \\frac{3}{7})$", true},
      {"$\\sqrt 3+\\sqrt 7$", "$\\sqrt{3}+\\sqrt{7}$", true},
      {"$\\frac73\\pi$", "$\\frac{7}{3}\\pi$", true},
      {"$48^\\circ$", "$48$", true},
      {"$(2, \\frac{\\pi}{3})$", "$\\left( 2, \\frac{\\pi}{3} \\right)$", true},
      {"$\\text{Miguel}$", "Miguel", true},
      {"$\\text{(D)}$", "\\text{D}", true},
      {"$\\text{F}$", "$F$", true},
      {"$\\text{even}$", "$even$", true},
      {"$333_4$", "$333_{4}$", true},
      // near misses
      {"Result $ \n 14 \n $", "$14$", true},  // not math on two lines, but the last number is 14
      {"$\\frac{2}{5}$", "$5/2$", false},
      {"$\\sqrt{7}$", "$7$", false},
      {"$2\\sqrt{7}$", "$2$", false},
      {"$\\frac73\\pi$", "$\\frac{7}{3}$", false},
      {"$(2, \\frac{\\pi}{3})$", "$(2, \\frac{\\pi}{6})$", false},
      {"$\\text{Miguel}$", "Mikael", false},
      {"$\\text{(D)}$", "\\text{C}", false},
      {"$k$", "$\\text{F}$", false},
      {"$\\dfrac{\\sqrt{3}}{2}$", "$\\frac{\\sqrt3}{2}$", true},
      {"$\\Big(\\frac{1}{6}\\Big)$", "$1/6$", true},
      {"$\\displaystyle \\frac{5}{8}$", "$0.625$", true},
      {"$\\mathbf{12}$", "$12$", true},
      {"$\\dfrac{\\sqrt{3}}{2}$", "$\\frac{\\sqrt2}{2}$", false},
      {"$\\Big(\\frac{1}{6}\\Big)$", "$1/7$", false},
  });
  // Math only (Math-Verify's LaTeX extraction target): two-line "$" is not math, no number.
  EXPECT_FALSE(lenient_equal("Result $ \n 14 \n $", "$14$", false));
  EXPECT_FALSE(lenient_equal("Result \\( \n 14 \n \\)", "$14$", false));
  EXPECT_TRUE(lenient_equal("Result \\[ \n 14 \n \\]", "$14$", false));
}

TEST(MathVerifyFamilies, Percentages) {
  expect_all("percent", {
      {"35 percent", "$35\\%$", true},
      {"35 pct", "$35\\%$", true},
      {"35 %", "$35\\%$", true},
      {"$35$ %", "$35\\%$", true},
      {"$35$ percent", "$35\\%$", true},
      {"$\\boxed{35}$ pct", "$35\\%$", true},
      {"$\\boxed{35 pct}$", "$35\\%$", true},
      {"$\\boxed{35 percent}$", "$35\\%$", true},
      {"$\\boxed{35 percentage}$", "$35\\%$", true},
      {"$\\boxed{35 \\text{ percent}}$", "$35\\%$", true},
      {"35", "$35\\%$", true},
      {"0.35", "$35\\%$", true},
      {"$35\\%$", "0.35", true},
      // near misses
      {"35", "$0.35$", false},
      {"35", "$35/100$", false},
      {"35/100", "$35$", false},
      {"35", "$\\frac{35}{100}$", false},
      {"36 percent", "$35\\%$", false},
      {"3.5", "$35\\%$", false},
      {"$12.5\\%$", "$\\frac{1}{8}$", true},
      {"12.5 percent", "$12.5\\%$", true},
      {"$12.5\\%$", "$\\frac{1}{7}$", false},
      {"12.6 pct", "$12.5\\%$", false},
  });
}

TEST(MathVerifyFamilies, UnitsAndText) {
  expect_all("units", {
      {"The distance is $\\boxed{240\\textnormal{ km}}.$", "$240$ km", true},
      {"$\\boxed{18\\mbox{ m}^2}$", "$18\\mbox{ m}^2$", true},
      {"$\\boxed{18}$", "$18\\mbox{ m}^2$", true},
      {"$\\boxed{3.5 \\text{ hours}}$", "3.5", true},
      {"$\\boxed{0.08 \\text{ dollars}}$", "$$0.08 \\text{ dollars}$$", true},
      {"$\\boxed{\\text{Lines AB and CD are parallel}}$", "$$\\text{Lines AB and CD are parallel}$$", true},
      // near misses
      {"The distance is $\\boxed{250\\textnormal{ km}}.$", "$240$ km", false},
      {"$\\boxed{19\\mbox{ m}^2}$", "$18\\mbox{ m}^2$", false},
      {"$\\boxed{4.5 \\text{ kg}}$", "$4.5$", true},
      {"$\\boxed{72^\\circ}$", "$72$", true},
      {"$\\boxed{\\$42.50}$", "$42.5$", true},
      {"$\\boxed{4.6 \\text{ kg}}$", "$4.5$", false},
      {"$\\boxed{73^\\circ}$", "$72$", false},
      {"$\\boxed{\\$42.05}$", "$42.5$", false},
  });
}

TEST(MathVerifyFamilies, ExtractionFromProse) {
  expect_all("extraction", {
      {"We get $a = 3$ so $b = 2a + 1$. The answer is $\\boxed{7}$.", "$7$", true},
      {"so the maximum is $\\boxed{2 - 3q}$.", "$2-3q$", true},
      {"Final Answer: The biggest $k$ is 58.", "$58$", true},
      {"Final Answer: The final answer is $17 \\%$. I hope it is correct.", "$17\\%$", true},
      {"Hence Q = (3/5) / (9/10) Q = 2/3 Hence the chance is 2/3. <|im_end|>", "$2/3$", true},
      {"First $\\boxed{40}$ in the first year, then $10,400 + $404 = $10,804. Final Answer: The final answer is "
       "$10,804$. I hope it is correct.",
       "$10804$", true},
      {"<think>long thought with 5 and 6</think> Therefore the total is \\(\\boxed{311}\\) square metres.", "$311$", true},
      {"\\frac{13}{7}", "13/7", true},
      {"-\\frac{13}{7}", "-13/7", true},
      {"It is \\boxed{55}. Hmm, check again. \\boxed{55}\n**Final Answer**\n\\boxed{55}", "$55$", true},
      {"$\\boxed{4}, \\boxed{6}, \\boxed{9}$", "$${4, 6, 9}$$", true},
      {"\\boxed{4} and \\boxed{6} and \\boxed{9}", "$${4, 6, 9}$$", true},
      {"\\boxed{4},\\boxed{6},\\boxed{9}", "$${4, 6, 9}$$", true},
      {"$\\boxed{(3, 1)} \\quad \\text{and} \\quad \\boxed{(5, 2)}$", "$$(3, 1), (5, 2)$$", true},
      {"\\(\\boxed{5}\\) and \\(\\boxed{-3}\\).", "$\\boxed{-3,5}$", true},
      {"$2$ and $5$ and $8$", "$\\boxed{2,5,8}$", true},
      {"So $x = \\boxed{15\\frac{1}{4}},$ or $\\boxed{\\frac{61}{4}}$ cm.", "$\\frac{61}{4}$", true},
      // near misses
      {"The only candidate is 4, and 4 fails; we conclude $\\boxed{9}$.", "$4$", false},
      {"Final Answer: The biggest $k$ is 59.", "$58$", false},
      {"\\boxed{4} maybe not \\boxed{6}", "$\\boxed{4,6}$", false},
      {"Nothing to see here.", "$3$", false},
      {"", "$3$", false},
      {"After checking both cases, the final answer is: $\\frac{5}{6}$", "$\\frac{5}{6}$", true},
      {"<answer>The answer is $12$.</answer>", "$12$", true},
      {"The answer is 12, not 13.", "$12$", false},  // the sentence's last number is 13
      {"Worked out: $a = 2$, $b = 3$, so the total is 23 dollars", "$23$", true},
      {"Worked out: $a = 2$, $b = 3$, so the total is 23 dollars", "$3$", false},
      {"We compute $3 \\times 4$ and get $12$", "We find $\\boxed{12}$.", true},
      {"We compute $3 \\times 4$ and get $13$", "We find $\\boxed{12}$.", false},
  });
}

TEST(MathVerifyFamilies, RelationsAndInequalities) {
  expect_all("relations", {
      {"Thus $y \\geq 4$ holds.", "$y >= 4$", true},
      {"so $y \\ge 4$", "$y >= 4$", true},
      {"We find $y \\lt 6$.", "$y < 6$", true},
      {"Hence $y <= 8$ is it.", "$y \\leq 8$", true},
      {"Hence $y \\le 8$", "$y \\leq 8$", true},
      {"Thus $y \\gt 4$ holds.", "$y > 4$", true},
      {"so $y \\neq 2$", "$y != 2$", true},
      {"so $y \\ne 2$", "$y \\neq 2$", true},
      {"$8 \\geq y$", "$y \\leq 8$", true},
      {"$4 \\leq y$", "$y \\geq 4$", true},
      {"$-y > -3$", "$y < 3$", true},
      {"$-y >= -3$", "$y <= 3$", true},
      {"$2y < 6$", "$y < 3$", true},
      {"$-3 < y < 3$", "$y > -3$", false},
      {"$(-3, 3)$", "$-3 < y < 3$", true},
      {"$[-3, 3)$", "$-3 \\le y < 3$", true},
      {"$(5, \\infty)$", "$y > 5$", true},
      {"$(-\\infty, 5]$", "$y \\le 5$", true},
      {"$g(1) < g(3) < g(0)$", "$g(1) < g(3) < g(0)$", true},
      {"$g(0) > g(3) > g(1)$", "$g(1) < g(3) < g(0)$", true},
      // near misses
      {"Thus $y < 4$ holds.", "$y > 4$", false},
      {"The solution is $y \\leq 4$", "$y \\geq 4$", false},
      {"$y > -3$", "$y < 3$", false},
      {"$y \\leq 3$", "$y < 3$", false},
      {"$-2y < 6$", "$y < 3$", false},
      {"$y = 2$", "$y \\neq 2$", false},
      {"$(-3, 3]$", "$-3 < y < 3$", false},
      {"$y < 3$", "$(-\\infty, 3)$", false},  // a gold interval asks for a set, not a condition
      {"$g(3) < g(1) < g(0)$", "$g(1) < g(3) < g(0)$", false},
      {"$x \\geqslant 1$", "$x \\ge 1$", true},
      {"$x \\leqslant 1$", "$1 \\geq x$", true},
      {"$t \\neq -4$", "$t != -4$", true},
      {"$2x \\ge 6$", "$x \\geq 3$", true},
      {"$x \\geqslant 1$", "$x > 1$", false},
      {"$t \\neq 4$", "$t != -4$", false},
      {"$-2x \\ge 6$", "$x \\geq 3$", false},
  });
}

TEST(MathVerifyFamilies, EquationsAndChains) {
  expect_all("equations", {
      {"$y = 3+3+2 = 6 = 8$", "$y = 8$", true},
      {"$y = 3+3+2 = 8$", "$8$", true},
      {"$y = 1+1+1 = 1/4 \\approx 99$", "$y = 1/4$", true},
      {"$q=7$", "$7$", true},
      {"$7$", "$q=7$", true},
      {"$y\\approx 9$", "$9$", true},
      {"$t=1/4\\approx0.3$", "$1/4$", true},
      {"$w = 2 + 2 = 4$", "$w = 1 + 3 = 4$", true},
      {"$3x-6y+9=0$", "$y=\\frac{1}{2}x+\\frac{3}{2}$", true},
      {"$x^2/9 + y^2/4 = 1$", "$x^2/36 + y^2/16 = 1/4$", true},
      {"$12x+3y-6z+9=0$", "$-12x-3y+6z-9=0$", true},
      {"$h(t)=5$", "$5$", true},
      {"$|PQ|=5$", "$5$", true},
      {"$P:Q=5$", "$5$", true},
      {"$(a,b)=(4,1)$", "$(4,1)$", true},
      {"$(4,1)$", "$(a,b)=(4,2)$", false},
      {"$\\frac{PM}{MQ}=\\frac{1}{\\sqrt{3}}$", "$\\frac{1}{\\sqrt{3}}$", true},
      {"$2 = \\qqq = y = 0$", "$0$", true},
      // near misses
      {"$11b+d$", "$9 = 11b+d$", false},
      {"$0$", "$b +4w = 0$", false},
      {"$1$", "$3x + w = 1$", false},
      {"$0$", "$b^2 + c = 0$", false},
      {"$y = 3+3+2 = 9$", "$y = 8$", false},
      {"$y = 8 = 9$", "$8$", false},
      {"$3x-6y+9=0$", "$y=\\frac{1}{2}x-\\frac{3}{2}$", false},
      {"$x^2/9 + y^2/4 = 1$", "$x^2/36 + y^2/16 = 1$", false},
      {"$a = 2 \\cdot 3 = 6$", "$6$", true},
      {"$a = 2 \\cdot 3 = 7$", "$6$", false},
      {"$y = 2x + 1$", "$2x - y + 1 = 0$", true},
      {"$y = 2x + 1$", "$2x - y - 1 = 0$", false},
      {"$r \\approx 2.4$", "$2.4$", true},
      {"$r \\approx 2.4$", "$2.5$", false},
  });
}

TEST(MathVerifyFamilies, SetsIntervalsAndTuples) {
  expect_all("sets", {
      {"$[0,2)$", "$[0,2)$", true},
      {"$\\boxed{(3,8]}$", "$(\\frac{3}{1}, 8]$", true},
      {"$\\boxed{-3,2}$", "$-3,2$", true},
      {"$\\boxed{2,-3}$", "$-3,2$", true},
      {"$\\boxed{\\{2,-3\\}}$", "$-3,2$", true},
      {"${2,5}$", "$(2,5)$", true},
      {"$\\boxed{2 \\pm \\sqrt{7}}$", "$2 \\pm \\sqrt{7}$", true},
      {"$\\boxed{2+\\sqrt{7}, 2-\\sqrt{7}}$", "$2 \\pm \\sqrt{7}$", true},
      {"${-44, 44}$", "$\\pm 44$", true},
      {"$\\boxed{\\{2\\pm\\sqrt{3},-1\\}}$", "$\\{-1, 2+\\sqrt{3}, 2-\\sqrt{3}\\}$", true},
      {"$\\boxed{[-2, -\\tfrac13) \\cup (-\\tfrac13, 0) \\cup (0, \\infty)}$",
       "$[-2, -\\frac{1}{3}) \\cup (-\\frac{1}{3}, 0) \\cup (0, \\infty)$", true},
      {"$y \\in \\boxed{(3,9) \\cup (9,50)}$", "$(3, 9) \\cup (9, 50)$", true},
      {"$y \\in [-5,4]$", "$\\boxed{[-5, 4]}$", true},
      {"$\\boxed{(5, 9, 2, 1), (2, 9, 5, 1), (1, 1, 1, 1)}$", "$(1,1,1,1),(2,9,5,1),(5,9,2,1)$", true},
      {"$\\boxed{(2, 9), (2, 9), (4, 1)}$", "$(4,1),(2,9)$", true},  // the same solutions, one twice
      {"$\\boxed{(1; 0; 2), (0; 0; 0)}$", "$(0,0,0),(1,0,2)$", true},
      {"$\\boxed{\\{-9, -8, -5\\}}$", "$-9;-8;-5$", true},
      {"$\\boxed{(9,13),\\ (13,9)}$", "$(13,9)or(9,13)$", true},
      {"$\\boxed{27, 35, \\text{ and } 61}$", "$27, 35, and 61$", true},
      {"$\\boxed{x = \\frac{1}{3}, x = \\frac{-1 \\pm \\sqrt{5}}{2}}$",
       "$$x = \\frac{1}{3}, x = \\frac{-1 \\pm \\sqrt{5}}{2}$$", true},
      {"$\\boxed{b_{12} = 7, \\quad b_2 = 5}$", "$$b_2 = 5, b_{12} = 7$$", true},
      {"$$(1, +\\infty)$$", "$$(1, +\\infty)$$", true},
      {"$(2,\\frac{11}{4})$", "$(2,2.75)$", true},
      // near misses
      {"$[0,3)$", "$[0,2)$", false},
      {"$[0,2]$", "$(0,2]$", false},
      {"$-[0,2)$", "$5$", false},
      {"${2,5}$", "$(5,2)$", false},
      {"$2,5,7$", "$2,5$", false},
      {"$2, 5$", "$2$", false},
      {"$44$", "$\\pm 44$", false},
      {"$\\boxed{(2, 9), (4, 1), (7, 7)}$", "$(4,1),(2,9)$", false},
      {"$\\boxed{(1; 0; 2), (0; 0; 1)}$", "$(0,0,0),(1,0,2)$", false},
      {"$27, 35, and 60$", "$27, 35, and 61$", false},
      {"$m=2, 3, 4$", "$m=1, 2, 3$", false},
      {"$E = (2, 3.5)$", "$E = (2, 3)$", false},
      {"$\\{3, 1, 2\\}$", "$\\{1, 2, 3\\}$", true},
      {"$(-\\infty, -1) \\cup (1, \\infty)$", "$(1, \\infty) \\cup (-\\infty, -1)$", true},
      {"$(0.5, 1]$", "$(\\frac{1}{2}, 1]$", true},
      {"$\\{3, 1\\}$", "$\\{1, 2, 3\\}$", false},
      {"$(-\\infty, -1] \\cup (1, \\infty)$", "$(1, \\infty) \\cup (-\\infty, -1)$", false},
      {"$(0.5, 1]$", "$[\\frac{1}{2}, 1]$", false},
  });
}

TEST(MathVerifyFamilies, Matrices) {
  expect_all("matrices", {
      {"It is $ \\begin{pmatrix}2 & 0 \\\\ 0 & 2\\end{pmatrix} $.", "$\\begin{pmatrix}2 & 0 \\\\ 0 & 2\\end{pmatrix}$", true},
      {"Zero: $ \\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix} $", "$\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}$", true},
      {"$ \\left[\\begin{array}{cc}5 & 6 \\\\7 & 8\\end{array}\\right] $", "$\\begin{pmatrix}5 & 6 \\\\7 & 8\\end{pmatrix}$", true},
      {"$\\begin{pmatrix}\\frac{1}{4} & \\frac{2}{3}\\end{pmatrix}$", "$\\begin{pmatrix}0.25 & \\frac{4}{6}\\end{pmatrix}$", true},
      {"$\\begin{pmatrix}\\frac{1}{2\\sqrt[3]{y}^2}\\\\-\\cos(y)\\end{pmatrix}$",
       "$\\begin{pmatrix}\\frac{1}{2y^{2/3}}\\\\-\\cos(y)\\\\\\end{pmatrix}$", true},
      {"$\\begin{pmatrix}0.142857\\\\ 0.25 \\end{pmatrix}$", "$(\\begin{pmatrix}\\frac{1}{7}\\\\ \\frac{1}{4} \\end{pmatrix})$", true},
      // near misses
      {"It is $\\begin{pmatrix}5 & 6 \\\\ 7 & 9\\end{pmatrix}$", "$\\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$", false},
      {"$\\begin{pmatrix}5 & 6\\end{pmatrix}$", "$\\begin{pmatrix}5 \\\\ 6\\end{pmatrix}$", false},
      {"$\\begin{pmatrix}0.14\\\\ 0.25 \\end{pmatrix}$", "$\\begin{pmatrix}\\frac{1}{7}\\\\ \\frac{1}{4} \\end{pmatrix}$", false},
  });
}

TEST(MathVerifyFamilies, ExpressionsAndPrecision) {
  expect_all("expressions", {
      {"$0.0714285714285714$", "$\\frac{1}{14}$", true},
      {"$\\frac{y}{9}+\\frac{4}{9}$", "$\\frac{y+4}{9}$", true},
      {"$\\sec^2(t)$", "$\\tan^2(t)+1$", true},
      {"$\\frac{\\sqrt{\\sqrt{7}+\\sqrt{90}}}{3\\sqrt{11}+8}$", "$\\frac{\\sqrt{\\sqrt{7}+\\sqrt{90}}}{8+3\\sqrt{11}}$", true},
      {"$\\sqrt{19}$", "4.358898943540674", true},
      {"$2 \\sin u \\cos v$", "$2 \\cos v \\sin u$", true},
      {"$\\frac{\\pi s}{k+s}$", "$\\frac{s \\pi}{s+k}$", true},
      // near misses
      {"$(+3)(c+4)$", "$(b+3)(c+4)$", false},
      {"$\\frac{1+\\sqrt{3}}{2}$", "$2$", false},
      {"$\\frac{25}{8}+\\frac{\\sqrt{610}}{8}$", "$6$", false},
      {"$1$", "$1\\sqrt{13}$", false},
      {"$y+1$", "$y+2m+1$", false},
      {"$5\\sqrt{3}$", "$5$", false},
      {"$1 + \\frac{1}{\\mathrm{e}}$", "$1 - \\frac{1}{\\mathrm{e}}$", false},
      {"$0.0714$", "$\\frac{1}{14}$", false},
      {"$g(t)$", "$g(s)$", false},
  });
}

}  // namespace
}  // namespace aha::reward
