#include "tools/sampling_args.h"

#include <algorithm>
#include <optional>

namespace aha {

std::vector<cli::Option> sampling_cli_options(const std::string& temperature_fallback) {
  return {{"temperature", "T", temperature_fallback, "sampling temperature (0: greedy)"},
          {"top-p", "P", "generation_config.json's, else 1", "nucleus sampling"},
          {"top-k", "K", "generation_config.json's, else 0 (off)", "top-k sampling"},
          {"ignore-generation-config!", "", "", "do not take sampling defaults from generation_config.json"}};
}

SamplingChoice sampling_from_args(const cli::Args& args, const std::filesystem::path& model_dir,
                                  const SamplingChoice& fallback) {
  auto given_double = [&](const char* name) -> std::optional<double> {
    if (!args.get(name)) return std::nullopt;
    return args.get_double(name, 0);
  };
  const std::optional<int64_t> top_k =
      args.get("top-k") ? std::optional<int64_t>(args.get_int("top-k", 0, 0)) : std::nullopt;
  return choose_sampling(given_double("temperature"), given_double("top-p"), top_k,
                         args.flag("ignore-generation-config") ? ModelGenerationConfig{}
                                                               : load_model_generation_config(model_dir),
                         fallback);
}

std::vector<cli::Option> with_options(std::vector<cli::Option> options, const std::vector<cli::Option>& more,
                                      const std::string& before) {
  auto at = std::find_if(options.begin(), options.end(), [&](const cli::Option& o) { return o.name == before; });
  options.insert(at, more.begin(), more.end());
  return options;
}

}  // namespace aha
