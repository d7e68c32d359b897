// `aha reward score --rewards SPEC --input samples.jsonl [--output scored.jsonl] [--threads N]`:
// scores each sample line (reward/scored_jsonl.h) with the reward list SPEC
// (reward/reward_registry.h: "math_accuracy:1,format:0.5" or a JSON file) and writes each
// line back with "reward", "components" and "diagnostics" (to --output atomically, else to
// stdout). A summary (mean reward, mean of each component, failures by reward) goes to stderr.
// --threads is capped (with a note on stderr) at one per scoring call and at
// RewardRunner::kMaxThreads; every built-in reward's work ends at its timeout
// (reward/reward_runner.h), so the command exits once scoring is done.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/files.h"
#include "core/text_lines.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"
#include "reward/scored_jsonl.h"
#include "tools/cli.h"

namespace {

std::string fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", v);
  return text;
}

int reward_score(const aha::cli::Args& args) {
  const std::string command = args.command();
  const std::string input_path = args.required("input");
  const int64_t threads = args.get_int("threads", 0, 0);
  auto specs = aha::reward::parse_reward_specs(args.required("rewards"));
  // The output must not be the input (scores written over the samples) nor unwritable once
  // scoring is done.
  aha::require_regular_file({"--input", input_path});
  if (auto path = args.get("output")) aha::check_output_file({"--output", *path}, {{"--input", input_path}}, args.flag("overwrite"));

  // Read and check every line before scoring, so that a bad line fails fast.
  std::vector<std::string> lines;
  std::vector<aha::reward::ScoringInput> inputs;
  aha::for_each_nonblank_line(aha::read_jsonl_file(input_path), input_path, [&](std::string_view line, size_t number) {
    inputs.push_back(aha::reward::scoring_input_from_json_line(line, input_path + " line " + std::to_string(number)));
    lines.emplace_back(line);
    return true;
  });
  aha::require(!lines.empty(), "aha " + command + ": " + input_path + " holds no samples");

  // More threads than scoring calls, or than RewardRunner::kMaxThreads, would only wait.
  const size_t calls = lines.size() * specs.size();
  size_t thread_count = static_cast<size_t>(threads);
  if (thread_count > calls || thread_count > aha::reward::RewardRunner::kMaxThreads) {
    thread_count = std::min(calls, aha::reward::RewardRunner::kMaxThreads);
    std::cerr << "aha " << command << ": --threads " << threads << " capped to " << thread_count
              << " (at most one per scoring call and " << aha::reward::RewardRunner::kMaxThreads << ")\n";
  }
  auto start = std::chrono::steady_clock::now();
  aha::reward::RewardRunner runner(specs, thread_count);
  auto scored = runner.score(std::move(inputs));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::string output;
  for (size_t i = 0; i < lines.size(); ++i)
    output += aha::reward::scored_json_line(lines[i], scored[i]) + "\n";
  if (auto path = args.get("output"))
    aha::write_file_atomic(*path, output);
  else
    std::cout << output << std::flush;

  // Summary.
  std::map<std::string, double> component_sums;
  std::map<std::string, size_t> failures;
  std::map<std::string, std::string> first_failure;
  double total = 0;
  for (auto& s : scored) {
    total += s.total;
    for (auto& [name, v] : s.components) component_sums[name] += v;
    for (auto& [name, why] : s.errors) {
      if (failures[name]++ == 0) first_failure[name] = why;
    }
  }
  const double n = static_cast<double>(scored.size());
  std::cerr << "aha reward score: " << scored.size() << " samples, " << specs.size() << " rewards, "
            << fixed(seconds) << " s; mean reward " << fixed(total / n) << "\n";
  for (auto& [name, sum] : component_sums) std::cerr << "  " << name << ": mean " << fixed(sum / n) << "\n";
  for (auto& [name, count] : failures) {
    std::cerr << "  " << name << ": " << count << " failed (first: " << first_failure[name] << ")\n";
  }
  return 0;
}

const aha::cli::CommandRegistration kRewardScore({
    "reward score",
    "score completions: --rewards SPEC (e.g. math_accuracy:1,format:0.5 or a JSON file) --input "
    "samples.jsonl "
    "[--output scored.jsonl [--overwrite]] [--threads N (0: one per CPU; at most 256 and one per sample and reward)]",
    {.usage = "--rewards SPEC --input FILE [options]",
     .description = "Scores each sample line of FILE (\"completion\", \"gold\", ...) with the rewards of SPEC and writes\n"
                    "each line back with \"reward\", \"components\" and \"diagnostics\"; a summary goes to stderr.",
     .options = {{"rewards", "SPEC", "required", "name:weight,... (e.g. math_accuracy:1,format:0.5) or a JSON file"},
                 {"input", "FILE", "required", "the samples, JSON Lines"},
                 {"output", "FILE", "stdout", "the scored lines, written atomically"},
                 {"threads", "N", "0 (one per CPU)", "scoring threads; capped at 256 and at one per sample and reward"},
                 {"overwrite!", "", "", "replace an existing --output file"}},
     .examples = {"aha reward score --rewards math_accuracy:1,format:0.5 --input samples.jsonl --output scored.jsonl"}},
    reward_score,
});

}  // namespace
