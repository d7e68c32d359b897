// The sampling options that `aha generate`, `aha eval` and `aha distill` share: --temperature,
// --top-p, --top-k and --ignore-generation-config. A value not given comes from the model's
// generation_config.json (datasets/model_generation_config.h), else from the command's
// fallback, so the three commands sample alike from the same model.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/model_generation_config.h"
#include "tools/cli.h"

namespace aha {

// The four options for a command's spec; `temperature_fallback` is the help's default text.
std::vector<cli::Option> sampling_cli_options(const std::string& temperature_fallback);

// The values to sample with, and where each came from (SamplingChoice::summary).
SamplingChoice sampling_from_args(const cli::Args& args, const std::filesystem::path& model_dir,
                                  const SamplingChoice& fallback);

// `options` with `more` inserted before the first option named `before` (at the end when none is).
std::vector<cli::Option> with_options(std::vector<cli::Option> options, const std::vector<cli::Option>& more,
                                      const std::string& before);

}  // namespace aha
