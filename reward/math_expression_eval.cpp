// Evaluation of a parsed MathExpression: exact rational arithmetic, and doubles.
#include <cmath>
#include <numbers>

#include "reward/math_expression.h"

namespace aha::reward {

MathExpression::Exactness MathExpression::exact_value(Rational& value) const { return exact(root_, value); }

MathExpression::Exactness MathExpression::exact(int index, Rational& out) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::number:
      if (!n.exact_number) return Exactness::overflow;
      out = n.value;
      return Exactness::exact;
    case Op::pi:
    case Op::euler:
    case Op::variable:
      return Exactness::inexact;
    default:
      break;
  }
  Rational a, b;
  Exactness ea = exact(n.a, a);
  Exactness eb = n.b >= 0 ? exact(n.b, b) : Exactness::exact;
  if (n.op == Op::root && n.b < 0) b = Rational{2, 1};
  if (ea == Exactness::overflow || eb == Exactness::overflow) return Exactness::overflow;
  if (ea == Exactness::inexact || eb == Exactness::inexact || n.op == Op::func) return Exactness::inexact;
  std::optional<Rational> r;
  switch (n.op) {
    case Op::add:
      r = aha::reward::add(a, b);
      break;
    case Op::sub:
      r = subtract(a, b);
      break;
    case Op::mul:
      r = multiply(a, b);
      break;
    case Op::div:
      if (b.num == 0) return Exactness::inexact;  // undefined: evaluates to inf/NaN
      r = divide(a, b);
      break;
    case Op::neg:
      r = Rational{-a.num, a.den};
      break;
    case Op::abs:
      r = Rational{a.num < 0 ? -a.num : a.num, a.den};
      break;
    case Op::pow:
      if (a.num == 0 && b.num <= 0) return Exactness::inexact;
      if (b.is_integer()) {
        if (b.num > 100000 || b.num < -100000) return Exactness::overflow;
        r = power(a, static_cast<long long>(b.num));
      } else {
        if (b.den > 64) return Exactness::inexact;
        auto root = exact_root(a, static_cast<int>(b.den));
        if (!root) return Exactness::inexact;
        if (b.num > 100000 || b.num < -100000) return Exactness::overflow;
        r = power(*root, static_cast<long long>(b.num));
      }
      break;
    case Op::root: {
      if (!b.is_integer() || b.num < 2 || b.num > 64) return Exactness::inexact;
      auto root = exact_root(a, static_cast<int>(b.num));
      if (!root) return Exactness::inexact;
      r = root;
      break;
    }
    case Op::factorial: {
      if (!a.is_integer() || a.num < 0) return Exactness::inexact;
      if (a.num > 33) return Exactness::overflow;
      Rational f{1, 1};
      for (__int128 k = 2; k <= a.num; ++k) f.num *= k;
      r = f;
      break;
    }
    default:
      return Exactness::inexact;
  }
  if (!r) return Exactness::overflow;
  out = *r;
  return Exactness::exact;
}

double MathExpression::evaluate(const std::vector<double>& values) const { return eval(root_, values); }

double MathExpression::eval(int index, const std::vector<double>& values) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::number:
      return n.exact_number ? n.value.to_double() : n.approx;
    case Op::pi:
      return std::numbers::pi;
    case Op::euler:
      return std::numbers::e;
    case Op::variable:
      return values.at(static_cast<size_t>(n.index));
    default:
      break;
  }
  double a = eval(n.a, values);
  double b = n.b >= 0 ? eval(n.b, values) : 2.0;
  switch (n.op) {
    case Op::add:
      return a + b;
    case Op::sub:
      return a - b;
    case Op::mul:
      return a * b;
    case Op::div:
      return a / b;
    case Op::neg:
      return -a;
    case Op::abs:
      return std::fabs(a);
    case Op::pow:
      return std::pow(a, b);
    case Op::root:
      if (a < 0 && std::fmod(b, 2.0) == 1.0) return -std::pow(-a, 1.0 / b);
      return std::pow(a, 1.0 / b);
    case Op::factorial:
      if (a < 0 || a != std::floor(a)) return std::nan("");
      return std::tgamma(a + 1);
    case Op::func:
      switch (n.index) {
        case kSin:
          return std::sin(a);
        case kCos:
          return std::cos(a);
        case kTan:
          return std::tan(a);
        case kCot:
          return 1.0 / std::tan(a);
        case kSec:
          return 1.0 / std::cos(a);
        case kCsc:
          return 1.0 / std::sin(a);
        case kLn:
          return std::log(a);
        case kExp:
          return std::exp(a);
        case kArcsin:
          return std::asin(a);
        case kArccos:
          return std::acos(a);
        case kArctan:
          return std::atan(a);
      }
      return std::nan("");
    default:
      return std::nan("");
  }
}

}  // namespace aha::reward
