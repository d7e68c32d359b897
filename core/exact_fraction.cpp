#include "core/exact_fraction.h"

#include <limits>

namespace aha {
namespace {

__int128 abs128(__int128 v) { return v < 0 ? -v : v; }

__int128 gcd128(__int128 a, __int128 b) {
  a = abs128(a);
  b = abs128(b);
  while (b != 0) {
    __int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

}  // namespace

std::string Fraction::to_string() const {
  return den == 1 ? std::to_string(num) : std::to_string(num) + "/" + std::to_string(den);
}

std::optional<Fraction> make_fraction(__int128 num, __int128 den) {
  if (den == 0) return std::nullopt;
  if (den < 0) num = -num, den = -den;
  __int128 g = gcd128(num, den);
  if (g > 1) num /= g, den /= g;
  // The lower bound leaves out INT64_MIN, so that negating a value never overflows.
  constexpr __int128 lo = std::numeric_limits<int64_t>::min() + 1, hi = std::numeric_limits<int64_t>::max();
  if (num < lo || num > hi || den > hi) return std::nullopt;
  return Fraction{static_cast<int64_t>(num), static_cast<int64_t>(den)};
}

FractionError apply_operation(char op, Fraction a, Fraction b, Fraction& out) {
  __int128 an = a.num, ad = a.den, bn = b.num, bd = b.den;
  std::optional<Fraction> r;
  switch (op) {
    case '+': r = make_fraction(an * bd + bn * ad, ad * bd); break;
    case '-': r = make_fraction(an * bd - bn * ad, ad * bd); break;
    case '*': r = make_fraction(an * bn, ad * bd); break;
    default:
      if (bn == 0) return FractionError::division_by_zero;
      r = make_fraction(an * bd, ad * bn);
  }
  if (!r) return FractionError::overflow;
  out = *r;
  return FractionError::none;
}

}  // namespace aha
