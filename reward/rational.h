// Exact rational numbers over __int128 with overflow detection, for the math verifier.
//
// Every operation returns std::nullopt instead of overflowing (or dividing by zero), so that a
// caller can tell "not representable exactly" from a wrong value. Values are kept reduced with
// a positive denominator, so equality is member-wise.
#pragma once
#include <optional>
#include <string>

namespace aha::reward {

struct Rational {
  __int128 num = 0;
  __int128 den = 1;

  static std::optional<Rational> make(__int128 num, __int128 den);
  bool is_integer() const { return den == 1; }
  double to_double() const { return static_cast<double>(num) / static_cast<double>(den); }
  bool operator==(const Rational& other) const { return num == other.num && den == other.den; }
  std::string to_string() const;  // "n" or "n/d"
};

std::optional<Rational> add(const Rational& a, const Rational& b);
std::optional<Rational> subtract(const Rational& a, const Rational& b);
std::optional<Rational> multiply(const Rational& a, const Rational& b);
std::optional<Rational> divide(const Rational& a, const Rational& b);
// a^n for an integer n (|n| small enough not to overflow); nullopt for 0^-n.
std::optional<Rational> power(const Rational& a, long long n);
// The exact k-th root (k >= 2) when a is a perfect k-th power of a rational, else nullopt.
std::optional<Rational> exact_root(const Rational& a, int k);

}  // namespace aha::reward
