// Per-rank step metrics (name, value) made global, in place, on every rank, by what each name
// says it is:
//   "..._max" the maximum over ranks, "..._min" the minimum,
//   "perf/..._seconds" the maximum (the step waits for the slowest rank),
//   "perf/...tokens_per_s" the sum (throughput of the world),
//   "X_std" next to "X": the standard deviation of the union, from the ranks' means and
//   standard deviations (exact for equal shares, which data parallelism gives),
//   anything else: the mean over ranks (per-rank means of equal shares).
// Names in `already_global` are left alone (e.g. the learner's, which it reduced itself).
// Every rank must pass the same names in the same order; a different count is an error.
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/parallel/communicator.h"

namespace aha::parallel {

void reduce_metrics(Communicator& comm, std::vector<std::pair<std::string, double>>& metrics,
                    const std::set<std::string>& already_global = {});

}  // namespace aha::parallel
