#include "recipes/runner/evaluation.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "reward/math_answer.h"
#include "reward/math_equivalence.h"

namespace aha::recipes {
namespace {

std::string number(double v) { return std::to_string(v); }

// The final answer as math_accuracy extracts it.
std::optional<std::string> final_answer(const std::string& text, bool require_answer_tag, reward::ExtractionMode mode) {
  if (!require_answer_tag) return reward::extract_final_answer(text, mode);
  auto answer = reward::extract_answer_tag(text);
  if (answer) answer = reward::extract_final_answer(*answer, mode).value_or(*answer);
  return answer;
}

reward::ExtractionMode extraction_mode(const EvalOptions& options) {
  return reward::parse_extraction_mode(options.extraction.value_or("strict"), "eval: extraction");
}

bool same_answer(const std::string& a, const std::string& b) {
  return a == b || reward::math_answers_equivalent(a, b) || reward::math_answers_equivalent(b, a);
}

EvalSummary summarize_records(const std::vector<const std::vector<EvalRecord>*>& parts, const EvalOptions& options);

// Full marks from the verifier.
bool full_marks(double value) { return value >= 1.0 - 1e-9; }

}  // namespace

bool requires_answer_tag(const EvalOptions& options) {
  return options.require_answer_tag.value_or(options.prompt_template.r1_format());
}

void validate(const EvalOptions& options) {
  require(options.samples >= 1, "eval: samples (k) must be at least 1, got " + std::to_string(options.samples));
  require(options.temperature >= 0, "eval: temperature must be >= 0, got " + number(options.temperature));
  require(options.samples == 1 || options.temperature > 0,
          "eval: " + std::to_string(options.samples) +
              " samples per example need a temperature > 0 (temperature 0 is greedy: every sample would be the "
              "same)");
  require(options.top_p > 0 && options.top_p <= 1, "eval: top_p must be in (0, 1], got " + number(options.top_p));
  require(options.max_new_tokens >= 1,
          "eval: max_new_tokens must be at least 1, got " + std::to_string(options.max_new_tokens));
  require(options.prompts_per_batch >= 1,
          "eval: prompts_per_batch must be at least 1, got " + std::to_string(options.prompts_per_batch));
  extraction_mode(options);  // throws naming the option
  // The verifier spec. In-process built-ins are cheap to build, so their options are checked
  // now too; other kinds (plug-ins, code) are built by evaluate().
  for (const auto& spec : eval_reward_specs(options)) {
    static const std::set<std::string> kBuiltIn = {"math_accuracy", "format", "language_consistency", "length"};
    if (kBuiltIn.count(spec.kind)) reward::create_reward(spec);
  }
}

std::vector<reward::RewardSpec> eval_reward_specs(const EvalOptions& options) {
  auto specs = reward::parse_reward_specs(options.correctness_reward);
  require(specs.size() == 1, "eval: the verifier '" + options.correctness_reward + "' names " +
                                 std::to_string(specs.size()) + " rewards; expected exactly one");
  reward::RewardSpec correct = specs[0];
  const auto& kinds = reward::reward_kinds();
  if (std::find(kinds.begin(), kinds.end(), correct.kind) == kinds.end()) {
    std::string known;
    for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
    throw Error("eval: the verifier's kind '" + correct.kind + "' is unknown; kinds are: " + known);
  }
  correct.name = kCorrectReward;
  correct.weight = 1;
  if (correct.kind == "math_accuracy") {
    auto doc = json::parse(correct.options_json, "eval: the verifier's options");
    require(doc.IsObject(), "eval: the verifier's options must be a JSON object");
    if (!doc.HasMember("require_answer_tag"))
      doc.AddMember("require_answer_tag", requires_answer_tag(options), doc.GetAllocator());
    if (options.extraction && !doc.HasMember("extraction"))
      doc.AddMember("extraction", rapidjson::Value(options.extraction->c_str(), doc.GetAllocator()), doc.GetAllocator());
    correct.options_json = json::to_string(doc);
  }
  std::vector<reward::RewardSpec> out{correct};
  if (options.prompt_template.r1_format()) {
    reward::RewardSpec format;
    format.name = kFormatReward;
    format.kind = "format";
    format.weight = 0;
    if (options.prompt_template.opens_think()) format.options_json = R"({"think_in_prompt": true})";
    out.push_back(format);
  }
  if (!options.language_reward.empty()) {
    auto language = reward::parse_reward_specs("[" + options.language_reward + "]");
    require(language.size() == 1 && language[0].kind == "language_consistency",
            "eval: the language reward must be one language_consistency reward spec");
    language[0].name = kLanguageReward;
    language[0].weight = 0;
    out.push_back(language[0]);
  }
  return out;
}

MajorityVote majority_vote(const std::vector<std::optional<std::string>>& answers) {
  struct Group {
    size_t first, votes;
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) continue;
    auto joined = std::find_if(groups.begin(), groups.end(),
                               [&](const Group& g) { return same_answer(*answers[i], *answers[g.first]); });
    if (joined != groups.end())
      ++joined->votes;
    else
      groups.push_back({i, 1});
  }
  MajorityVote vote;
  for (const auto& g : groups) {  // in order of first answers: a tie keeps the earlier group
    if (g.votes > vote.votes) {
      vote.representative = g.first;
      vote.votes = g.votes;
    }
  }
  return vote;
}

DatasetEval summarize_dataset(const std::string& name, const std::vector<Example>& examples,
                              const std::vector<SampledExample>& sampled, const EvalOptions& options) {
  require(examples.size() == sampled.size(), "eval: data set '" + name + "' has " + std::to_string(examples.size()) +
                                                 " examples but " + std::to_string(sampled.size()) + " sampled");
  const bool tag = requires_answer_tag(options);
  const reward::ExtractionMode mode = extraction_mode(options);
  const bool format = options.prompt_template.r1_format();
  DatasetEval out;
  out.name = name;
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    const SampledExample& s = sampled[i];
    require(s.completions.size() == s.scores.size(), "eval: example '" + e.id + "' has " +
                                                         std::to_string(s.completions.size()) + " completions but " +
                                                         std::to_string(s.scores.size()) + " scores");
    EvalRecord r;
    r.id = e.id;
    r.prompt = e.prompt;
    r.gold = e.kind == TaskKind::math ? reward::extract_gold_answer(e.gold, mode) : e.gold;
    for (size_t j = 0; j < s.completions.size(); ++j) {
      const Completion& c = s.completions[j];
      const reward::ScoredSample& score = s.scores[j];
      auto value = score.components.find(kCorrectReward);
      require(value != score.components.end(),
              "eval: example '" + e.id + "' was not scored by the verifier (no '" + kCorrectReward + "' component)");
      r.completions.push_back(c.text);
      r.answers.push_back(final_answer(c.text, tag, mode));
      r.correct.push_back(full_marks(value->second));
      if (format) {
        auto f = score.components.find(kFormatReward);
        r.well_formed.push_back(f != score.components.end() && full_marks(f->second));
      }
      if (!options.language_reward.empty()) {
        auto l = score.components.find(kLanguageReward);
        r.language_mixed.push_back(l == score.components.end() || l->second < options.language_mix_threshold);
      }
      r.response_tokens.push_back(static_cast<int64_t>(c.tokens.size()));
      r.finish_reasons.push_back(c.finish_reason);
      auto error = score.errors.find(kCorrectReward);
      r.verifier_errors.push_back(error == score.errors.end() ? "" : error->second);
    }
    auto vote = majority_vote(r.answers);
    if (vote.representative) {
      r.majority_answer = r.answers[*vote.representative];
      r.majority_correct = r.correct[*vote.representative];
    }
    out.records.push_back(std::move(r));
  }
  out.summary = summarize_records({&out.records}, options);
  return out;
}

double unbiased_pass_at(int64_t samples, int64_t correct, int64_t j) {
  require(samples >= 1 && correct >= 0 && correct <= samples && j >= 1 && j <= samples,
          "pass@j needs 1 <= j <= samples and 0 <= correct <= samples");
  const int64_t wrong = samples - correct;
  if (wrong < j) return 1.0;  // every draw of j holds a correct one
  // C(wrong, j) / C(samples, j) = prod_{i = wrong+1 .. samples} (1 - j / i), without overflow.
  double all_wrong = 1.0;
  for (int64_t i = wrong + 1; i <= samples; ++i) all_wrong *= 1.0 - static_cast<double>(j) / static_cast<double>(i);
  return 1.0 - all_wrong;
}

std::vector<int64_t> pass_at_ks(int64_t samples) {
  std::vector<int64_t> ks;
  for (int64_t j = 1; j < samples; j *= 2) ks.push_back(j);
  if (samples >= 1) ks.push_back(samples);
  return ks;
}

EvalSummary summarize_overall(const std::vector<DatasetEval>& datasets, const EvalOptions& options) {
  std::vector<const std::vector<EvalRecord>*> parts;
  for (const auto& d : datasets) parts.push_back(&d.records);
  return summarize_records(parts, options);
}

namespace {

EvalSummary summarize_records(const std::vector<const std::vector<EvalRecord>*>& parts, const EvalOptions& options) {
  EvalSummary s;
  s.samples = options.samples;
  int64_t completions = 0, well_formed = 0, truncated = 0, tokens = 0, mixed = 0;
  double pass = 0;
  const auto ks = pass_at_ks(options.samples);
  std::vector<double> pass_at(ks.size(), 0.0);
  bool format = options.prompt_template.r1_format();
  for (const auto* records : parts) {
    for (const auto& r : *records) {
      ++s.examples;
      const size_t k = r.correct.size();
      const auto right = std::count(r.correct.begin(), r.correct.end(), true);
      if (k > 0) pass += static_cast<double>(right) / k;
      for (size_t i = 0; i < ks.size(); ++i)
        if (ks[i] <= static_cast<int64_t>(k)) pass_at[i] += unbiased_pass_at(static_cast<int64_t>(k), right, ks[i]);
      s.maj_at_k += r.majority_correct;
      completions += static_cast<int64_t>(k);
      well_formed += std::count(r.well_formed.begin(), r.well_formed.end(), true);
      mixed += std::count(r.language_mixed.begin(), r.language_mixed.end(), true);
      for (size_t j = 0; j < k; ++j) {
        tokens += r.response_tokens[j];
        s.max_response_tokens = std::max(s.max_response_tokens, r.response_tokens[j]);
        truncated += r.finish_reasons[j] == FinishReason::kLength;
        s.verifier_errors += !r.verifier_errors[j].empty();
      }
    }
  }
  if (s.examples > 0) {
    s.pass_at_1 = pass / s.examples;
    s.maj_at_k /= s.examples;
    for (size_t i = 0; i < ks.size(); ++i) s.pass_at.emplace_back(ks[i], pass_at[i] / s.examples);
  }
  if (completions > 0) {
    s.mean_response_tokens = static_cast<double>(tokens) / completions;
    s.truncated_rate = static_cast<double>(truncated) / completions;
  }
  if (format) s.format_rate = completions > 0 ? static_cast<double>(well_formed) / completions : 0.0;
  if (!options.language_reward.empty())
    s.language_mix_rate = completions > 0 ? static_cast<double>(mixed) / completions : 0.0;
  return s;
}

}  // namespace

EvalResult evaluate(RolloutEngine& engine, const Tokenizer& tokenizer, const std::vector<EvalDataset>& datasets,
                    const EvalOptions& options, const ProgressFn& progress) {
  validate(options);
  require(!datasets.empty(), "eval: no data sets to evaluate");
  std::set<std::string> names;
  std::vector<Example> all;
  for (const auto& d : datasets) {
    require(!d.name.empty(), "eval: a data set has no name");
    require(names.insert(d.name).second, "eval: two data sets are named '" + d.name + "'");
    require(!d.examples.empty(), "eval: data set '" + d.name + "' has no examples");
    all.insert(all.end(), d.examples.begin(), d.examples.end());
  }

  SamplingOptions sampling;
  sampling.group_size = options.samples;
  sampling.prompts_per_batch = options.prompts_per_batch;
  sampling.settings.sampler.temperature = options.temperature;
  sampling.settings.sampler.top_p = options.top_p;
  sampling.settings.sampler.top_k = options.top_k;
  sampling.settings.stop.max_new_tokens = options.max_new_tokens;
  sampling.settings.stop.eos_token_ids = options.eos_token_ids;
  sampling.settings.seed = options.seed;

  const auto start = std::chrono::steady_clock::now();
  reward::RewardRunner runner(eval_reward_specs(options), options.reward_threads);
  auto sampled = sample_and_score(engine, tokenizer, options.prompt_template, all, sampling, runner, progress);

  EvalResult result;
  size_t first = 0;
  for (const auto& d : datasets) {
    std::vector<SampledExample> part(std::make_move_iterator(sampled.begin() + first),
                                     std::make_move_iterator(sampled.begin() + first + d.examples.size()));
    first += d.examples.size();
    result.datasets.push_back(summarize_dataset(d.name, d.examples, part, options));
  }
  result.overall = summarize_overall(result.datasets, options);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::vector<std::pair<std::string, double>> eval_metrics(const EvalResult& result) {
  std::vector<std::pair<std::string, double>> out;
  auto add = [&out](const std::string& prefix, const EvalSummary& s) {
    out.emplace_back(prefix + "accuracy", s.pass_at_1);
    for (const auto& [j, value] : s.pass_at)
      if (j > 1) out.emplace_back(prefix + "pass@" + std::to_string(j), value);
    out.emplace_back(prefix + "maj_accuracy", s.maj_at_k);
    if (s.format_rate) out.emplace_back(prefix + "format_rate", *s.format_rate);
    if (s.language_mix_rate) out.emplace_back(prefix + "language_mix_rate", *s.language_mix_rate);
    out.emplace_back(prefix + "mean_response_tokens", s.mean_response_tokens);
    out.emplace_back(prefix + "truncated_rate", s.truncated_rate);
  };
  add("eval/", result.overall);
  for (const auto& d : result.datasets) add("eval/" + d.name + "/", d.summary);
  return out;
}

}  // namespace aha::recipes
