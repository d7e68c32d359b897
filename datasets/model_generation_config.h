// The sampling defaults a model directory ships in generation_config.json (temperature, top_p,
// top_k, do_sample), and how they combine with what the user gives: the user's value wins,
// then the model's, then aha's own default; do_sample=false means greedy (temperature 0). TRL,
// verl and vLLM apply the same file. Read from the file, not the model object, like
// model_chat_template.h, so that datasets/ and tools/ need no policy/.
//
// Contract: a missing file gives no defaults; a present one with a field of the wrong type or
// range is an aha::Error naming the file and field. Unknown fields are ignored (the file holds
// many that aha does not use: repetition_penalty, max_new_tokens, ...).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace aha {

struct ModelGenerationConfig {
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k;
  std::optional<bool> do_sample;
  std::string file;  // the file read, "" when there is none
};

ModelGenerationConfig load_model_generation_config(const std::filesystem::path& model_dir);

struct SamplingChoice {
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  // One line: each value and where it came from ("temperature 0.6 (generation_config.json), ...").
  std::string summary;
};

// given_*: what the user set (nullopt: not given); fallback: aha's defaults.
SamplingChoice choose_sampling(std::optional<double> given_temperature, std::optional<double> given_top_p,
                               std::optional<int64_t> given_top_k, const ModelGenerationConfig& model,
                               const SamplingChoice& fallback);

}  // namespace aha
