// `aha generate`: sample completions from a model with the rollout engine.
//
//   aha generate --model DIR --prompt "text" [--prompt "text" ...] [-n 8] [--temperature 0.7]
//                [--top-p 1] [--top-k 0] [--max-new-tokens 256] [--seed 0] [--stop "</answer>"]
//                [--eos-ids 2,7] [--ignore-eos] [--device cuda] [--dtype bfloat16] [--no-graphs]
//   aha generate --model DIR --prompt-ids 1,17,99 ...        token ids instead of text
//   aha generate --model DIR --input prompts.jsonl --output out.jsonl [--batch 64] ...
//   (the whole file is one engine request; --batch prompts decode at once, and a finished
//   prompt's rows are refilled with the next waiting prompt: continuous batching)
//   aha generate --model DIR --template model [--system "..."] --prompt "question"
//
// Text prompts are encoded with DIR's tokenizer (with its special tokens, e.g. a BOS), or, with
// --template, first rendered with that prompt template ("model": the model's own chat template)
// and encoded without a second BOS when the rendered text has one. EOS ids default to those of
// config.json, generation_config.json and tokenizer_config.json; --eos-ids replaces them.
// --temperature, --top-p and --top-k default to generation_config.json's (do_sample false:
// greedy), then to 1, 1 and 0; the values used and their sources go to stderr in one line. JSONL input lines are objects with "prompt" (text) or "prompt_ids" (ids),
// and optionally "max_new_tokens": that prompt's token limit, or a list of -n limits, one per
// sample (to replay the lengths of a recorded run); each at most --max-new-tokens, which sizes
// the KV cache;
// each output line is one completion: prompt_index, sample_index, text, tokens, logprobs,
// finish_reason. The output file appears only when complete. Progress goes to stderr.
// Options, the input file (a regular file, within core/text_lines.h's line and size limits) and
// the output path (writable, not the input) are all checked before the model is loaded.
// A completion depends on the seed, its prompt and its place in the input (prompt index,
// sample index), not on --batch.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/standard_input.h"
#include "core/file_checks.h"
#include "core/files.h"
#include "core/json.h"
#include "core/text_lines.h"
#include "core/progress_bar.h"
#include "datasets/model_generation_config.h"
#include "datasets/prompt_template.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/tokenizer_utf8.h"
#include "recipes/runner/sampling.h"
#include "rollout/rollout_engine.h"
#include "tools/cli.h"
#include "tools/sampling_args.h"

namespace aha {
namespace {

namespace fs = std::filesystem;

struct PromptSource {
  std::vector<std::vector<int64_t>> ids;
  std::vector<std::string> texts;  // empty strings for id prompts
};

// A JSONL prompt as read, before tokenising: ids, or text (which needs the tokenizer).
struct JsonlPrompt {
  std::vector<int64_t> ids;
  std::string text;
  bool is_text = false;
  std::string where;  // "<file> line <n>", for errors found once the tokenizer is known
  std::vector<int64_t> max_new_tokens;  // empty: --max-new-tokens; one value or one per sample
};

// Read (with the JSONL file and line limits) and checked before the model is loaded, so that a
// bad input file fails at once.
std::vector<JsonlPrompt> read_jsonl(const fs::path& path) {
  std::vector<JsonlPrompt> out;
  for_each_nonblank_line(read_jsonl_file(path), path.string(), [&](std::string_view line, size_t number) {
    JsonlPrompt prompt;
    prompt.where = path.string() + " line " + std::to_string(number);
    auto doc = json::parse(line, prompt.where);
    require(doc.IsObject(), prompt.where + ": expected a JSON object with \"prompt\" or \"prompt_ids\"");
    json::ObjectReader reader(doc, prompt.where);
    if (reader.has("prompt_ids")) {
      prompt.ids = json::int_or_int_list(reader.get("prompt_ids"), prompt.where + ": prompt_ids");
    } else {
      prompt.text = reader.get_string("prompt");
      prompt.is_text = true;
    }
    if (reader.has("max_new_tokens")) {
      prompt.max_new_tokens = json::int_or_int_list(reader.get("max_new_tokens"), prompt.where + ": max_new_tokens");
      require(!prompt.max_new_tokens.empty(), prompt.where + ": max_new_tokens is an empty list");
    }
    out.push_back(std::move(prompt));
    return true;
  });
  require(!out.empty(), path.string() + ": no prompts");
  return out;
}

std::string completion_json(const Completion& c, int64_t prompt_index, const std::string& prompt) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("prompt_index");
  w.Int64(prompt_index);
  w.Key("sample_index");
  w.Int64(c.sample_index);
  if (!prompt.empty()) {
    w.Key("prompt");
    w.String(prompt.c_str(), static_cast<rapidjson::SizeType>(prompt.size()));
  }
  const std::string text = utf8::lossy(c.text);
  w.Key("text");
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  w.Key("finish_reason");
  w.String(finish_reason_name(c.finish_reason));
  w.Key("num_tokens");
  w.Int64(static_cast<int64_t>(c.tokens.size()));
  w.Key("tokens");
  w.StartArray();
  for (auto t : c.tokens) w.Int64(t);
  w.EndArray();
  w.Key("logprobs");
  w.StartArray();
  for (auto lp : c.logprobs) w.Double(lp);
  w.EndArray();
  w.EndObject();
  return json::text_of(buffer);  // a prompt with invalid UTF-8 must not make invalid JSON
}

// The largest prompt file: a prompt is encoded whole, and far larger inputs are mistakes.
constexpr size_t kMaxPromptFileBytes = size_t{64} << 20;

int run_generate(const cli::Args& args) {
  const fs::path dir = args.required("model");
  // Text prompts: --prompt arguments, and whole files (byte for byte, `-` for standard input)
  // for prompts a shell argument cannot carry (a NUL byte, long multi-line text).
  auto prompts_text = args.list("prompt");
  const auto prompt_files = args.list("prompt-file");
  require(std::count(prompt_files.begin(), prompt_files.end(), "-") <= 1,
          "--prompt-file - (standard input) can be given once");
  for (const auto& file : prompt_files)
    prompts_text.push_back(file == "-" ? read_standard_input(kMaxPromptFileBytes)
                                       : read_file(file, kMaxPromptFileBytes));
  const auto prompts_ids = args.list("prompt-ids");
  const auto input = args.get("input");
  require(int(!prompts_text.empty()) + int(!prompts_ids.empty()) + int(input.has_value()) == 1,
          "give prompts with exactly one of --prompt (or --prompt-file), --prompt-ids or --input");
  require(!input || args.get("output"), "--input needs --output");
  const auto output = args.get("output");
  if (input) require_regular_file({"--input", *input});
  if (output) {
    std::vector<NamedPath> inputs;
    if (input) inputs.push_back({"--input", *input});
    check_output_file({"--output", *output}, inputs, args.flag("overwrite"));
  }
  // Every other option is checked before the model loads too: a typo fails in a second.
  RolloutRequest request;
  request.group_size = args.get_int("n", 1, 1);
  auto& s = request.settings;
  const auto sampling = sampling_from_args(args, dir, {1.0, 1.0, 0, ""});
  s.sampler.temperature = sampling.temperature;
  s.sampler.top_p = sampling.top_p;
  s.sampler.top_k = sampling.top_k;
  const auto template_name = args.get("template");
  require(template_name || !args.get("system"), "--system needs --template (chatml, deepseek_r1 or model)");
  std::optional<PromptTemplate> prompt_template;
  if (template_name) {
    prompt_template = PromptTemplate::from_name(*template_name, {}, dir, args.get("system", ""));
    require(prompts_ids.empty(), "--template formats text prompts; it does not apply to --prompt-ids");
  }
  s.stop.max_new_tokens = args.get_int("max-new-tokens", 256, 1);
  s.stop.stop_strings = args.list("stop");
  if (prompt_template)
    for (const auto& stop : prompt_template->stop_strings()) s.stop.stop_strings.push_back(stop);
  s.stop.ignore_eos = args.flag("ignore-eos");
  s.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
  const int64_t batch_option = args.get_int("batch", 64, 1);
  std::vector<JsonlPrompt> jsonl_prompts;
  if (input) jsonl_prompts = read_jsonl(*input);
  // Per-line limits (checked before the model loads): the request's per-completion limits when
  // any line has one.
  const bool per_line_limits = std::any_of(jsonl_prompts.begin(), jsonl_prompts.end(),
                                           [](const JsonlPrompt& p) { return !p.max_new_tokens.empty(); });
  if (per_line_limits) {
    for (const auto& p : jsonl_prompts) {
      const auto& limits = p.max_new_tokens;
      require(limits.empty() || limits.size() == 1 || static_cast<int64_t>(limits.size()) == request.group_size,
              p.where + ": max_new_tokens has " + std::to_string(limits.size()) +
                  " values; give one, or one per sample (-n " + std::to_string(request.group_size) + ")");
      for (int64_t i = 0; i < request.group_size; ++i) {
        const int64_t limit = limits.empty() ? s.stop.max_new_tokens : limits[limits.size() == 1 ? 0 : i];
        require(limit >= 1 && limit <= s.stop.max_new_tokens,
                p.where + ": max_new_tokens " + std::to_string(limit) + " is outside [1, --max-new-tokens " +
                    std::to_string(s.stop.max_new_tokens) + "]");
        request.max_new_tokens_each.push_back(limit);
      }
    }
  }

  const auto device = parse_device(args.get("device", torch::cuda::is_available() ? "cuda" : "cpu"));
  LoadOptions load;
  load.device = device;
  if (auto d = args.get("dtype")) load.dtype = parse_dtype(*d);
  else if (device.is_cuda()) load.dtype = torch::kBFloat16;
  auto model = load_model(dir, load);

  std::optional<Tokenizer> tokenizer;
  const bool has_tokenizer = fs::exists(dir / "tokenizer.json") || fs::exists(dir / "vocab.json");
  if (has_tokenizer) tokenizer = Tokenizer::from_dir(dir);
  require(prompts_text.empty() || tokenizer, "--prompt needs a tokenizer in " + dir.string() +
                                                 " (tokenizer.json); use --prompt-ids otherwise");

  const Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  s.stop.eos_token_ids = args.get("eos-ids") ? cli::parse_id_list(*args.get("eos-ids"), "eos-ids")
                                             : recipes::default_eos_ids(dir, model->config(), tok);
  std::string eos_text;
  for (auto id : s.stop.eos_token_ids) {
    if (!eos_text.empty()) eos_text += ',';
    eos_text += std::to_string(id);
  }
  std::cerr << sampling.summary << ", eos ids " << (eos_text.empty() ? "none" : eos_text) << " ("
            << (args.get("eos-ids") ? "given" : "config.json, generation_config.json, tokenizer_config.json") << ")";
  if (prompt_template) std::cerr << ", template " << prompt_template->name();
  std::cerr << "\n";
  // A text prompt, through the template when one is given.
  auto encode_text = [&](const std::string& text) {
    if (!prompt_template) return tokenizer->encode(text);
    return tokenizer->encode(prompt_template->render(text), !prompt_template->includes_bos());
  };
  require(s.stop.stop_strings.empty() || tokenizer, "--stop needs a tokenizer in " + dir.string());

  PromptSource source;
  if (input) {
    for (auto& p : jsonl_prompts) {
      if (p.is_text) {
        require(tokenizer.has_value(), p.where + ": a text prompt needs the model's tokenizer");
        auto encoded = encode_text(p.text);
        source.ids.emplace_back(encoded.begin(), encoded.end());
        source.texts.push_back(std::move(p.text));
      } else {
        source.ids.push_back(std::move(p.ids));
        source.texts.emplace_back();
      }
    }
  } else if (!prompts_ids.empty()) {
    for (const auto& p : prompts_ids) {
      source.ids.push_back(cli::parse_id_list(p, "prompt-ids"));
      source.texts.emplace_back();
    }
  } else {
    for (const auto& p : prompts_text) {
      auto encoded = encode_text(p);
      source.ids.emplace_back(encoded.begin(), encoded.end());
      source.texts.push_back(p);
    }
  }

  TextDecoder decoder;
  if (tokenizer) decoder = recipes::make_text_decoder(*tokenizer);
  EngineOptions options;
  options.use_cuda_graphs = !args.flag("no-graphs");
  RolloutEngine engine(*model, options, decoder);

  const int64_t total_prompts = static_cast<int64_t>(source.ids.size());
  // One request for everything: --batch prompts' rows decode at once (continuous batching).
  if (input) request.max_rows = std::min(batch_option, total_prompts) * request.group_size;
  ProgressBar bar(total_prompts * request.group_size, "sequences");
  const auto started = std::chrono::steady_clock::now();
  auto show_progress = [&](int64_t done, int64_t tokens) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto rate = static_cast<long long>(seconds > 0 ? tokens / seconds : 0.0);
    bar.update(done, {{"tokens", std::to_string(tokens)}, {"tokens/s", std::to_string(rate)}});
  };
  std::optional<AtomicFileWriter> out;
  if (output) out.emplace(*output);
  int64_t written = 0;
  {
    request.prompts = std::move(source.ids);
    auto result = engine.generate(request, [&](int64_t finished, int64_t, int64_t tokens) {
      show_progress(finished, tokens);
    });
    for (const auto& c : result.completions) {
      ++written;
      const int64_t index = c.prompt_index;
      if (out) {
        const std::string line = completion_json(c, index, source.texts[index]) + "\n";
        out->write(line.data(), line.size());
      } else {
        std::cout << "=== prompt " << index << " sample " << c.sample_index << " (" << finish_reason_name(c.finish_reason)
                  << ", " << c.tokens.size() << " tokens)\n";
        if (decoder.decode) {
          std::cout << c.text << "\n";
        } else {
          for (size_t i = 0; i < c.tokens.size(); ++i) std::cout << (i ? "," : "") << c.tokens[i];
          std::cout << "\n";
        }
      }
    }
  }
  bar.finish();
  if (out) {
    out->commit();
    std::cerr << "wrote " << written << " completions to " << *args.get("output") << "\n";
  }
  return 0;
}

const cli::CommandRegistration kGenerate({"generate",
                                          "sample completions (--prompt, --prompt-ids or --input JSONL) with the "
                                          "rollout engine; --output replaces an existing file only with --overwrite",
     {.usage = "--model DIR (--prompt TEXT ... | --prompt-file F ... | --prompt-ids IDS | --input FILE --output FILE) [options]",
      .description =
          "Samples completions with the rollout engine. Text prompts are encoded with DIR's tokenizer (with its\n"
          "special tokens). --input lines are objects with \"prompt\" or \"prompt_ids\" (and optionally \"max_new_tokens\":\n"
          "that prompt's limit, or one per sample, each at most --max-new-tokens); each --output line is\n"
          "one completion (prompt_index, sample_index, text, tokens, logprobs, finish_reason).",
      .options = with_options({{"model", "DIR", "required", "a Hugging Face model folder"},
                  {"prompt", "TEXT", "", "a text prompt; repeatable"},
                  {"prompt-file", "F", "", "a text prompt read whole from file F (- for standard input); repeatable"},
                  {"prompt-ids", "IDS", "", "a prompt as comma-separated token ids; repeatable"},
                  {"input", "FILE", "", "prompts as JSON Lines (needs --output)"},
                  {"output", "FILE", "stdout", "completions as JSON Lines, written when complete"},
                  {"n", "N", "1", "samples per prompt", "-n"},
                  {"template", "NAME", "none (the prompt as given)",
                   "format text prompts with a prompt template: model (the model's chat template), r1_zero, "
                   "r1_zero_think, chatml, deepseek_r1, or a pattern holding {prompt}"},
                  {"system", "TEXT", "", "a system prompt for --template model, chatml or deepseek_r1"},
                  {"max-new-tokens", "N", "256", "the longest completion"},
                  {"seed", "S", "0", "sampling seed"},
                  {"stop", "STR", "", "a stop string; repeatable"},
                  {"eos-ids", "IDS", "the model's (config, generation and tokenizer configs)", "end-of-sequence token ids"},
                  {"ignore-eos!", "", "", "keep generating past an end-of-sequence token"},
                  {"device", "DEV", "cuda if available, else cpu", "cpu or cuda"},
                  {"dtype", "D", "bfloat16 on cuda, else the model's", "float32, bfloat16 or float16"},
                  {"no-graphs!", "", "", "no CUDA graphs in decoding"},
                  {"batch", "N", "64",
                   "--input: prompts decoding at once; a finished prompt's rows take the next waiting prompt"},
                  {"overwrite!", "", "", "replace an existing --output file"}},
                           sampling_cli_options("generation_config.json's, else 1"), "max-new-tokens"),
      .examples = {"aha generate --model models/tiny --prompt 'Question: 2+3?\\nAnswer:' -n 4 --temperature 0.7",
                   "aha generate --model Qwen2.5-1.5B-Instruct --template model --system 'Be brief.' --prompt 'What is 2+3?'",
                   "aha generate --model M --input prompts.jsonl --output completions.jsonl --max-new-tokens 512"}},
                                          run_generate});

}  // namespace
}  // namespace aha
