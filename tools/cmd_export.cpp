// `aha export samples`: a run's stored samples as SFT `messages` JSON Lines
// (recipes/runner/sample_export.h), in the format `aha distill` writes.
//
//   aha export samples --run DIR [--stage S] [--where 'reward/accuracy=1' ...] --out F [--overwrite]
#include <cstdio>

#include "core/error.h"
#include "recipes/runner/sample_export.h"
#include "tools/cli.h"

namespace aha {
namespace {

int run_export_samples(const cli::Args& args) {
  recipes::SampleExportOptions options;
  options.stage = args.get("stage", "");
  for (const auto& w : args.list("where")) options.where.push_back(recipes::parse_sample_condition(w, "--where"));
  options.layout = recipes::parse_reasoning_layout(args.get("reasoning", "both"), "--reasoning");
  options.overwrite = args.flag("overwrite");
  const std::filesystem::path out = args.required("out");
  auto stats = recipes::export_samples(args.required("run"), options, out);
  std::printf("exported %lld of %lld samples to %s\n", static_cast<long long>(stats.exported),
              static_cast<long long>(stats.samples), out.string().c_str());
  return 0;
}

const cli::CommandRegistration kExportSamples(
    {"export samples",
     "a run's stored samples (run.db) as SFT messages JSON Lines, filtered by --where conditions on rewards",
     {.usage = "--run DIR --out FILE [--stage S] [--where COND ...]",
      .description =
          "Writes the samples a run stored (its samples table) in the format of aha distill: {\"messages\": [user,\n"
          "assistant], \"provenance\": {...}}, the chain of thought as <think>...</think> and as reasoning_content.\n"
          "A --where condition is NAME OP NUMBER, OP one of = >= <= > <, NAME one of reward (the total),\n"
          "reward/<component> (e.g. reward/accuracy), advantage, tokens; all conditions must hold.\n"
          "The output appears whole or not at all.",
      .options = {{"run", "DIR", "required", "a run directory (holding run.db)"},
                  {"out", "FILE", "required", "the JSON Lines output; must be absent or empty unless --overwrite"},
                  {"stage", "S", "every stage", "only this stage's samples"},
                  {"where", "COND", "", "e.g. 'reward/accuracy=1' or 'reward>=0.5'; repeatable"},
                  {"reasoning", "LAYOUT", "both", "both, think or field (see aha distill --help)"},
                  {"overwrite!", "", "", "replace --out when it holds content"}},
      .examples = {"aha export samples --run runs/r1-zero-tiny --where 'reward/accuracy=1' --out correct.jsonl",
                   "aha export samples --run runs/r1-zero-tiny --stage grpo --where 'reward/format>=1' "
                   "--where 'tokens<=200' --out short.jsonl"}},
     run_export_samples});

}  // namespace
}  // namespace aha
