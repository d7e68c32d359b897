#include "recipes/runner/evaluation.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/reflection_words.h"
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

EvalSummary summarize_records(const std::vector<const EvalRecord*>& records, const EvalOptions& options);

// The group_by field's value in an example's metadata as text ("3" for 3 or 3.0, a string as it
// is, with characters a metric name may not hold replaced by '_'), or "" when absent.
std::string group_value(const Example& e, const std::string& field) {
  if (field.empty()) return "";
  auto meta = json::parse(e.metadata, "metadata of example '" + e.id + "'");
  if (!meta.IsObject() || !meta.HasMember(field.c_str())) return "";
  const rapidjson::Value& v = meta[field.c_str()];
  std::string text;
  if (v.IsInt64()) {
    text = std::to_string(v.GetInt64());
  } else if (v.IsNumber()) {
    const double d = v.GetDouble();
    text = d == static_cast<double>(static_cast<int64_t>(d)) ? std::to_string(static_cast<int64_t>(d)) : number(d);
  } else if (v.IsString()) {
    text.assign(v.GetString(), v.GetStringLength());
  } else {
    text = json::to_string(v);
  }
  for (char& c : text)
    if (c == '/' || static_cast<unsigned char>(c) <= ' ') c = '_';
  return text;
}

// The field a data set is grouped by: options.group_by, or with "auto" the first of level,
// difficulty, steps that one of its examples has; "" when none.
std::string group_field(const std::vector<Example>& examples, const EvalOptions& options) {
  if (options.group_by != "auto") return options.group_by;
  for (const char* field : {"level", "difficulty", "steps"})
    for (const auto& e : examples)
      if (!group_value(e, field).empty()) return field;
  return "";
}

// Numbers in numeric order, then other values in text order.
bool group_before(const std::string& a, const std::string& b) {
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  const bool num_a = !a.empty() && *end_a == '\0', num_b = !b.empty() && *end_b == '\0';
  if (num_a != num_b) return num_a;
  if (num_a && x != y) return x < y;
  return a < b;
}

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
  out.group_field = group_field(examples, options);
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    const SampledExample& s = sampled[i];
    require(s.completions.size() == s.scores.size(), "eval: example '" + e.id + "' has " +
                                                         std::to_string(s.completions.size()) + " completions but " +
                                                         std::to_string(s.scores.size()) + " scores");
    EvalRecord r;
    r.id = e.id;
    r.group = group_value(e, out.group_field);
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
      r.reflection_words.push_back(count_reflection_words(c.text, default_reflection_words()));
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
  std::vector<const EvalRecord*> all;
  std::map<std::string, std::vector<const EvalRecord*>> by_value;
  for (const auto& r : out.records) {
    all.push_back(&r);
    if (!r.group.empty()) by_value[r.group].push_back(&r);
  }
  out.summary = summarize_records(all, options);
  if (by_value.empty()) out.group_field.clear();
  for (const auto& [value, records] : by_value) out.groups.push_back({value, summarize_records(records, options)});
  std::stable_sort(out.groups.begin(), out.groups.end(),
                   [](const GroupEval& a, const GroupEval& b) { return group_before(a.value, b.value); });
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
  std::vector<const EvalRecord*> all;
  for (const auto& d : datasets)
    for (const auto& r : d.records) all.push_back(&r);
  return summarize_records(all, options);
}

namespace {

EvalSummary summarize_records(const std::vector<const EvalRecord*>& records, const EvalOptions& options) {
  EvalSummary s;
  s.samples = options.samples;
  int64_t completions = 0, well_formed = 0, truncated = 0, tokens = 0, reflecting = 0, reflection_words = 0, mixed = 0;
  double pass = 0;
  const auto ks = pass_at_ks(options.samples);
  std::vector<double> pass_at(ks.size(), 0.0);
  bool format = options.prompt_template.r1_format();
  for (const EvalRecord* record : records) {
    const EvalRecord& r = *record;
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
      reflecting += r.reflection_words[j] > 0;
      reflection_words += r.reflection_words[j];
      s.verifier_errors += !r.verifier_errors[j].empty();
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
    s.reflection_rate = static_cast<double>(reflecting) / completions;
    s.reflection_words_per_completion = static_cast<double>(reflection_words) / completions;
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
  if (options.group_by != "auto" && !options.group_by.empty()) {
    const bool found = std::any_of(result.datasets.begin(), result.datasets.end(),
                                   [](const DatasetEval& d) { return !d.groups.empty(); });
    require(found, "eval: group_by '" + options.group_by + "': no example of any data set has this metadata field");
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
    out.emplace_back(prefix + "reflection_rate", s.reflection_rate);
  };
  add("eval/", result.overall);
  for (const auto& d : result.datasets) {
    add("eval/" + d.name + "/", d.summary);
    for (const auto& g : d.groups) add("eval/" + d.name + "/" + d.group_field + "_" + g.value + "/", g.summary);
  }
  return out;
}

}  // namespace aha::recipes
