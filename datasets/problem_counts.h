// How many distinct problems a synthetic task configuration can produce (synthetic_tasks.h),
// so that an impossible request (`--n 100000` of a task that has 1,572 problems) fails at
// once, naming n and the maximum, instead of drawing candidates for minutes before giving up.
//
// Contract: the result is never below the true number of distinct problems of the split (so a
// possible request is never refused). It is exact where counting is cheap: arithmetic with at
// most kExactProblemLimit problems over both splits, Countdown with at most
// kExactMultisetLimit multisets of numbers (each is solved exhaustively). Beyond that it is
// an upper bound: every arithmetic problem of both splits, or for Countdown the number of
// multisets times the number of targets in range. Saturates at UINT64_MAX.
#pragma once
#include <cstdint>

#include "datasets/synthetic_tasks.h"

namespace aha {

constexpr uint64_t kExactProblemLimit = 200'000;
constexpr uint64_t kExactMultisetLimit = 3'000;

uint64_t max_distinct_problems(const ArithmeticConfig& config, Split split);
uint64_t max_distinct_problems(const CountdownConfig& config, Split split);

}  // namespace aha
