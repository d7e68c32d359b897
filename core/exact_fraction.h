// Exact fractions of 64-bit integers with overflow detection: the arithmetic that Countdown's
// generator (datasets/countdown.h, the exhaustive solver) and its reward
// (reward/countdown_reward.h, the checker) share, so that both agree on every value.
//
// A Fraction is kept reduced with a positive denominator, so equality is member-wise. An
// operation whose exact result does not fit (numerator or denominator beyond 64 bits) reports
// overflow instead of wrapping; dividing by zero is reported too. Intermediate products are
// computed in 128 bits, so no operation of two valid fractions can overflow unnoticed.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace aha {

struct Fraction {
  int64_t num = 0, den = 1;
  bool operator==(const Fraction&) const = default;
  bool is_integer() const { return den == 1; }
  std::string to_string() const;  // "7" or "7/2"
};

// num/den reduced; nullopt when den is 0 or the reduced value does not fit in 64 bits.
std::optional<Fraction> make_fraction(__int128 num, __int128 den);

enum class FractionError { none, division_by_zero, overflow };

// out = a op b, where op is one of + - * /; out is untouched on error.
FractionError apply_operation(char op, Fraction a, Fraction b, Fraction& out);

}  // namespace aha
