#include "recipes/runner/sampling.h"

#include <algorithm>
#include <future>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"

namespace aha::recipes {

namespace fs = std::filesystem;

std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const PromptTemplate& prompt_template,
                                   const Example& example) {
  const auto ids = tokenizer.encode(prompt_template.render(example.prompt),
                                    /*add_special_tokens=*/!prompt_template.includes_bos());
  return std::vector<int64_t>(ids.begin(), ids.end());
}

reward::RewardExample to_reward_example(const Example& example) {
  reward::RewardExample out;
  out.prompt = example.prompt;
  out.gold = example.gold;
  switch (example.kind) {
    case TaskKind::math:
      out.task = reward::TaskKind::math;
      break;
    case TaskKind::code:
      out.task = reward::TaskKind::code;
      break;
    case TaskKind::custom:
      out.task = reward::TaskKind::custom;
      break;
  }
  out.metadata_json = example.metadata;
  const CodeTests& tests = example.tests;
  if (!tests.test.empty()) out.tests.push_back(tests.test);                       // HumanEval: one check(candidate)
  out.tests.insert(out.tests.end(), tests.asserts.begin(), tests.asserts.end());  // MBPP
  out.entry_point = tests.entry_point;
  for (const auto& line : tests.imports) out.test_setup += line + "\n";
  return out;
}

std::vector<int64_t> default_eos_ids(const fs::path& model_dir, const ModelConfig& config, const Tokenizer* tokenizer) {
  std::vector<int64_t> ids = config.eos_token_ids;
  const fs::path generation = model_dir / "generation_config.json";
  if (fs::exists(generation)) {
    auto doc = json::parse(read_file(generation), generation.string());
    if (doc.IsObject() && doc.HasMember("eos_token_id") && !doc["eos_token_id"].IsNull()) {
      for (int64_t id : json::int_or_int_list(doc["eos_token_id"], generation.string() + ": eos_token_id"))
        ids.push_back(id);
    }
  }
  if (tokenizer && tokenizer->eos_id()) ids.push_back(*tokenizer->eos_id());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

TextDecoder make_text_decoder(const Tokenizer& tokenizer) {
  // A model samples from all its embedding rows, which may be more than the tokenizer's tokens
  // (a padded vocabulary); such an id stands for no text, as Hugging Face tokenizers decode it.
  const Tokenizer* tok = &tokenizer;
  TextDecoder decoder;
  decoder.token_bytes = [tok](int64_t id) {
    static const std::string kNoText;
    const auto narrow = static_cast<TokenId>(id);
    return narrow == id && tok->has_token(narrow) ? tok->token_bytes(narrow) : kNoText;
  };
  decoder.decode = [tok](const std::vector<int64_t>& ids) {
    std::vector<TokenId> narrow;
    narrow.reserve(ids.size());
    for (int64_t id : ids)
      if (static_cast<TokenId>(id) == id && tok->has_token(static_cast<TokenId>(id))) narrow.push_back(static_cast<TokenId>(id));
    return tok->decode(narrow);
  };
  return decoder;
}

namespace {

// splitmix64's finaliser of (seed, first): the requests' seed, with first = 0 (the seed that one
// request over all examples has always had, so that GRPO steps sample as before).
uint64_t batch_seed(uint64_t seed, uint64_t first) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (first + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<SampledExample> sample_and_score(RolloutEngine& engine, const Tokenizer& tokenizer,
                                             const PromptTemplate& prompt_template,
                                             const std::vector<Example>& examples, const SamplingOptions& options,
                                             reward::Scorer& runner, const ProgressFn& progress) {
  require(options.group_size >= 1,
          "sampling: group_size must be at least 1, got " + std::to_string(options.group_size));
  require(options.prompts_per_batch >= 1,
          "sampling: prompts_per_batch must be at least 1, got " + std::to_string(options.prompts_per_batch));
  require(options.first_prompt_index >= 0,
          "sampling: first_prompt_index must be >= 0, got " + std::to_string(options.first_prompt_index));
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t G = options.group_size;
  std::vector<SampledExample> out(static_cast<size_t>(n));
  if (n == 0) return out;

  RolloutRequest request;
  request.group_size = G;
  request.settings = options.settings;
  auto& stops = request.settings.stop.stop_strings;
  for (const auto& s : prompt_template.stop_strings())
    if (std::find(stops.begin(), stops.end(), s) == stops.end()) stops.push_back(s);

  std::vector<reward::RewardExample> reward_examples;
  reward_examples.reserve(examples.size());
  for (int64_t i = 0; i < n; ++i) {
    out[i].prompt_ids = encode_prompt(tokenizer, prompt_template, examples[i]);
    reward_examples.push_back(to_reward_example(examples[i]));
  }

  // Request r's rewards are scored on the runner's threads while request r + 1 generates.
  std::future<void> scoring;
  int64_t finished_before = 0, tokens_before = 0;
  // Rows beyond the examples would only be planned, never used.
  request.max_rows = std::min(options.prompts_per_batch, n) * G;
  // One seed for every request; each example's place (first_prompt_index) separates the streams.
  request.settings.seed = batch_seed(options.settings.seed, 0);
  const int64_t per_request = options.prompts_per_batch > n / kRequestBatches ? n : options.prompts_per_batch * kRequestBatches;
  for (int64_t first = 0; first < n; first += per_request) {
    const int64_t count = std::min(per_request, n - first);
    request.prompts.clear();
    for (int64_t i = first; i < first + count; ++i) request.prompts.push_back(out[i].prompt_ids);
    request.first_prompt_index = options.first_prompt_index + first;
    auto result = engine.generate(request, [&](int64_t finished, int64_t, int64_t tokens) {
      if (progress) progress(finished_before + finished, n * G, tokens_before + tokens);
    });
    finished_before += count * G;
    tokens_before += result.stats.generated_tokens;
    require(static_cast<int64_t>(result.completions.size()) == count * G,
            "sampling: the engine returned " + std::to_string(result.completions.size()) + " completions for " +
                std::to_string(count) + " prompts x " + std::to_string(G));

    std::vector<reward::ScoringInput> inputs;
    inputs.reserve(result.completions.size());
    for (auto& c : result.completions) {
      const int64_t index = first + c.prompt_index;
      reward::ScoringInput input;
      input.example = reward_examples[index];
      input.completion.text = c.text;
      input.completion.num_tokens = static_cast<int64_t>(c.tokens.size());
      inputs.push_back(std::move(input));
      c.prompt_index = index;
      out[index].completions.push_back(std::move(c));  // prompt-major, sample order
    }
    if (scoring.valid()) scoring.get();
    scoring = std::async(std::launch::async, [&runner, &out, first, count, G, inputs = std::move(inputs)]() mutable {
      auto scored = runner.score(std::move(inputs));
      for (int64_t i = 0; i < count; ++i)
        out[first + i].scores.assign(std::make_move_iterator(scored.begin() + i * G),
                                     std::make_move_iterator(scored.begin() + (i + 1) * G));
    });
  }
  scoring.get();
  return out;
}

}  // namespace aha::recipes
