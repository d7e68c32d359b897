// `aha model init | info | logprobs`: make, inspect and score Hugging Face-format models.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/output_dir.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "tools/cli.h"

namespace aha::cli {
namespace {

int model_init(const Args& args) {
  auto config = ModelConfig::from_file(args.required("config"));
  SaveModelOptions save;
  save.made_by = "model init";
  save.overwrite = args.flag("overwrite");
  check_output_dir(args.required("out"), "--out", save.made_by, save.overwrite);  // before any work
  if (auto tokenizer_dir = args.get("tokenizer")) {
    // The tokenizer's ids must all be rows of the embedding; a larger vocab_size (padding, as
    // Qwen2's 151936 for its 151665 tokens) is fine.
    const auto tokenizer = Tokenizer::from_dir(*tokenizer_dir);
    require(tokenizer.id_limit() <= config.vocab_size,
            "--tokenizer " + *tokenizer_dir + " has token ids up to " + std::to_string(tokenizer.id_limit() - 1) +
                ", but --config " + args.required("config") + " has vocab_size " + std::to_string(config.vocab_size));
    save.copy_extras_from = *tokenizer_dir;
  }
  std::optional<torch::ScalarType> dtype;
  if (auto d = args.get("dtype")) dtype = parse_dtype(*d);
  auto model = init_model(config, static_cast<uint64_t>(args.get_int("seed", 0, 0)), dtype);
  save_model(*model, args.required("out"), save);
  std::cout << "wrote " << config.architecture << " with " << config.parameter_count() << " parameters ("
            << dtype_name(model->dtype()) << ") to " << args.required("out") << "\n";
  return 0;
}

int model_info(const Args& args) {
  std::filesystem::path dir = args.positional(0, "the model directory");
  auto c = ModelConfig::from_file(dir / "config.json");
  const int64_t params = c.parameter_count();
  const auto dtype = parse_dtype(c.torch_dtype);
  const double gib = double(params) * c10::elementSize(dtype) / (1 << 30);
  // Opening the checkpoint validates every header; a bad file is reported here too.
  auto model = load_model(dir, {torch::kCPU, dtype});
  std::ostringstream eos;
  for (size_t i = 0; i < c.eos_token_ids.size(); ++i) eos << (i ? "," : "") << c.eos_token_ids[i];
  auto count = [](int64_t n) {
    std::ostringstream out;
    out << n << " (" << std::fixed << std::setprecision(2);
    if (n >= 1e9) out << n / 1e9 << " B)";
    else out << n / 1e6 << " M)";
    return out.str();
  };
  std::ostringstream memory;
  memory << std::fixed << std::setprecision(2);
  if (gib >= 1.0) memory << gib << " GiB";
  else memory << gib * 1024 << " MiB";
  std::ostringstream experts;
  if (c.is_moe()) {
    experts << "experts           " << c.num_experts << " routed, top " << c.num_experts_per_tok << " of them per token ("
            << (c.model_type == "deepseek_v3" ? "sigmoid, grouped" : c.norm_topk_prob ? "renormalised" : "softmax")
            << " weights), width " << c.moe_intermediate_size
            << ", in " << c.moe_layer_count() << " of " << c.num_hidden_layers << " layers";
    if (c.deepseek_moe.n_shared_experts > 0) experts << ", plus " << c.deepseek_moe.n_shared_experts << " shared";
    experts << "\n";
  }
  std::cout << "architecture      " << c.architecture << "\n"
            << "parameters        " << count(params) << "\n"
            << "active parameters " << count(c.active_parameter_count()) << " per token\n"
            << "dtype             " << c.torch_dtype << "\n"
            << "weights memory    " << memory.str() << "\n"
            << "layers            " << c.num_hidden_layers << "\n"
            << "hidden / ffn      " << c.hidden_size << " / " << c.intermediate_size << "\n"
            << experts.str()
            << "heads (q / kv)    " << c.num_attention_heads << " / " << c.num_key_value_heads << " x " << c.head_dim << "\n"
            << "vocabulary        " << c.vocab_size << "\n"
            << "context           " << c.max_position_embeddings << " (rope theta " << std::fixed << std::setprecision(0) << c.rope_theta
            << ", scaling " << c.rope_scaling.type << ")\n"
            << "tied embeddings   " << (c.tie_word_embeddings ? "yes" : "no") << "\n"
            << "eos ids           " << eos.str() << "\n";
  return 0;
}

int model_logprobs(const Args& args) {
  std::filesystem::path dir = args.positional(0, "the model directory");
  auto ids = parse_id_list(args.required("ids"), "ids");
  if (ids.size() < 2) throw Error("--ids needs at least two tokens");
  const auto device = parse_device(args.get("device", "cpu"));
  const auto dtype = parse_dtype(args.get("dtype", "float32"));
  auto model = load_model(dir, {device, dtype});
  for (int64_t id : ids) {
    if (id < 0 || id >= model->config().vocab_size) {
      throw Error("--ids: token " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(model->config().vocab_size));
    }
  }
  torch::NoGradGuard no_grad;
  auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  auto logprobs = model->token_logprobs(input).to(torch::kCPU, torch::kFloat64).view({-1});
  // JSON has no NaN: a model that computes one is an error, never "-nan" in the output.
  const auto finite = torch::isfinite(logprobs);
  if (!finite.all().item<bool>()) {
    const int64_t at = (~finite).nonzero()[0][0].item<int64_t>();
    const double value = logprobs[at].item<double>();
    throw Error(dir.string() + ": the log-prob of token " + std::to_string(at + 1) + " is " +
                (std::isnan(value) ? "NaN" : value > 0 ? "+inf" : "-inf") +
                ", not a number; the weights or config.json of this model produce non-finite values");
  }
  std::cout << "{\"logprobs\": [";
  std::cout << std::setprecision(9);
  for (int64_t i = 0; i < logprobs.size(0); ++i) std::cout << (i ? ", " : "") << logprobs[i].item<double>();
  std::cout << "]}\n";
  return 0;
}

int model_convert(const Args& args) {
  std::filesystem::path dir = args.positional(0, "the model directory");
  const std::filesystem::path out = args.required("out");
  std::error_code ec;
  if (std::filesystem::equivalent(dir, out, ec))
    throw Error("--out " + out.string() + " is the input model directory; write the converted model elsewhere");
  // Shifted left by 20 below: the bound keeps that from overflowing.
  const int64_t shard_mb = args.get_int("max-shard-mb", 5 * 1024, 1, int64_t{1} << 40);
  const SaveModelOptions save{.copy_extras_from = dir,
                              .max_shard_bytes = static_cast<uint64_t>(shard_mb) << 20,
                              .made_by = "model convert",
                              .overwrite = args.flag("overwrite")};
  check_output_dir(out, "--out", save.made_by, save.overwrite);  // before any work
  std::optional<torch::ScalarType> dtype;
  if (auto d = args.get("dtype")) dtype = parse_dtype(*d);
  auto model = load_model(dir, {torch::kCPU, dtype});
  save_model(*model, out, save);
  std::cout << "wrote " << dtype_name(model->dtype()) << " model to " << args.required("out") << "\n";
  return 0;
}

const Option kDtype{"dtype", "D", "", "float32, bfloat16 or float16; default: the config's torch_dtype"};

CommandRegistration init_cmd(
    {"model init",
     "--config cfg.json --out DIR [--seed S] [--dtype D] [--overwrite]: a random model in HF format (DIR new or empty; "
     "--overwrite replaces an earlier `aha model init` output)",
     {.usage = "--config FILE --out DIR [options]",
      .description = "Writes a randomly initialised model of the shape in FILE (a Hugging Face config.json) to DIR,\n"
                     "in Hugging Face format (config.json, model.safetensors). DIR must be new or empty.",
      .options = {{"config", "FILE", "required", "the model's config.json (e.g. recipes/models/*.json)"},
                  {"out", "DIR", "required", "where to write the model"},
                  {"seed", "N", "0", "seed of the random weights"},
                  {"tokenizer", "DIR", "none", "copy this tokenizer (tokenizer.json, tokenizer_config.json, ...) into the model"},
                  kDtype,
                  {"overwrite!", "", "", "replace an earlier `aha model init` output in DIR (nothing else)"}},
      .examples = {"aha model init --config recipes/models/tiny-qwen2.json --out models/tiny --seed 1",
                   "aha model init --config recipes/models/qwen2.5-1.5b.json --tokenizer models/tok --out models/Qwen2.5-1.5B-random"}},
     model_init});
CommandRegistration convert_cmd(
    {"model convert", "DIR --out DIR2 [--dtype D] [--max-shard-mb N] [--overwrite]: re-save (cast, reshard) into a new or empty DIR2",
     {.usage = "DIR --out DIR2 [options]",
      .description = "Re-saves the model in DIR into DIR2 (new or empty), cast to --dtype and sharded, with the\n"
                     "tokenizer and other files of DIR copied along.",
      .options = {{"out", "DIR2", "required", "where to write the converted model"},
                  kDtype,
                  {"max-shard-mb", "N", "5120", "the largest safetensors shard, in MiB"},
                  {"overwrite!", "", "", "replace an earlier `aha model convert` output in DIR2 (nothing else)"}},
      .max_positional = 1,
      .examples = {"aha model convert models/tiny --out models/tiny-bf16 --dtype bfloat16"}},
     model_convert});
CommandRegistration info_cmd({"model info", "DIR: architecture, total and active parameters, dtype, memory",
                              {.usage = "DIR",
                               .description = "Prints the architecture, parameter counts (all weights, and those one token\n"
                                              "uses: for mixture-of-experts models only its top-k experts), dtype, weights\n"
                                              "memory and shape of the model in DIR, after checking its weights files.",
                               .max_positional = 1,
                               .examples = {"aha model info models/tiny"}},
                              model_info});
CommandRegistration logprobs_cmd(
    {"model logprobs", "DIR --ids 1,2,3 [--dtype float32|bfloat16] [--device cpu|cuda]: per-token log-probs as JSON",
     {.usage = "DIR --ids ID,ID,... [options]",
      .description = "Prints {\"logprobs\": [...]}: the log-probability of each token after the first given the\n"
                     "tokens before it, under the model in DIR.",
      .options = {{"ids", "ID,ID,...", "required", "at least two token ids, comma-separated"},
                  {"dtype", "D", "float32", "float32, bfloat16 or float16"},
                  {"device", "DEV", "cpu", "cpu or cuda"}},
      .max_positional = 1,
      .examples = {"aha model logprobs models/tiny --ids 1,17,99,4"}},
     model_logprobs});

}  // namespace
}  // namespace aha::cli
