// `aha train`: runs a recipe (recipes/runner/recipe.h, recipes/runner/grpo_stage.h).
//
//   aha train RECIPE.json [--run-dir DIR] [--set key.path=value ...] [--resume] [--quiet]
//                         [--stop-after N]   (stop after N steps; continue later with --resume)
//                         [--check]          (validate everything and print the plan; train nothing)
//                         [--nproc-per-node G] [--backend auto|gloo|nccl] [--dist-timeout S]
//                                            (data parallel: G local ranks, or under torchrun/srun)
//
// Prints where the run lives and the `aha dashboard` command that shows it live, a progress bar (step, ETA, reward, accuracy, response length,
// last held-out accuracy), and at the end the held-out accuracy before and after training.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "core/error.h"
#include "core/progress_bar.h"
#include "recipes/runner/grpo_stage.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/world.h"
#include "recipes/runner/recipe_check.h"
#include "recipes/runner/stage_graph.h"
#include "tools/cli.h"
#include "tools/local_launcher.h"

namespace aha {
namespace {

std::string value_or_dash(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", it->second);
  return text;
}

// The command that shows this run in `aha dashboard`, and the page to open.
std::string dashboard_command(const std::filesystem::path& run_dir) {
  const auto absolute = std::filesystem::absolute(run_dir).lexically_normal();
  auto dir = absolute.has_filename() ? absolute : absolute.parent_path();
  const std::string parent = dir.parent_path().string(), name = dir.filename().string();
  return "aha dashboard --runs '" + parent + "'   then open http://127.0.0.1:8265/#/run/" + name;
}

// --check: every problem on its own line, then the plan; exit status 1 when there is a problem.
int print_check(const recipes::RecipeCheck& check) {
  for (const auto& item : check.items)
    std::cout << (item.ok ? "ok       " : "PROBLEM  ") << item.what << ": " << item.detail << "\n";
  std::cout << "\nthe run would do:\n";
  for (const auto& line : check.plan) std::cout << "  " << line << "\n";
  const auto problems = std::count_if(check.items.begin(), check.items.end(), [](const auto& i) { return !i.ok; });
  std::cout << "\n" << (problems == 0 ? std::string("recipe ok: nothing was trained or written")
                                      : std::to_string(problems) + " problem(s): the run would stop at the first")
            << "\n";
  return problems == 0 ? 0 : 1;
}

int check_train(const recipes::Recipe& recipe, const recipes::RunOptions& options) {
  return print_check(recipes::check_recipe(recipe, options));
}

// A recipe with "stages" (recipes/runner/stage_graph.h): the stages in order, then one row
// per stage of its last held-out evaluation.
int run_staged_train(const std::string& file, const cli::Args& args, const recipes::RunOptions& options) {
  auto recipe = recipes::load_staged_recipe(file, args.list("set"));
  if (args.flag("check")) return print_check(recipes::check_staged_recipe(recipe, options));
  const auto run_dir = options.run_dir.empty() ? std::filesystem::path("runs") / recipe.name : options.run_dir;
  std::cerr << "aha train: recipe " << file << " (" << recipe.stages.size() << " stages), run directory "
            << run_dir.string() << "\n";
  std::cerr << "watch it live: " << dashboard_command(run_dir) << "\n";
  const auto summary = recipes::run_staged(recipe, options);
  std::cout << "run " << recipe.name << ": " << (summary.finished ? "all stages done" : "stopped early: continue with --resume")
            << " in " << ProgressBar::format_duration(summary.seconds) << "\n";
  std::printf("%-16s %-17s %-9s %9s %9s %9s %9s\n", "stage", "kind", "status", "accuracy", "format", "lang_mix",
              "length");
  // A rejection_sample stage evaluates nothing: its row's length is its kept samples' mean
  // tokens, and a line below the table says what it kept.
  for (const auto& s : summary.stages)
    std::printf("%-16s %-17s %-9s %9s %9s %9s %9s\n", s.name.c_str(), s.kind.c_str(), s.status.c_str(),
                value_or_dash(s.eval, "eval/accuracy").c_str(), value_or_dash(s.eval, "eval/format_rate").c_str(),
                value_or_dash(s.eval, "eval/language_mix_rate").c_str(),
                value_or_dash(s.eval, s.eval.count("rejection/kept_tokens_mean") ? "rejection/kept_tokens_mean"
                                                                                  : "eval/mean_response_tokens")
                    .c_str());
  for (const auto& s : summary.stages) {
    auto count = [&](const char* key) {
      auto it = s.eval.find(key);
      return it == s.eval.end() ? std::string("-") : std::to_string(static_cast<long long>(it->second));
    };
    if (s.eval.count("rejection/kept"))
      std::cout << "stage " << s.name << ": kept " << count("rejection/kept") << " of " << count("rejection/sampled")
                << " samples from " << count("rejection/prompts") << " prompts ("
                << count("rejection/prompts_without_kept") << " with none kept)\n";
  }
  std::cout << "metrics and samples: " << (summary.run_dir / "run.db").string() << "\n";
  for (const auto& s : summary.stages)
    if (!s.output.empty()) std::cout << "stage " << s.name << " output: " << s.output.string() << "\n";
  return 0;
}

int run_train(const cli::Args& args) {
  const std::string file = args.positional(0, "RECIPE (a recipe JSON file, e.g. recipes/r1-zero-tiny.json)");
  const int nproc = static_cast<int>(args.get_int("nproc-per-node", 1, 1, 4096));
  parallel::ParallelOptions parallel_options;
  parallel_options.backend = parallel::parse_backend(args.get("backend", "auto"));
  parallel_options.timeout_seconds = static_cast<double>(args.get_int("dist-timeout", 600, 1, 86400));
  parallel_options.heartbeat_timeout_seconds =
      static_cast<double>(args.get_int("heartbeat-timeout", 60, 2, 86400));
  recipes::RunOptions options;
  options.run_dir = args.get("run-dir", "");
  options.resume = args.flag("resume");
  options.progress = !args.flag("quiet");
  options.stop_after_steps = args.get_int("stop-after", 0, 0);
  if (recipes::is_staged_recipe(file, args.list("set"))) {
    require(nproc == 1 && !parallel::world_from_environment().distributed(),
            "aha train: " + file + " is a multi-stage recipe, which runs in one process for now; "
            "--nproc-per-node, torchrun and srun run single-stage GRPO recipes");
    return run_staged_train(file, args, options);
  }
  auto recipe = recipes::load_recipe(file, args.list("set"));  // checked before any rank starts
  if (nproc > 1 && !args.flag("check")) {
    recipes::checked_run_dir(recipe, options);  // the run directory's problems once, before any rank starts
    return launch_local_ranks(nproc);
  }
  if (args.flag("check")) {
    const auto launched = parallel::world_from_environment();
    options.check_ranks = nproc > 1 ? nproc : launched.world_size;
    return check_train(recipe, options);
  }
  const auto world = parallel::world_from_environment();
  if (world.distributed()) {
    options.comm = parallel::Communicator::connect(world, parallel_options, recipes::choose_device(recipe.model.device));
    if (!world.is_main()) {
      // Rank 0 reports; the others only train (and print their errors).
      options.progress = false;
      recipes::run_grpo(recipe, options);
      options.comm->finish();
      return 0;
    }
  }
  const auto run_dir = options.run_dir.empty() ? std::filesystem::path("runs") / recipe.name : options.run_dir;
  std::cerr << "aha train: recipe " << file << ", run directory " << run_dir.string() << "\n";
  if (options.comm)
    std::cerr << "data parallel: " << world.world_size << " ranks (" << world.launcher << "), backend "
              << options.comm->backend_name() << "\n";
  std::cerr << "watch it live: " << dashboard_command(run_dir) << "\n";
  auto summary = recipes::run_grpo(recipe, options);
  if (options.comm) options.comm->finish();

  std::cout << "run " << recipe.name << ": " << summary.steps << " steps in "
            << ProgressBar::format_duration(summary.seconds)
            << (summary.steps < recipe.schedule.steps ? " (stopped early: continue with --resume)" : "") << "\n";
  std::set<std::string> eval_names;  // a run stopped early has only its first evaluation
  for (const auto& [name, value] : summary.eval_first) eval_names.insert(name);
  for (const auto& [name, value] : summary.eval_last) eval_names.insert(name);
  if (!eval_names.empty()) {
    std::printf("%-36s %10s %10s\n", "held-out metric", "before", "after");
    for (const auto& name : eval_names)
      std::printf("%-36s %10s %10s\n", name.c_str(), value_or_dash(summary.eval_first, name).c_str(),
                  value_or_dash(summary.eval_last, name).c_str());
  }
  std::cout << "metrics and samples: " << (summary.run_dir / "run.db").string() << "\n";
  if (!summary.final_checkpoint.empty())
    std::cout << "final model (Hugging Face format): " << (summary.final_checkpoint / "model").string() << "\n";
  return 0;
}

const cli::CommandRegistration kTrain(
    {"train", "run a training recipe (GRPO): aha train recipes/r1-zero-tiny.json [--set k=v] [--resume]",
     {.usage = "RECIPE.json [options]",
      .description = "Runs a training recipe (recipes/README.md says every key): GRPO steps with held-out\n"
                     "evaluations, a progress bar on stderr, and at the end the held-out accuracy before and after.",
      .options = {{"run-dir", "DIR", "runs/<recipe name>", "the run directory (run.db, checkpoints, exports)"},
                  {"set", "KEY.PATH=VALUE", "", "override one recipe key; repeatable"},
                  {"resume!", "", "", "continue the run in the run directory from its last checkpoint"},
                  {"quiet!", "", "", "no progress bar"},
                  {"stop-after", "N", "0 (run all steps)", "stop after N steps; continue later with --resume"},
                  {"check!", "", "", "validate data, rewards, model, run directory and memory plan, print the plan, train nothing"},
                  {"nproc-per-node", "G", "1", "data parallel: start G ranks on this machine (one per GPU, or CPU processes with Gloo)"},
                  {"backend", "auto|gloo|nccl", "auto", "data parallel: NCCL when every rank has a GPU, else Gloo"},
                  {"dist-timeout", "SECONDS", "600", "data parallel: a collective that takes longer fails"},
                  {"heartbeat-timeout", "SECONDS", "60", "data parallel: a rank silent this long is dead or hung, and every rank stops"}},
      .max_positional = 1,
      .examples = {"aha train recipes/r1-zero-tiny.json",
                   "aha train recipes/r1-zero.json --set model.path=/models/Qwen2.5-1.5B --check",
                   "aha train recipes/r1-zero.json --set model.path=/models/Qwen2.5-1.5B --stop-after 10",
                   "aha train recipes/r1-zero-gpu.json --nproc-per-node 4",
                   "torchrun --nproc-per-node 4 --no-python aha train recipes/r1-zero-gpu.json"}},
     run_train});

}  // namespace
}  // namespace aha
