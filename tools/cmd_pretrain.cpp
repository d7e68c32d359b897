// `aha pretrain`: a base model from scratch (recipes/runner/base_model.h), and `aha tokenizer train`:
// a byte-level BPE tokenizer from text files (policy/tokenizer/bpe_trainer.h).
//
//   aha pretrain SPEC.json [--out DIR] [--set key=value ...] [--device cpu|cuda] [--threads N]
//   aha pretrain check DIR [--problems N] [--min-difficulty D] [--max-difficulty D] [--device cpu|cuda]
//   aha tokenizer train FILE... --vocab-size N --out DIR [--min-frequency 2]
//
// pretrain writes DIR (default: models/<spec file name without .json>) atomically, or reuses it
// when it already holds a model built from the same spec. DIR must otherwise be new or empty;
// --overwrite replaces an earlier `aha pretrain` output built from another spec, never anything else.
#include <torch/torch.h>

#include <iostream>

#include "core/error.h"
#include "core/files.h"
#include "core/output_dir.h"
#include "policy/tokenizer/bpe_trainer.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/base_model.h"
#include "recipes/runner/heldout_eval.h"
#include "tools/cli.h"

namespace aha::cli {
namespace {

namespace fs = std::filesystem;

int run_pretrain(const Args& args) {
  const fs::path spec_path = args.positional(0, "the pretraining spec (JSON)");
  auto spec = PretrainSpec::from_file(spec_path.string(), args.list("set"));
  const fs::path out = args.get("out", (fs::path("models") / spec_path.stem()).string());
  const int64_t threads = args.get_int("threads", 0, 0, INT32_MAX);
  if (threads > 0) torch::set_num_threads(int(threads));
  PretrainRunOptions options;
  options.device = parse_device(args.get("device", "cpu"));
  options.overwrite = args.flag("overwrite");
  auto r = ensure_base_model(spec, out, options);
  if (r.reused) {
    std::cout << "reused " << out.string() << " (built from the same spec)\n";
  } else {
    std::cout << "wrote " << out.string() << ": " << r.steps << " steps, " << r.tokens << " tokens, final loss "
              << r.final_loss << ", " << r.wall_seconds << " s";
    if (r.heldout_accuracy) std::cout << ", held-out plain-style accuracy " << *r.heldout_accuracy;
    std::cout << "\n";
  }
  return 0;
}

int run_pretrain_check(const Args& args) {
  const fs::path dir = args.positional(0, "the model directory");
  const int64_t threads = args.get_int("threads", 0, 0, INT32_MAX);
  if (threads > 0) torch::set_num_threads(int(threads));
  PretrainSpec::Eval eval;
  eval.problems = args.get_int("problems", eval.problems, 1);
  eval.min_difficulty = int(args.get_int("min-difficulty", eval.min_difficulty, 1, 5));
  eval.max_difficulty = int(args.get_int("max-difficulty", eval.max_difficulty, 1, 5));
  eval.seed = uint64_t(args.get_int("seed", 0));
  eval.max_new_tokens = args.get_int("max-new-tokens", eval.max_new_tokens);
  require(eval.problems >= 1, "--problems must be >= 1");
  require(eval.min_difficulty >= 1 && eval.min_difficulty <= eval.max_difficulty && eval.max_difficulty <= 5,
          "need 1 <= --min-difficulty <= --max-difficulty <= 5");
  require(eval.max_new_tokens >= 1, "--max-new-tokens must be >= 1");
  auto model = load_model(dir, {parse_device(args.get("device", "cpu")), torch::kFloat32});
  auto tokenizer = Tokenizer::from_dir(dir);
  auto r = evaluate_plain_heldout(*model, tokenizer, eval);
  for (size_t i = 0; i < r.samples.size() && i < 5; ++i)
    std::cout << (r.samples[i].correct ? "[right] " : "[wrong] ") << r.samples[i].prompt << "\n  ->"
              << r.samples[i].completion << "  (gold " << r.samples[i].gold << ")\n";
  std::cout << "held-out plain-style accuracy " << r.correct << "/" << r.problems << " = " << r.accuracy() << "\n";
  return 0;
}

int run_tokenizer_train(const Args& args) {
  require(!args.positional().empty(), "tokenizer train: give one or more text files");
  const fs::path out = args.required("out");
  check_output_dir(out, "--out", "tokenizer train", args.flag("overwrite"));  // before any work
  BpeTrainerOptions options;
  options.vocab_size = args.get_int("vocab-size", options.vocab_size);
  options.min_frequency = args.get_int("min-frequency", options.min_frequency);
  if (auto specials = args.get("special-tokens")) {
    options.special_tokens.clear();
    std::string rest = *specials;
    for (size_t comma; (comma = rest.find(',')) != std::string::npos; rest.erase(0, comma + 1))
      options.special_tokens.push_back(rest.substr(0, comma));
    options.special_tokens.push_back(rest);
  }
  BpeTrainer trainer(options);
  for (const auto& file : args.positional()) trainer.add_text(read_file(file));
  auto bpe = trainer.train();
  const fs::path tmp = fresh_build_dir(fs::absolute(out));
  try {
    bpe.write(tmp);
    mark_output_dir(tmp, "tokenizer train");
    swap_in_dir(tmp, out);
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
  std::cout << "wrote " << (out / "tokenizer.json").string() << ": " << bpe.size() << " tokens (" << bpe.merges.size()
            << " merges) from " << trainer.total_words() << " words\n";
  return 0;
}

CommandRegistration pretrain_cmd({"pretrain",
                                  "SPEC.json [--out DIR] [--set key=value ...] [--device cpu|cuda] [--threads N] [--overwrite]: "
                                  "a base model from scratch (tokenizer + next-token training), or reuse DIR",
                                  {.usage = "SPEC.json [options]",
                                   .description = "Builds a base model from scratch as SPEC.json says (a BPE tokenizer, then\n"
                                                  "next-token training on its corpus) into DIR, atomically; reuses DIR when it\n"
                                                  "already holds a model built from the same spec.",
                                   .options = {{"out", "DIR", "models/<SPEC file name>", "where to write the model"},
                                               {"set", "KEY.PATH=VALUE", "", "override one spec key; repeatable"},
                                               {"device", "DEV", "cpu", "cpu or cuda"},
                                               {"threads", "N", "0 (LibTorch's choice)", "CPU threads"},
                                               {"overwrite!", "", "", "replace an earlier `aha pretrain` output from another spec"}},
                                   .max_positional = 1,
                                   .examples = {"aha pretrain recipes/base/tiny-base.json --out models/tiny-base"}},
                                  run_pretrain});
CommandRegistration pretrain_check_cmd(
    {"pretrain check",
     "DIR [--problems 200] [--min-difficulty 1] [--max-difficulty 2] [--seed 0] [--device cpu]: greedy accuracy on "
     "held-out arithmetic prompted as \"Question: ...\\nAnswer:\"",
     {.usage = "DIR [options]",
      .description = "Greedy accuracy of the model in DIR on held-out arithmetic problems prompted as\n"
                     "\"Question: ...\\nAnswer:\"; prints a few samples and the accuracy.",
      .options = {{"problems", "N", "200", "how many problems"},
                  {"min-difficulty", "D", "1", "1..5"},
                  {"max-difficulty", "D", "2", "1..5, at least --min-difficulty"},
                  {"seed", "S", "0", "seed of the problems"},
                  {"max-new-tokens", "N", "96", "the longest answer"},
                  {"device", "DEV", "cpu", "cpu or cuda"},
                  {"threads", "N", "0 (LibTorch's choice)", "CPU threads"}},
      .max_positional = 1,
      .examples = {"aha pretrain check models/tiny-base --problems 100"}},
     run_pretrain_check});
CommandRegistration tokenizer_train_cmd(
    {"tokenizer train", "FILE... --vocab-size N --out DIR [--min-frequency 2] [--overwrite]: a byte-level BPE tokenizer (HF format) "
     "in a new or empty DIR",
     {.usage = "FILE... --vocab-size N --out DIR [options]",
      .description = "Trains a byte-level BPE tokenizer on the text FILEs and writes it (tokenizer.json, Hugging Face\n"
                     "format) into DIR, new or empty.",
      .options = {{"vocab-size", "N", "1024", "the vocabulary size, byte tokens included"},
                  {"out", "DIR", "required", "where to write the tokenizer"},
                  {"min-frequency", "N", "2", "the fewest occurrences a merge needs"},
                  {"special-tokens", "A,B,...", "<|endoftext|>", "special tokens after the learned ones; the first is BOS, EOS and pad"},
                  {"overwrite!", "", "", "replace an earlier `aha tokenizer train` output in DIR"}},
      .max_positional = cli::Args::kAnyPositional,
      .examples = {"aha tokenizer train corpus.txt --vocab-size 3000 --out models/tok",
                   "aha tokenizer train corpus.txt --vocab-size 8000 --special-tokens '<|endoftext|>,<|im_start|>,<|im_end|>' "
                   "--out models/qwen2-style-tok"}},
     run_tokenizer_train});

}  // namespace
}  // namespace aha::cli
