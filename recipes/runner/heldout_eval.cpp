#include "recipes/runner/heldout_eval.h"

#include <torch/torch.h>

#include "core/error.h"
#include "datasets/synthetic_tasks.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/model/transformer.h"
#include "recipes/runner/sampling.h"
#include "rollout/rollout_engine.h"

namespace aha {
namespace {

std::optional<std::string> last_number_in(std::string_view text) {
  size_t e = text.size();
  while (e > 0 && !(text[e - 1] >= '0' && text[e - 1] <= '9')) --e;
  if (e == 0) return std::nullopt;
  size_t b = e;
  while (b > 0 && text[b - 1] >= '0' && text[b - 1] <= '9') --b;
  if (b > 0 && text[b - 1] == '-') --b;
  return std::string(text.substr(b, e - b));
}

}  // namespace

std::optional<std::string> final_number(std::string_view text) {
  const std::string_view marker = "The answer is";
  size_t at = text.rfind(marker);
  if (at != std::string_view::npos) {
    std::string_view rest = text.substr(at + marker.size());
    size_t b = 0;
    while (b < rest.size() && rest[b] == ' ') ++b;
    size_t e = b;
    if (e < rest.size() && rest[e] == '-') ++e;
    size_t digits = e;
    while (e < rest.size() && rest[e] >= '0' && rest[e] <= '9') ++e;
    if (e > digits) return std::string(rest.substr(b, e - b));
  }
  return last_number_in(text);
}

HeldoutEvalResult evaluate_plain_heldout(const Transformer& model, const Tokenizer& tokenizer,
                                         const PretrainSpec::Eval& spec) {
  HeldoutEvalResult result;
  if (spec.problems <= 0) return result;
  const int levels = spec.max_difficulty - spec.min_difficulty + 1;
  std::vector<Example> problems;
  for (int level = 0; level < levels; ++level) {
    size_t n = size_t(spec.problems / levels + (level < spec.problems % levels ? 1 : 0));
    const int d = spec.min_difficulty + level;
    for (auto& ex : generate_arithmetic(n, spec.seed, ArithmeticConfig::for_difficulty(d), Split::heldout))
      problems.push_back(std::move(ex));
  }
  RolloutRequest request;
  for (const auto& ex : problems) {
    auto ids = tokenizer.encode("Question: " + ex.prompt + "\nAnswer:");
    request.prompts.emplace_back(ids.begin(), ids.end());
  }
  request.group_size = 1;
  auto& settings = request.settings;
  settings.sampler.temperature = 0.0;
  settings.stop.max_new_tokens = spec.max_new_tokens;
  settings.stop.stop_strings = {"\n"};
  if (tokenizer.eos_id()) settings.stop.eos_token_ids = {*tokenizer.eos_id()};
  EngineOptions options;
  options.use_cuda_graphs = false;  // one request: capture would cost more than it saves
  RolloutEngine engine(model, options, recipes::make_text_decoder(tokenizer));
  auto rollout = engine.generate(request);
  for (const auto& c : rollout.completions) {
    const Example& ex = problems[size_t(c.prompt_index)];
    HeldoutEvalResult::Sample s{ex.prompt, c.text, ex.gold, false};
    auto answer = final_number(c.text);
    s.correct = answer && *answer == ex.gold;
    result.correct += s.correct;
    result.samples.push_back(std::move(s));
  }
  result.problems = int64_t(problems.size());
  return result;
}

}  // namespace aha
