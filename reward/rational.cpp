#include "reward/rational.h"

#include <cmath>

namespace aha::reward {
namespace {

__int128 gcd(__int128 a, __int128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    __int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

constexpr __int128 kMax = (static_cast<__int128>(1) << 125);  // headroom for negation

bool mul(__int128 a, __int128 b, __int128& out) {
  return !__builtin_mul_overflow(a, b, &out) && out < kMax && out > -kMax;
}
bool sum(__int128 a, __int128 b, __int128& out) {
  return !__builtin_add_overflow(a, b, &out) && out < kMax && out > -kMax;
}

// The exact integer k-th root of n >= 0, or -1.
__int128 integer_root(__int128 n, int k) {
  if (n < 2) return n;
  double guess = std::pow(static_cast<double>(n), 1.0 / k);
  __int128 base = static_cast<__int128>(std::llround(guess));
  for (__int128 r = base > 1 ? base - 1 : 0; r <= base + 1; ++r) {
    __int128 p = 1;
    bool ok = true;
    for (int i = 0; i < k && ok; ++i) ok = mul(p, r, p);
    if (ok && p == n) return r;
  }
  return -1;
}

}  // namespace

std::optional<Rational> Rational::make(__int128 num, __int128 den) {
  if (den == 0) return std::nullopt;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  __int128 g = gcd(num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  return Rational{num, den};
}

std::string Rational::to_string() const {
  auto text = [](__int128 v) {
    if (v == 0) return std::string("0");
    bool negative = v < 0;
    std::string digits;
    while (v != 0) {
      int d = static_cast<int>(v % 10);
      digits.insert(digits.begin(), static_cast<char>('0' + (d < 0 ? -d : d)));
      v /= 10;
    }
    return negative ? "-" + digits : digits;
  };
  return den == 1 ? text(num) : text(num) + "/" + text(den);
}

std::optional<Rational> add(const Rational& a, const Rational& b) {
  __int128 x, y, n, d;
  if (!mul(a.num, b.den, x) || !mul(b.num, a.den, y) || !sum(x, y, n) || !mul(a.den, b.den, d))
    return std::nullopt;
  return Rational::make(n, d);
}

std::optional<Rational> subtract(const Rational& a, const Rational& b) {
  return add(a, Rational{-b.num, b.den});
}

std::optional<Rational> multiply(const Rational& a, const Rational& b) {
  // Cross-reduce first so that products stay small.
  __int128 g1 = gcd(a.num, b.den), g2 = gcd(b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  __int128 n, d;
  if (!mul(a.num / g1, b.num / g2, n) || !mul(a.den / g2, b.den / g1, d)) return std::nullopt;
  return Rational::make(n, d);
}

std::optional<Rational> divide(const Rational& a, const Rational& b) {
  if (b.num == 0) return std::nullopt;
  return multiply(a, b.num < 0 ? Rational{-b.den, -b.num} : Rational{b.den, b.num});
}

std::optional<Rational> power(const Rational& a, long long n) {
  if (n < 0) {
    if (a.num == 0) return std::nullopt;
    auto positive = power(a, -n);
    if (!positive) return std::nullopt;
    return divide(Rational{1, 1}, *positive);
  }
  if (n > 512) {
    if (a.num == 0 || ((a.num == 1 || a.num == -1) && a.den == 1)) {
      return Rational{a.num == 0 ? 0 : (n % 2 == 0 ? 1 : a.num), 1};
    }
    return std::nullopt;
  }
  Rational result{1, 1}, base = a;
  while (n > 0) {
    if (n & 1) {
      auto r = multiply(result, base);
      if (!r) return std::nullopt;
      result = *r;
    }
    n >>= 1;
    if (n > 0) {
      auto b = multiply(base, base);
      if (!b) return std::nullopt;
      base = *b;
    }
  }
  return result;
}

std::optional<Rational> exact_root(const Rational& a, int k) {
  if (k < 2) return std::nullopt;
  bool negative = a.num < 0;
  if (negative && k % 2 == 0) return std::nullopt;
  __int128 n = integer_root(negative ? -a.num : a.num, k);
  __int128 d = integer_root(a.den, k);
  if (n < 0 || d < 0) return std::nullopt;
  return Rational::make(negative ? -n : n, d);
}

}  // namespace aha::reward
