#include "policy/parallel/metric_reduction.h"

#include <cmath>
#include <map>

#include "core/error.h"

namespace aha::parallel {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }

enum class Rule { mean, max, min, sum, std, skip };

}  // namespace

void reduce_metrics(Communicator& comm, std::vector<std::pair<std::string, double>>& metrics,
                    const std::set<std::string>& already_global) {
  const double n = static_cast<double>(metrics.size());
  auto counts = comm.all_reduce({n, -n}, c10d::ReduceOp::MAX, "all-reduce of the step metrics' count");
  require(counts[0] == -counts[1], "data parallel: the ranks have different step metrics (" +
                                       std::to_string(metrics.size()) + " here, up to " +
                                       std::to_string(int64_t(counts[0])) + " elsewhere)");
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < metrics.size(); ++i) index[metrics[i].first] = i;
  std::vector<Rule> rules;
  for (const auto& [name, v] : metrics) {
    Rule r = Rule::mean;
    if (already_global.count(name))
      r = Rule::skip;
    else if (ends_with(name, "_max"))
      r = Rule::max;
    else if (ends_with(name, "_min"))
      r = Rule::min;
    else if (starts_with(name, "perf/") && ends_with(name, "_seconds"))
      r = Rule::max;
    else if (starts_with(name, "perf/") && ends_with(name, "tokens_per_s"))
      r = Rule::sum;
    else if (ends_with(name, "_std") && index.count(name.substr(0, name.size() - 4)))
      r = Rule::std;
    rules.push_back(r);
  }
  // One SUM all-reduce (means, sums, and E[x^2] for the std pairs), one MAX (max, -min).
  std::vector<double> sums, extremes;
  for (size_t i = 0; i < metrics.size(); ++i) {
    const double v = metrics[i].second;
    if (rules[i] == Rule::std) {
      const double mean = metrics[index[metrics[i].first.substr(0, metrics[i].first.size() - 4)]].second;
      sums.push_back(v * v + mean * mean);
    } else if (rules[i] == Rule::mean || rules[i] == Rule::sum) {
      sums.push_back(v);
    } else if (rules[i] == Rule::max || rules[i] == Rule::min) {
      extremes.push_back(rules[i] == Rule::max ? v : -v);
    }
  }
  sums = comm.all_reduce(sums, c10d::ReduceOp::SUM, "all-reduce of the step metrics");
  extremes = comm.all_reduce(extremes, c10d::ReduceOp::MAX, "all-reduce of the step metrics");
  const double world = comm.size();
  std::vector<double> out(metrics.size());
  size_t s = 0, e = 0;
  for (size_t i = 0; i < metrics.size(); ++i) {
    switch (rules[i]) {
      case Rule::mean: out[i] = sums[s++] / world; break;
      case Rule::sum: out[i] = sums[s++]; break;
      case Rule::std: out[i] = sums[s++] / world; break;  // E[x^2] for now
      case Rule::max: out[i] = extremes[e++]; break;
      case Rule::min: out[i] = -extremes[e++]; break;
      case Rule::skip: out[i] = metrics[i].second; break;
    }
  }
  for (size_t i = 0; i < metrics.size(); ++i) {
    if (rules[i] != Rule::std) continue;
    const double mean = out[index[metrics[i].first.substr(0, metrics[i].first.size() - 4)]];
    out[i] = std::sqrt(std::max(0.0, out[i] - mean * mean));
  }
  for (size_t i = 0; i < metrics.size(); ++i) metrics[i].second = out[i];
}

}  // namespace aha::parallel
