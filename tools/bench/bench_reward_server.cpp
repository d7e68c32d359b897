// bench_reward_server --kind math|code [--data DIR] [--servers H:P,...] [--threads N] [--items N]:
// reward throughput scored here (RewardRunner on N threads) and on reward servers
// (RemoteScorer over `aha serve rewards`), the same inputs. tools/bench/reward_server.sh
// starts the servers and runs this for 1 and 2 of them.
//
// Figures (one line each, with the ratio to scoring here):
// - math: math_accuracy verifications/s on MATH-500 completions (each record's \boxed answer
//   from its solution, scored against the solution);
// - code: sandboxed executions/s of the code reward on MBPP (each record's reference program
//   run against its asserts).
// DIR is the repository's data/ folder. The servers must serve exactly the rewards of --kind
// ("math_accuracy", or [{"name": "code", "kind": "code"}]).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/json.h"
#include "reward/math_answer.h"
#include "reward/remote/remote_scorer.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"
#include "tools/bench/items_per_second.h"

namespace {

using namespace aha::reward;

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<ScoringInput> read_items(const std::string& kind, const std::filesystem::path& data, size_t n) {
  const auto file = data / (kind == "math" ? "math500/test.jsonl" : "mbpp/test.jsonl");
  std::ifstream in(file);
  if (!in) throw aha::Error("cannot read " + file.string() + " (pass --data DIR)");
  std::vector<ScoringInput> items;
  for (std::string line; items.size() < n && std::getline(in, line);) {
    if (line.empty()) continue;
    auto doc = aha::json::parse(line, file.string());
    ScoringInput item;
    if (kind == "math") {
      const std::string solution = doc["solution"].GetString();
      item.example.gold = solution;
      item.completion.text = "<think>worked</think>\n<answer>\\boxed{" + extract_gold_answer(solution) + "}</answer>";
    } else {
      item.example.task = TaskKind::code;
      for (auto& t : doc["test_list"].GetArray()) item.example.tests.push_back(t.GetString());
      for (auto& t : doc["test_imports"].GetArray()) item.example.test_setup += std::string(t.GetString()) + "\n";
      item.completion.text = std::string("```python\n") + doc["code"].GetString() + "\n```";
    }
    items.push_back(std::move(item));
  }
  return items;
}

double rate(Scorer& scorer, const std::vector<ScoringInput>& items, double* mean) {
  return aha::bench::items_per_second(items.size(), [&] {
    const auto scored = scorer.score(items);
    double sum = 0;
    for (auto& s : scored) sum += s.total;
    *mean = sum / static_cast<double>(scored.size());
    return static_cast<size_t>(sum);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string kind = "math", servers;
  std::filesystem::path data = "data";
  size_t threads = 0, n = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--kind") kind = value;
    else if (key == "--data") data = value;
    else if (key == "--servers") servers = value;
    else if (key == "--threads") threads = std::stoul(value);
    else if (key == "--items") n = std::stoul(value);
    else {
      std::cerr << "bench_reward_server: unknown option " << key << "\n";
      return 2;
    }
  }
  if (kind != "math" && kind != "code") {
    std::cerr << "bench_reward_server: --kind is math or code\n";
    return 2;
  }
  try {
    if (n == 0) n = kind == "math" ? 500 : 64;
    const auto specs = parse_reward_specs(kind == "math" ? "math_accuracy" : R"([{"name": "code", "kind": "code"}])");
    const auto items = read_items(kind, data, n);
    const char* what = kind == "math" ? "math verifications/s" : "sandboxed code executions/s";
    RewardRunner local(specs, threads);
    double mean_local = 0, mean_remote = 0;
    const double here = rate(local, items, &mean_local);
    std::printf("%s, here (RewardRunner, %zu threads): %.1f  (%zu items, mean reward %.3f)\n", what, local.threads(), here,
                items.size(), mean_local);
    if (servers.empty()) return 0;
    remote::RemoteScoringOptions options;
    options.servers = split(servers);
    remote::RemoteScorer remote(specs, options);
    const double there = rate(remote, items, &mean_remote);
    std::printf("%s, %zu reward server(s) over loopback: %.1f  (%.2fx here; mean reward %.3f%s)\n", what,
                options.servers.size(), there, there / here, mean_remote,
                mean_remote == mean_local ? ", the same" : ", DIFFERS");
  } catch (const std::exception& e) {
    std::cerr << "bench_reward_server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
