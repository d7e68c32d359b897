// `aha data`: makes synthetic data sets and shows how a JSONL file is read.
//
//   aha data generate --task arithmetic|countdown --n N --seed S [--difficulty 1..5]
//                     [--split train|heldout] --out FILE.jsonl [--overwrite]
//       N generated examples as JSON Lines in the `plain` format (id, source, kind, prompt,
//       answer, metadata), which `--format plain` and the recipes read back.
//   aha data generate --task corpus --n N --seed S [--difficulty D] [--split S] --out FILE.txt
//       a pretraining text of N worked problems ("Question: ...\nAnswer: ... The answer is N.").
//   An --out file with content is replaced only with --overwrite.
//   aha data inspect --format gsm8k|math|aime|humaneval|mbpp|plain FILE [--limit N] [--every N]
//                    [--prompt-field NAME] [--answer-field NAME]
//       the parsed examples, one JSON object a line, as the pipeline will see them.
#include <iostream>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/files.h"
#include "datasets/jsonl_loader.h"
#include "datasets/problem_counts.h"
#include "datasets/synthetic_tasks.h"
#include "tools/cli.h"

namespace aha {
namespace {

int run_generate(const cli::Args& args) {
  std::string task = args.required("task");
  if (task != "arithmetic" && task != "countdown" && task != "corpus")
    throw Error("--task must be arithmetic, countdown or corpus, got '" + task + "'");
  args.required("n");
  const size_t n = static_cast<size_t>(args.get_int("n", 1, 1));
  args.required("seed");
  const auto seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
  const int difficulty = static_cast<int>(args.get_int("difficulty", 2, 1, 5));
  Split split = parse_split(args.get("split", "train"));
  std::string out = args.required("out");
  // Everything that can fail without generating fails first: the output path, and a request
  // for more distinct problems than the task has (which would otherwise draw for minutes).
  check_output_file({"--out", out}, {}, args.flag("overwrite"));
  // A corpus is two arithmetic problems for each Countdown one (generate_pretraining_corpus).
  const size_t countdowns = task == "corpus" ? n / 3 : task == "countdown" ? n : 0;
  const size_t arithmetics = task == "corpus" ? n - n / 3 : task == "arithmetic" ? n : 0;
  auto check_possible = [&](const std::string& kind, size_t wanted, uint64_t most) {
    if (wanted <= most) return;
    throw Error("--n " + std::to_string(n) + (task == "corpus" ? " asks for " + std::to_string(wanted) + " " + kind +
                                                                     " problems, which" : "") +
                " is more than the " + std::to_string(most) + " distinct " + split_name(split) + " problems " + kind +
                " --difficulty " + std::to_string(difficulty) + " can produce (at most); lower --n or raise --difficulty");
  };
  if (arithmetics > 0)
    check_possible("arithmetic", arithmetics, max_distinct_problems(ArithmeticConfig::for_difficulty(difficulty), split));
  if (countdowns > 0)
    check_possible("countdown", countdowns, max_distinct_problems(CountdownConfig::for_difficulty(difficulty), split));

  std::string text;
  if (task == "corpus") {
    text = generate_pretraining_corpus(n, seed, difficulty, split);
  } else {
    std::vector<Example> examples =
        task == "arithmetic" ? generate_arithmetic(n, seed, ArithmeticConfig::for_difficulty(difficulty), split)
                             : generate_countdown(n, seed, CountdownConfig::for_difficulty(difficulty), split);
    for (const auto& ex : examples) text += example_to_json_line(ex) + "\n";
  }
  write_file_atomic(out, text);
  std::cerr << "wrote " << n << (task == "corpus" ? " worked problems" : " examples") << " (" << split_name(split)
            << ", difficulty " << difficulty << ", seed " << seed << ") to " << out << "\n";
  return 0;
}

int run_inspect(const cli::Args& args) {
  std::string file = args.positional(0, "the JSONL file");
  JsonlOptions options;
  options.format = parse_jsonl_format(args.required("format"));
  options.limit = static_cast<size_t>(args.get_int("limit", 0, 1));
  options.every_nth = static_cast<size_t>(args.get_int("every", 1, 1));
  if (options.format != JsonlFormat::plain && (args.get("prompt-field") || args.get("answer-field")))
    throw Error("--prompt-field and --answer-field apply to --format plain only");
  options.prompt_field = args.get("prompt-field", options.prompt_field);
  options.answer_field = args.get("answer-field", options.answer_field);
  for (const auto& ex : load_jsonl(file, options)) std::cout << example_to_json_line(ex) << "\n";
  return 0;
}

const cli::CommandRegistration kGenerate(
    {"data generate", "write synthetic arithmetic or Countdown examples (JSONL), or a pretraining corpus, to --out "
     "(an existing file only with --overwrite)",
     {.usage = "--task TASK --n N --seed S --out FILE [options]",
      .description = "Writes N generated examples: arithmetic or countdown as JSON Lines in the `plain` format (id,\n"
                     "source, kind, prompt, answer, metadata), which `--format plain` and the recipes read back;\n"
                     "corpus as a pretraining text of N worked problems (\"Question: ...\\nAnswer: ...\").",
      .options = {{"task", "TASK", "required", "arithmetic, countdown or corpus"},
                  {"n", "N", "required", "how many examples (at least 1)"},
                  {"seed", "S", "required", "seed of the generator (>= 0)"},
                  {"difficulty", "D", "2", "1..5"},
                  {"split", "SPLIT", "train", "train or heldout (disjoint problems)"},
                  {"out", "FILE", "required", "the output file"},
                  {"overwrite!", "", "", "replace an --out file that has content"}},
      .examples = {"aha data generate --task arithmetic --n 1000 --seed 1 --out data/arith.jsonl",
                   "aha data generate --task corpus --n 5000 --seed 2 --out data/corpus.txt"}},
     run_generate});
const cli::CommandRegistration kInspect(
    {"data inspect", "print a JSONL data set's examples as parsed (--format gsm8k|math|aime|humaneval|mbpp|plain)",
     {.usage = "FILE --format FORMAT [options]",
      .description = "Prints the examples of the JSON Lines file FILE as the pipeline reads them, one JSON object\n"
                     "a line (prompt, answer, kind, metadata).",
      .options = {{"format", "FORMAT", "required", "gsm8k, math, aime, humaneval, mbpp or plain"},
                  {"limit", "N", "0 (all)", "read at most N examples"},
                  {"every", "N", "1", "keep every N-th example"},
                  {"prompt-field", "NAME", "prompt", "the prompt's field (--format plain only)"},
                  {"answer-field", "NAME", "answer", "the answer's field (--format plain only)"}},
      .max_positional = 1,
      .examples = {"aha data inspect --format gsm8k gsm8k/test.jsonl --limit 3"}},
     run_inspect});

}  // namespace
}  // namespace aha
