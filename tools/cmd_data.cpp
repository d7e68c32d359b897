// `aha data`: makes synthetic data sets and shows how a JSONL file is read.
//
//   aha data generate --task arithmetic|countdown --n N --seed S [--difficulty 1..5]
//                     [--split train|heldout] --out FILE.jsonl
//       N generated examples as JSON Lines in the `plain` format (id, source, kind, prompt,
//       answer, metadata), which `--format plain` and the recipes read back.
//   aha data generate --task corpus --n N --seed S [--difficulty D] [--split S] --out FILE.txt
//       a pretraining text of N worked problems ("Question: ...\nAnswer: ... The answer is N.").
//   aha data inspect --format gsm8k|math|aime|humaneval|mbpp|plain FILE [--limit N] [--every N]
//                    [--prompt-field NAME] [--answer-field NAME]
//       the parsed examples, one JSON object a line, as the pipeline will see them.
#include <iostream>

#include "core/error.h"
#include "core/files.h"
#include "datasets/jsonl_loader.h"
#include "datasets/synthetic_tasks.h"
#include "tools/cli.h"

namespace aha {
namespace {

int64_t positive(const cli::Args& args, const std::string& name, int64_t fallback) {
  int64_t v = args.get_int(name, fallback);
  if (v < 1) throw Error("--" + name + " must be at least 1, got " + std::to_string(v));
  return v;
}

int run_generate(const std::vector<std::string>& words) {
  cli::Args args(words, {"task", "n", "seed", "difficulty", "split", "out"}, "data generate");
  if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "'");
  std::string task = args.required("task");
  args.required("n");
  size_t n = static_cast<size_t>(positive(args, "n", 1));
  args.required("seed");
  int64_t seed = args.get_int("seed", 0);
  if (seed < 0) throw Error("--seed must be a non-negative integer, got " + std::to_string(seed));
  int difficulty = static_cast<int>(args.get_int("difficulty", 2));
  Split split = parse_split(args.get("split", "train"));
  std::string out = args.required("out");

  std::string text;
  if (task == "corpus") {
    text = generate_pretraining_corpus(n, static_cast<uint64_t>(seed), difficulty, split);
  } else {
    std::vector<Example> examples;
    if (task == "arithmetic")
      examples =
          generate_arithmetic(n, static_cast<uint64_t>(seed), ArithmeticConfig::for_difficulty(difficulty), split);
    else if (task == "countdown")
      examples = generate_countdown(n, static_cast<uint64_t>(seed), CountdownConfig::for_difficulty(difficulty), split);
    else
      throw Error("--task must be arithmetic, countdown or corpus, got '" + task + "'");
    for (const auto& ex : examples) text += example_to_json_line(ex) + "\n";
  }
  write_file_atomic(out, text);
  std::cerr << "wrote " << n << (task == "corpus" ? " worked problems" : " examples") << " (" << split_name(split)
            << ", difficulty " << difficulty << ", seed " << seed << ") to " << out << "\n";
  return 0;
}

int run_inspect(const std::vector<std::string>& words) {
  cli::Args args(words, {"format", "limit", "every", "prompt-field", "answer-field"}, "data inspect");
  std::string file = args.positional(0, "the JSONL file");
  if (args.positional().size() > 1) throw Error("expected one file, got " + std::to_string(args.positional().size()));
  JsonlOptions options;
  options.format = parse_jsonl_format(args.required("format"));
  options.limit = static_cast<size_t>(args.get("limit") ? positive(args, "limit", 1) : 0);
  options.every_nth = static_cast<size_t>(positive(args, "every", 1));
  if (options.format != JsonlFormat::plain && (args.get("prompt-field") || args.get("answer-field")))
    throw Error("--prompt-field and --answer-field apply to --format plain only");
  options.prompt_field = args.get("prompt-field", options.prompt_field);
  options.answer_field = args.get("answer-field", options.answer_field);
  for (const auto& ex : load_jsonl(file, options)) std::cout << example_to_json_line(ex) << "\n";
  return 0;
}

const cli::CommandRegistration kGenerate(
    {"data generate", "write synthetic arithmetic or Countdown examples (JSONL), or a pretraining corpus",
     run_generate});
const cli::CommandRegistration kInspect(
    {"data inspect", "print a JSONL data set's examples as parsed (--format gsm8k|math|aime|humaneval|mbpp|plain)",
     run_inspect});

}  // namespace
}  // namespace aha
