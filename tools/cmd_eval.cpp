// `aha eval`: accuracy of a model on data sets, with the verifiers training uses
// (recipes/runner/evaluation.h): pass@1 (mean over k samples), maj@k, format rate, response lengths.
//
//   aha eval --model DIR --data FILE|SPEC [--data ...] [--format gsm8k] [--samples k]
//            [--template r1_zero|chatml|deepseek_r1|model|plain|PATTERN] [--system TEXT] [--stop STR ...]
//            [--temperature T] [--top-p P] [--top-k K] [--max-new-tokens N] [--seed S] [--limit N]
//            [--verifier SPEC] [--answer-tag required|optional] [--extraction strict|lenient]
//            [--batch 64] [--threads N]
//            [--run-dir DIR] [--name NAME] [--device cuda] [--dtype bfloat16] [--no-graphs]
//
// --data is a JSON Lines file read in --format (datasets/jsonl_loader.h; default plain) or a
// data set spec (datasets/dataset_spec.h), e.g. '{"synthetic": "arithmetic", "n": 500, "seed": 1}'.
// Each data set is named after its file (the folder too for a split name: gsm8k/test.jsonl
// is gsm8k_test) or its generator; a repeated name gets _2, _3, ...
// --template plain is the prompt alone; a PATTERN holds one {prompt} and takes --stop strings;
// model is the model's own chat template (with --system as its system message).
// Sampling values not given come from the model's generation_config.json (do_sample false:
// greedy), else the temperature is 0 (greedy) for one sample and 0.6 for k > 1 (DeepSeek-R1's
// evaluation setting), top-p 1 and top-k 0; the values used and their sources go to stderr. The report goes to <run-dir>/exports/eval-<name or UTC time>/
// (report.json, samples.jsonl; see recipes/runner/eval_report.h), appearing only when complete;
// --run-dir defaults to the run that holds --model (the nearest folder above it with a run.db),
// else runs/eval. A summary table goes to stdout, progress to stderr.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/progress_bar.h"
#include "datasets/dataset_spec.h"
#include "datasets/model_generation_config.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/eval_report.h"
#include "recipes/runner/evaluation.h"
#include "recipes/runner/sampling.h"
#include "reward/math_answer.h"
#include "tools/cli.h"
#include "tools/data_args.h"
#include "tools/sampling_args.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

struct NamedData {
  std::string name, source;
  DatasetSpec spec;
};

std::string dataset_name(const DatasetSpec& spec) {
  if (!spec.synthetic.empty()) return spec.synthetic;
  const fs::path path = spec.path;
  std::string stem = path.stem().string();
  static const char* const kSplits[] = {"test", "train", "dev", "val", "valid", "validation", "heldout", "eval"};
  const std::string folder = path.parent_path().filename().string();
  for (const char* split : kSplits)
    if (stem == split && !folder.empty() && folder != "." && folder != "..") return folder + "_" + stem;
  return stem;
}

std::vector<NamedData> parse_data(const std::vector<std::string>& values, const std::string& format) {
  if (values.empty()) throw cli::UsageError("give at least one --data FILE or --data SPEC");
  std::vector<NamedData> out;
  std::map<std::string, int> seen;
  for (const auto& value : values) {
    NamedData d;
    d.source = value;
    d.spec = data_spec_from_arg(value, format);
    d.name = dataset_name(d.spec);
    if (int n = ++seen[d.name]; n > 1) d.name.append(1, '_').append(std::to_string(n));
    out.push_back(std::move(d));
  }
  return out;
}

PromptTemplate parse_template(const std::string& name, const std::vector<std::string>& stops,
                              const fs::path& model_dir, const std::string& system) {
  if (name == "plain") return PromptTemplate::from_name("{prompt}", stops, model_dir, system);
  return PromptTemplate::from_name(name, stops, model_dir, system);
}

// The run directory that holds a checkpoint, when the model is one.
std::optional<fs::path> run_of(const fs::path& model_dir) {
  for (fs::path p = fs::absolute(model_dir); p.has_parent_path() && p != p.parent_path(); p = p.parent_path())
    if (fs::exists(p / "run.db")) return p;
  return std::nullopt;
}

std::string utc_now(const char* format) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

std::string cell(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", v);
  return text;
}

void print_table(const recipes::EvalResult& result, int64_t k) {
  std::printf("%-24s %7s %8s %8s %8s %9s %8s %9s %8s\n", "data set", "n", "pass@1", ("maj@" + std::to_string(k)).c_str(),
              "format", "mean len", "max len", "truncated", "reflect");
  auto row = [](const std::string& name, const recipes::EvalSummary& s) {
    std::printf("%-24s %7lld %8s %8s %8s %9.1f %8lld %9s %8s\n", name.c_str(), static_cast<long long>(s.examples),
                cell(s.pass_at_1).c_str(), cell(s.maj_at_k).c_str(), s.format_rate ? cell(*s.format_rate).c_str() : "-",
                s.mean_response_tokens, static_cast<long long>(s.max_response_tokens), cell(s.truncated_rate).c_str(),
                cell(s.reflection_rate).c_str());
  };
  for (const auto& d : result.datasets) {
    row(d.name, d.summary);
    for (const auto& g : d.groups) row("  " + d.group_field + " " + g.value, g.summary);
  }
  if (result.datasets.size() > 1) row("all", result.overall);
  if (k > 1) {  // the unbiased pass@j curve (recipes/runner/evaluation.h)
    std::printf("\n%-24s", "pass@j");
    for (const auto& [j, value] : result.overall.pass_at) std::printf(" %8s", ("j=" + std::to_string(j)).c_str());
    std::printf("\n");
    auto curve = [](const std::string& name, const recipes::EvalSummary& s) {
      std::printf("%-24s", name.c_str());
      for (const auto& [j, value] : s.pass_at) std::printf(" %8s", cell(value).c_str());
      std::printf("\n");
    };
    for (const auto& d : result.datasets) curve(d.name, d.summary);
    if (result.datasets.size() > 1) curve("all", result.overall);
  }
}

int run_eval(const cli::Args& args) {
  // Everything that can be checked without the model first, so that a typo fails fast.
  const fs::path model_dir = args.required("model");
  require(fs::is_directory(model_dir), "--model " + model_dir.string() + " is not a directory");
  require(fs::exists(model_dir / "config.json"),
          "--model " + model_dir.string() + " has no config.json (expected a Hugging Face model folder)");
  require(fs::exists(model_dir / "tokenizer.json") || fs::exists(model_dir / "vocab.json"),
          "--model " + model_dir.string() + " has no tokenizer (tokenizer.json or vocab.json + merges.txt)");

  recipes::EvalOptions options;
  options.samples = args.get_int("samples", 1);  // range-checked below, with its own message
  require(options.samples >= 1, "--samples must be at least 1, got " + std::to_string(options.samples));
  const auto sampling = sampling_from_args(args, model_dir, {options.samples > 1 ? 0.6 : 0.0, 1.0, 0, ""});
  options.temperature = sampling.temperature;
  require(options.samples == 1 || options.temperature > 0,
          "--samples " + std::to_string(options.samples) +
              " needs --temperature > 0 (temperature 0 is greedy: every sample would be the same)");
  options.top_p = sampling.top_p;
  options.top_k = sampling.top_k;
  options.max_new_tokens = args.get_int("max-new-tokens", 1024, 1);
  const int64_t seed = args.get_int("seed", 0, 0);
  options.seed = static_cast<uint64_t>(seed);
  options.prompts_per_batch = args.get_int("batch", 64, 1);
  const int64_t threads = args.get_int("threads", 0, 0);
  options.reward_threads = static_cast<size_t>(threads);
  options.correctness_reward = args.get("verifier", "math_accuracy");
  options.prompt_template =
      parse_template(args.get("template", "r1_zero"), args.list("stop"), model_dir, args.get("system", ""));
  std::cerr << sampling.summary << ", template " << options.prompt_template.name() << "\n";
  if (auto tag = args.get("answer-tag")) {
    require(*tag == "required" || *tag == "optional",
            "--answer-tag must be 'required' or 'optional', got '" + *tag + "'");
    options.require_answer_tag = *tag == "required";
  }
  if (auto extraction = args.get("extraction")) {
    aha::reward::parse_extraction_mode(*extraction, "--extraction");  // the error names the flag
    options.extraction = *extraction;
  }
  options.group_by = args.get("group-by", "auto");
  recipes::validate(options);
  const int64_t limit = args.get_int("limit", 0, 0);
  auto data = parse_data(args.list("data"), args.get("format", "plain"));

  const fs::path run_dir =
      args.get("run-dir") ? fs::path(*args.get("run-dir")) : run_of(model_dir).value_or("runs/eval");
  const std::string name = args.get("name", utc_now("%Y%m%d-%H%M%S"));
  require(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
          "--name must be a plain folder name, got '" + name + "'");
  const fs::path report_dir = run_dir / "exports" / ("eval-" + name);
  require(!fs::exists(report_dir), "" + report_dir.string() + " already exists; choose another --name");

  std::vector<recipes::EvalDataset> datasets;
  std::vector<std::string> sources;
  for (auto& d : data) {
    if (limit > 0 && !d.spec.path.empty() && (d.spec.jsonl.limit == 0 || d.spec.jsonl.limit > size_t(limit)))
      d.spec.jsonl.limit = static_cast<size_t>(limit);
    recipes::EvalDataset dataset{d.name, load_dataset(d.spec)};
    if (limit > 0 && dataset.examples.size() > size_t(limit)) dataset.examples.resize(static_cast<size_t>(limit));
    require(!dataset.examples.empty(), "--data " + d.source + " holds no examples");
    datasets.push_back(std::move(dataset));
    sources.push_back(d.source);
  }

  const auto device = parse_device(args.get("device", torch::cuda::is_available() ? "cuda" : "cpu"));
  LoadOptions load;
  load.device = device;
  if (auto d = args.get("dtype"))
    load.dtype = parse_dtype(*d);
  else if (device.is_cuda())
    load.dtype = torch::kBFloat16;
  auto model = load_model(model_dir, load);
  const Tokenizer tokenizer = Tokenizer::from_dir(model_dir);
  options.eos_token_ids = recipes::default_eos_ids(model_dir, model->config(), &tokenizer);

  EngineOptions engine_options;
  engine_options.use_cuda_graphs = !args.flag("no-graphs");
  RolloutEngine engine(*model, engine_options, recipes::make_text_decoder(tokenizer));
  std::optional<ProgressBar> bar;  // the total is known at the first report
  auto result =
      recipes::evaluate(engine, tokenizer, datasets, options, [&](int64_t done, int64_t total, int64_t tokens) {
        if (!bar) bar.emplace(total, "completions");
        bar->update(done, {{"tokens", std::to_string(tokens)}});
      });
  if (bar) bar->finish();

  recipes::EvalReportInfo info{model_dir.string(), sources, utc_now("%Y-%m-%dT%H:%M:%SZ")};
  recipes::write_eval_report(report_dir, result, options, info);
  print_table(result, options.samples);
  std::cout << "wrote " << (report_dir / "report.json").string() << " and samples.jsonl (" << cell(result.seconds)
            << " s)\n";
  return 0;
}

const cli::CommandRegistration kEval({"eval",
                                      "pass@1, maj@k and format rate of --model on --data FILE|SPEC (repeatable) "
                                      "with --samples k; report in <run-dir>/exports/eval-<name>/",
     {.usage = "--model DIR --data FILE|SPEC [--data ...] [options]",
      .description =
          "Accuracy of a model on data sets with the verifiers training uses: pass@1 (mean over k samples),\n"
          "maj@k, format rate, response lengths. The report (report.json, samples.jsonl) goes to\n"
          "<run-dir>/exports/eval-<name>/, a summary table to stdout, progress to stderr.",
      .options = with_options({{"model", "DIR", "required", "a Hugging Face model folder with its tokenizer"},
                  {"data", "FILE|SPEC", "required", "a JSON Lines file, or a data set spec such as "
                   "'{\"synthetic\": \"arithmetic\", \"n\": 500, \"seed\": 1}'; repeatable"},
                  {"format", "FORMAT", "plain", "how --data files are read: gsm8k, math, aime, humaneval, mbpp or plain"},
                  {"samples", "K", "1", "samples per prompt (pass@1 is their mean, maj@k their vote)"},
                  {"template", "NAME", "r1_zero",
                   "r1_zero, r1_zero_think, chatml, deepseek_r1, model (the model's chat template), plain, or a "
                   "pattern holding {prompt}"},
                  {"system", "TEXT", "", "a system prompt for --template model, chatml or deepseek_r1"},
                  {"stop", "STR", "", "a stop string for a pattern template; repeatable"},
                  {"max-new-tokens", "N", "1024", "the longest completion"},
                  {"seed", "S", "0", "sampling seed"},
                  {"limit", "N", "0 (all)", "at most N examples of each data set"},
                  {"verifier", "SPEC", "math_accuracy", "the correctness reward"},
                  {"answer-tag", "MODE", "the verifier's", "required or optional: whether <answer> tags are needed"},
                  {"extraction", "MODE", "the verifier's (strict)",
                   "strict (<answer> tag or last \\boxed{}) or lenient (also 'final answer is', the last math or number)"},
                  {"group-by", "FIELD", "auto (level, difficulty or steps)",
                   "the metadata field whose values get figures of their own (by difficulty); '' for none"},
                  {"batch", "N", "64", "prompts decoding at once (finished ones replaced by waiting ones)"},
                  {"threads", "N", "0 (one per CPU)", "reward threads"},
                  {"run-dir", "DIR", "the run holding --model, else runs/eval", "where the report goes"},
                  {"name", "NAME", "the UTC time", "the report's folder name, eval-NAME"},
                  {"device", "DEV", "cuda if available, else cpu", "cpu or cuda"},
                  {"dtype", "D", "bfloat16 on cuda, float32 on cpu", "float32, bfloat16 or float16"},
                  {"no-graphs!", "", "", "no CUDA graphs in decoding"}},
                           sampling_cli_options("generation_config.json's, else 0 for one sample, 0.6 for K > 1"), "max-new-tokens"),
      .examples = {"aha eval --model runs/r1-zero-tiny/final/model --data '{\"synthetic\": \"arithmetic\", \"n\": 200, \"seed\": 7}'",
                   "aha eval --model M --data gsm8k/test.jsonl --format gsm8k --samples 8 --temperature 0.6",
                   "aha eval --model DeepSeek-R1-Distill-Qwen-1.5B --template model --data gsm8k/test.jsonl --format gsm8k"}},
                                      run_eval});

}  // namespace
}  // namespace aha
