// `aha distill`: rejection sampling from a teacher model into SFT-ready `messages` JSON Lines
// (recipes/runner/rejection_sampling.h), with a statistics report beside the output.
//
//   aha distill --model TEACHER --data FILE|SPEC [--data ...] --samples N --keep K
//               --filter correct,format,... --out data.jsonl [--resume | --overwrite]
//
// The rewards that verify responses default to math_accuracy ("accuracy") and, with an R1-Zero
// template, format ("format"); --rewards replaces them (a reward list, reward/reward_registry.h)
// and the filters read the components named by --accuracy-reward, --format-reward and
// --language-reward. --out must be absent or empty; an interrupted run continues with --resume
// (same settings), and --overwrite replaces an earlier output of aha distill.
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/progress_bar.h"
#include "datasets/dataset_spec.h"
#include "datasets/model_generation_config.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/rejection_sampling.h"
#include "recipes/runner/sampling.h"
#include "tools/cli.h"
#include "tools/data_args.h"
#include "tools/sampling_args.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

std::vector<Example> load_data(const std::vector<std::string>& values, const std::string& format, int64_t limit,
                               std::string& description) {
  if (values.empty()) throw cli::UsageError("give at least one --data FILE or --data SPEC");
  std::vector<Example> all;
  for (const auto& value : values) {
    DatasetSpec spec = data_spec_from_arg(value, format);
    if (value.front() != '{' && limit > 0) spec.jsonl.limit = static_cast<size_t>(limit);  // a file: read no more
    auto examples = load_dataset(spec);
    if (limit > 0 && examples.size() > static_cast<size_t>(limit)) examples.resize(static_cast<size_t>(limit));
    require(!examples.empty(), "--data " + value + " holds no examples");
    all.insert(all.end(), std::make_move_iterator(examples.begin()), std::make_move_iterator(examples.end()));
    description += (description.empty() ? "" : " + ") + value;
  }
  return all;
}

void print_stats(const recipes::RejectionStats& s, const fs::path& out) {
  std::printf("prompts %lld, sampled %lld, kept %lld (%.1f%%), prompts with nothing kept %lld\n",
              static_cast<long long>(s.prompts), static_cast<long long>(s.sampled), static_cast<long long>(s.kept),
              s.sampled > 0 ? 100.0 * static_cast<double>(s.kept) / static_cast<double>(s.sampled) : 0.0,
              static_cast<long long>(s.prompts_without_kept));
  std::printf("%-12s %9s\n", "dropped by", "responses");
  for (const auto& [filter, n] : s.dropped) std::printf("%-12s %9lld\n", filter.c_str(), static_cast<long long>(n));
  std::printf("kept length (tokens): mean %.1f, p10 %lld, p50 %lld, p90 %lld, max %lld\n", s.mean_tokens,
              static_cast<long long>(s.p10_tokens), static_cast<long long>(s.p50_tokens),
              static_cast<long long>(s.p90_tokens), static_cast<long long>(s.max_tokens));
  std::printf("kept languages:");
  for (const auto& [code, n] : s.languages) std::printf(" %s %lld", code.c_str(), static_cast<long long>(n));
  std::printf("\nwrote %s and %s\n", out.string().c_str(), recipes::stats_path(out).string().c_str());
}

int run_distill(const cli::Args& args) {
  const fs::path model_dir = args.required("model");
  require(fs::is_directory(model_dir), "--model " + model_dir.string() + " is not a directory");
  require(fs::exists(model_dir / "config.json"),
          "--model " + model_dir.string() + " has no config.json (expected a Hugging Face model folder)");
  const fs::path out = args.required("out");
  const bool resume = args.flag("resume"), overwrite = args.flag("overwrite");
  if (resume && overwrite) throw cli::UsageError("--resume and --overwrite exclude each other");
  const auto mode = resume      ? recipes::ResumableJsonl::Mode::resume
                    : overwrite ? recipes::ResumableJsonl::Mode::overwrite
                                : recipes::ResumableJsonl::Mode::fresh;

  recipes::RejectionSamplingOptions o;
  o.samples = args.get_int("samples", 4, 1, 1 << 20);
  o.keep = args.get_int("keep", 1, 1, 1 << 20);
  const std::string template_name = args.get("template", "r1_zero");
  o.prompt_template = template_name == "plain"
                          ? PromptTemplate::from_name("{prompt}", args.list("stop"), model_dir, args.get("system", ""))
                          : PromptTemplate::from_name(template_name, args.list("stop"), model_dir, args.get("system", ""));
  auto& f = o.filters;
  f.accuracy_reward = args.get("accuracy-reward", "accuracy");
  f.format_reward = args.get("format-reward", "format");
  f.language_reward = args.get("language-reward", "language");
  recipes::enable_filters(
      f, args.get("filter", o.prompt_template.r1_format() ? "correct,format,exact_dup" : "correct,exact_dup"),
      "--filter");
  f.language_threshold = args.get_double("language-threshold", f.language_threshold);
  f.max_paragraph_chars = args.get_int("max-paragraph", f.max_paragraph_chars, 1);
  f.min_tokens = args.get_int("min-tokens", f.min_tokens, 0);
  f.max_tokens = args.get_int("max-tokens", f.max_tokens, 1);
  f.near_dup_threshold = args.get_double("near-dup-threshold", f.near_dup_threshold);
  if (auto spec = args.get("rewards")) o.rewards = reward::parse_reward_specs(*spec);
  const auto sampling = sampling_from_args(args, model_dir, {0.6, 1.0, 0, ""});
  o.temperature = sampling.temperature;
  o.top_p = sampling.top_p;
  o.top_k = sampling.top_k;
  o.max_new_tokens = args.get_int("max-new-tokens", 1024, 1);
  o.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
  o.prompts_per_batch = args.get_int("batch", 16, 1);
  o.reward_threads = static_cast<size_t>(args.get_int("threads", 0, 0, 256));
  o.layout = recipes::parse_reasoning_layout(args.get("reasoning", "both"), "--reasoning");
  o.model = model_dir.string();
  o.stage = "distill";
  recipes::validate(o);  // every setting before the data and the model are loaded
  std::cerr << sampling.summary << ", template " << o.prompt_template.name() << "\n";
  auto examples = load_data(args.list("data"), args.get("format", "plain"), args.get_int("limit", 0, 0), o.data);

  const auto device = parse_device(args.get("device", torch::cuda::is_available() ? "cuda" : "cpu"));
  LoadOptions load;
  load.device = device;
  if (auto d = args.get("dtype"))
    load.dtype = parse_dtype(*d);
  else if (device.is_cuda())
    load.dtype = torch::kBFloat16;
  auto model = load_model(model_dir, load);
  const Tokenizer tokenizer = Tokenizer::from_dir(model_dir);
  o.eos_token_ids = recipes::default_eos_ids(model_dir, model->config(), &tokenizer);
  EngineOptions engine_options;
  engine_options.use_cuda_graphs = !args.flag("no-graphs");
  RolloutEngine engine(*model, engine_options, recipes::make_text_decoder(tokenizer));
  std::optional<ProgressBar> bar;
  auto stats = recipes::run_rejection_sampling(engine, tokenizer, examples, o, out, mode,
                                               [&](int64_t done, int64_t total, int64_t tokens) {
                                                 if (!bar) bar.emplace(total, "responses");
                                                 bar->update(done, {{"tokens", std::to_string(tokens)}});
                                               });
  if (bar) bar->finish();
  print_stats(stats, out);
  return 0;
}

const cli::CommandRegistration kDistill(
    {"distill",
     "rejection sampling from --model into SFT-ready messages JSON Lines (--out), with statistics beside it",
     {.usage = "--model TEACHER --data FILE|SPEC --out data.jsonl [--samples N --keep K --filter LIST] [options]",
      .description =
          "Samples N responses per prompt from the teacher, scores them with the rewards, keeps up to K that\n"
          "pass the filters, and writes them as {\"messages\": [user, assistant], \"provenance\": {...}} lines,\n"
          "the chain of thought as <think>...</think> in the content and as reasoning_content. Each prompt's\n"
          "records are made durable before the next prompt; --resume continues an interrupted run (no prompt\n"
          "lost or repeated). Statistics go to <out without .jsonl>.stats.json and stdout.",
      .options = with_options({{"model", "DIR", "required", "the teacher: a Hugging Face model folder with its tokenizer"},
                  {"data", "FILE|SPEC", "required", "a JSON Lines file, or a data set spec such as "
                   "'{\"synthetic\": \"arithmetic\", \"n\": 500, \"seed\": 1}'; repeatable"},
                  {"format", "FORMAT", "plain", "how --data files are read: gsm8k, math, aime, humaneval, mbpp or plain"},
                  {"limit", "N", "0 (all)", "at most N examples of each data set"},
                  {"out", "FILE", "required", "the JSON Lines output; must be absent or empty unless --resume/--overwrite"},
                  {"resume!", "", "", "continue an interrupted run with the same settings"},
                  {"overwrite!", "", "", "replace an earlier output of aha distill"},
                  {"samples", "N", "4", "responses sampled per prompt"},
                  {"keep", "K", "1", "responses kept per prompt at most"},
                  {"filter", "LIST", "correct,format,exact_dup (correct,exact_dup without an R1-Zero template)",
                   "filters: correct, format, language, no_code, paragraph, length, exact_dup, near_dup"},
                  {"rewards", "SPEC", "accuracy (math_accuracy) + format (R1-Zero templates) + language (with that filter)",
                   "a reward list (name:weight,... or JSON) scoring each response"},
                  {"accuracy-reward", "NAME", "accuracy", "the reward the correct filter reads (full marks: 1)"},
                  {"format-reward", "NAME", "format", "the reward the format filter reads"},
                  {"language-reward", "NAME", "language", "the reward the language filter reads"},
                  {"language-threshold", "X", "0.99", "the language filter's least language-consistency score"},
                  {"max-paragraph", "CHARS", "2000", "the paragraph filter's longest paragraph"},
                  {"min-tokens", "N", "1", "the length filter's shortest response"},
                  {"max-tokens", "N", "no limit", "the length filter's longest response"},
                  {"near-dup-threshold", "X", "0.9", "Jaccard similarity of word 3-shingles counted as a near duplicate"},
                  {"reasoning", "LAYOUT", "both", "both, think (only <think> in content) or field (content is the answer, "
                   "reasoning in reasoning_content, as Qwen3's chat template reads it)"},
                  {"template", "NAME", "r1_zero",
                   "r1_zero, r1_zero_think, chatml, deepseek_r1, model (the model's chat template), plain, or a "
                   "pattern holding {prompt}"},
                  {"system", "TEXT", "", "a system prompt for --template model, chatml or deepseek_r1"},
                  {"stop", "STR", "", "a stop string for a pattern template; repeatable"},
                  {"max-new-tokens", "N", "1024", "the longest response"},
                  {"seed", "S", "0", "sampling seed"},
                  {"batch", "N", "16", "prompts decoding at once (finished ones replaced by waiting ones)"},
                  {"threads", "N", "0 (one per CPU)", "reward threads"},
                  {"device", "DEV", "cuda if available, else cpu", "cpu or cuda"},
                  {"dtype", "D", "bfloat16 on cuda, float32 on cpu", "float32, bfloat16 or float16"},
                  {"no-graphs!", "", "", "no CUDA graphs in decoding"}},
                           sampling_cli_options("generation_config.json's, else 0.6"), "max-new-tokens"),
      .examples = {"aha distill --model runs/r1-tiny/final/model --data '{\"synthetic\": \"arithmetic\", \"n\": 500, "
                   "\"seed\": 3}' --template r1_zero_think --samples 8 --keep 2 --filter correct,format,near_dup "
                   "--out distill.jsonl",
                   "aha distill --model M --data gsm8k/train.jsonl --format gsm8k --out d.jsonl --resume"}},
     run_distill});

}  // namespace
}  // namespace aha
