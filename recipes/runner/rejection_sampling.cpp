#include "recipes/runner/rejection_sampling.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/files.h"
#include "core/json.h"
#include "core/text_lines.h"
#include "recipes/runner/sampling.h"
#include "reward/language_identifier.h"
#include "reward/reward_runner.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using rapidjson::Value;
constexpr const char* kStatsMarker = "aha rejection sampling statistics";

uint64_t mix(uint64_t seed, uint64_t first) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (first + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string layout_name(ReasoningLayout l) {
  return l == ReasoningLayout::both ? "both" : l == ReasoningLayout::think ? "think" : "field";
}

std::string fingerprint(const RejectionSamplingOptions& o, size_t prompts) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto s = [&](const std::string& t) { return Value(t.c_str(), a); };
  d.AddMember("prompts", static_cast<uint64_t>(prompts), a);
  d.AddMember("samples", o.samples, a);
  d.AddMember("keep", o.keep, a);
  Value filters(rapidjson::kArrayType);
  for (const auto& f : enabled_filters(o.filters)) filters.PushBack(s(f), a);
  d.AddMember("filters", filters, a);
  d.AddMember("language_threshold", o.filters.language_threshold, a);
  d.AddMember("max_paragraph_chars", o.filters.max_paragraph_chars, a);
  d.AddMember("min_tokens", o.filters.min_tokens, a);
  d.AddMember("max_tokens", o.filters.max_tokens, a);
  d.AddMember("near_dup_threshold", o.filters.near_dup_threshold, a);
  d.AddMember("template", s(o.prompt_template.name()), a);
  d.AddMember("temperature", o.temperature, a);
  d.AddMember("top_p", o.top_p, a);
  d.AddMember("top_k", o.top_k, a);
  d.AddMember("max_new_tokens", o.max_new_tokens, a);
  d.AddMember("seed", o.seed, a);
  d.AddMember("prompts_per_batch", o.prompts_per_batch, a);
  Value rewards(rapidjson::kArrayType);
  for (const auto& r : o.rewards) {
    Value spec(rapidjson::kObjectType);
    spec.AddMember("name", s(r.name), a);
    spec.AddMember("kind", s(r.kind), a);
    spec.AddMember("weight", r.weight, a);
    spec.AddMember("options", s(r.options_json), a);
    rewards.PushBack(spec, a);
  }
  d.AddMember("rewards", rewards, a);
  d.AddMember("layout", s(layout_name(o.layout)), a);
  d.AddMember("model", s(o.model), a);
  d.AddMember("stage", s(o.stage), a);
  d.AddMember("step", o.step, a);
  d.AddMember("data", s(o.data), a);
  return json::to_string(d);
}

std::string provenance(const RejectionSamplingOptions& o, const Example& e, size_t index, int64_t sample,
                       const reward::ScoredSample& score, const Completion& c) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto s = [&](const std::string& t) { return Value(t.c_str(), static_cast<rapidjson::SizeType>(t.size()), a); };
  d.AddMember("prompt_id", s(e.id.empty() ? std::to_string(index) : e.id), a);
  d.AddMember("prompt_index", static_cast<uint64_t>(index), a);
  d.AddMember("source", s(e.source), a);
  d.AddMember("model", s(o.model), a);
  d.AddMember("stage", s(o.stage), a);
  d.AddMember("step", o.step, a);
  d.AddMember("sample_index", sample, a);
  d.AddMember("template", s(o.prompt_template.name()), a);
  d.AddMember("gold", s(e.gold), a);
  d.AddMember("reward", static_cast<double>(score.total), a);
  Value rewards(rapidjson::kObjectType);
  for (const auto& [name, value] : score.components) rewards.AddMember(s(name), Value(static_cast<double>(value)), a);
  d.AddMember("rewards", rewards, a);
  d.AddMember("tokens", static_cast<int64_t>(c.tokens.size()), a);
  d.AddMember("finish_reason", s(finish_reason_name(c.finish_reason)), a);
  return json::to_string(d);
}

std::string counts_json(const RejectionStats& s) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("sampled", s.sampled, a);
  d.AddMember("kept", s.kept, a);
  d.AddMember("prompts_without_kept", s.prompts_without_kept, a);
  Value dropped(rapidjson::kObjectType), languages(rapidjson::kObjectType);
  for (const auto& [k, v] : s.dropped) dropped.AddMember(Value(k.c_str(), a), Value(v), a);
  for (const auto& [k, v] : s.languages) languages.AddMember(Value(k.c_str(), a), Value(v), a);
  d.AddMember("dropped", dropped, a);
  d.AddMember("languages", languages, a);
  return json::to_string(d);
}

void read_counts(const std::string& state, RejectionStats& s) {
  auto d = json::parse(state, "rejection sampling progress state");
  if (!d.IsObject() || !d.HasMember("sampled")) return;  // nothing done yet
  json::ObjectReader r(d, "rejection sampling progress state");
  s.sampled = r.get_int("sampled");
  s.kept = r.get_int("kept");
  s.prompts_without_kept = r.get_int("prompts_without_kept");
  for (const auto& m : d["dropped"].GetObject()) s.dropped[m.name.GetString()] = m.value.GetInt64();
  for (const auto& m : d["languages"].GetObject()) s.languages[m.name.GetString()] = m.value.GetInt64();
}

std::string dominant_language(const std::string& response) {
  std::string_view r = reasoning_of(response);
  auto found = reward::identify_languages(r.empty() ? std::string_view(response) : r);
  return found.languages.empty() ? "none" : found.languages.front().code;
}

// Token percentiles of the kept records, from the output file itself (so they cover a resumed run).
void length_figures(const fs::path& out, RejectionStats& s) {
  std::vector<int64_t> tokens;
  std::string text = read_jsonl_file(out);
  for_each_nonblank_line(text, out.string(), [&](std::string_view line, size_t number) {
    auto d = json::parse(line, out.string() + " line " + std::to_string(number));
    tokens.push_back(d["provenance"]["tokens"].GetInt64());
    return true;
  });
  if (tokens.empty()) return;
  std::sort(tokens.begin(), tokens.end());
  double sum = 0;
  for (int64_t t : tokens) sum += static_cast<double>(t);
  s.mean_tokens = sum / static_cast<double>(tokens.size());
  auto pct = [&](double p) {  // nearest rank
    size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(tokens.size())));
    return tokens[std::max<size_t>(rank, 1) - 1];
  };
  s.p10_tokens = pct(0.1);
  s.p50_tokens = pct(0.5);
  s.p90_tokens = pct(0.9);
  s.max_tokens = tokens.back();
}

void check_stats_file(const fs::path& path, ResumableJsonl::Mode mode) {
  if (!fs::exists(path) && !fs::is_symlink(path)) return;
  require(mode != ResumableJsonl::Mode::fresh,
          path.string() + " already exists; choose another --out, or give --overwrite to replace an earlier output");
  require_regular_file({"statistics file", path});
  std::string text = read_file(path, size_t{16} << 20);
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  require(!d.HasParseError() && d.IsObject() && d.HasMember("marker") && d["marker"].IsString() &&
              std::string(d["marker"].GetString()) == kStatsMarker,
          path.string() + " exists and is not a statistics file aha wrote; move it away (aha does not overwrite "
                          "files it did not create)");
}

}  // namespace

std::vector<reward::RewardSpec> default_rejection_rewards(const PromptTemplate& t, const RejectionFilters& filters) {
  std::vector<reward::RewardSpec> specs;
  reward::RewardSpec acc;
  acc.name = filters.accuracy_reward;
  acc.kind = "math_accuracy";
  acc.options_json = t.r1_format() ? R"({"require_answer_tag": true})" : "{}";
  specs.push_back(acc);
  if (t.r1_format()) {
    reward::RewardSpec format;
    format.name = filters.format_reward;
    format.kind = "format";
    format.weight = 0.5;
    format.options_json = t.opens_think() ? R"({"think_in_prompt": true})" : "{}";
    specs.push_back(format);
  }
  if (filters.language) {
    reward::RewardSpec language;
    language.name = filters.language_reward;
    language.kind = "language_consistency";
    language.weight = 0.1;
    specs.push_back(language);
  }
  return specs;
}

void validate(const RejectionSamplingOptions& o) {
  require(o.samples >= 1, "rejection sampling: samples must be at least 1, got " + std::to_string(o.samples));
  require(o.keep >= 1, "rejection sampling: keep must be at least 1, got " + std::to_string(o.keep));
  require(o.temperature >= 0, "rejection sampling: temperature must be >= 0");
  require(o.samples == 1 || o.temperature > 0,
          "rejection sampling: " + std::to_string(o.samples) +
              " samples need a temperature > 0 (temperature 0 is greedy: every sample would be the same)");
  require(o.top_p > 0 && o.top_p <= 1, "rejection sampling: top_p must be in (0, 1]");
  require(o.max_new_tokens >= 1, "rejection sampling: max_new_tokens must be at least 1");
  require(o.prompts_per_batch >= 1, "rejection sampling: prompts_per_batch must be at least 1");
  validate(o.filters);
  auto specs = o.rewards.empty() ? default_rejection_rewards(o.prompt_template, o.filters) : o.rewards;
  auto need = [&](bool on, const std::string& filter, const std::string& name) {
    if (!on) return;
    std::string names;
    for (const auto& s : specs) {
      if (s.name == name) return;
      names += (names.empty() ? "" : ", ") + s.name;
    }
    throw Error("rejection sampling: filter '" + filter + "' reads the reward named '" + name +
                "', but the rewards are: " + names + " (name one '" + name + "', or switch the filter off)");
  };
  need(o.filters.correct, "correct", o.filters.accuracy_reward);
  need(o.filters.format, "format", o.filters.format_reward);
  need(o.filters.language, "language", o.filters.language_reward);
}

fs::path stats_path(const fs::path& out) {
  std::string s = out.string();
  if (s.size() > 6 && s.substr(s.size() - 6) == ".jsonl") s.resize(s.size() - 6);
  return fs::path(s + ".stats.json");
}

std::string stats_json(const RejectionStats& s) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("marker", rapidjson::StringRef(kStatsMarker), a);
  d.AddMember("prompts", s.prompts, a);
  d.AddMember("prompts_done", s.prompts_done, a);
  d.AddMember("sampled", s.sampled, a);
  d.AddMember("kept", s.kept, a);
  d.AddMember("prompts_without_kept", s.prompts_without_kept, a);
  Value filters(rapidjson::kArrayType), dropped(rapidjson::kObjectType), languages(rapidjson::kObjectType),
      length(rapidjson::kObjectType);
  for (const auto& f : s.filters) filters.PushBack(Value(f.c_str(), a), a);
  for (const auto& [k, v] : s.dropped) dropped.AddMember(Value(k.c_str(), a), Value(v), a);
  for (const auto& [k, v] : s.languages) languages.AddMember(Value(k.c_str(), a), Value(v), a);
  length.AddMember("mean", s.mean_tokens, a);
  length.AddMember("p10", s.p10_tokens, a);
  length.AddMember("p50", s.p50_tokens, a);
  length.AddMember("p90", s.p90_tokens, a);
  length.AddMember("max", s.max_tokens, a);
  d.AddMember("filters", filters, a);
  d.AddMember("dropped", dropped, a);
  d.AddMember("kept_tokens", length, a);
  d.AddMember("kept_languages", languages, a);
  return json::to_string(d, /*pretty=*/true) + "\n";
}

RejectionStats run_rejection_sampling(RolloutEngine& engine, const Tokenizer& tokenizer,
                                      const std::vector<Example>& examples, const RejectionSamplingOptions& given,
                                      const fs::path& out, ResumableJsonl::Mode mode, const ProgressFn& progress) {
  RejectionSamplingOptions o = given;
  if (o.rewards.empty()) o.rewards = default_rejection_rewards(o.prompt_template, o.filters);
  validate(o);
  check_stats_file(stats_path(out), mode);
  reward::RewardRunner runner(o.rewards, o.reward_threads);  // bad reward specs fail before any write
  ResumableJsonl writer(out, mode, fingerprint(o, examples.size()), "rejection sampling");

  RejectionStats stats;
  stats.prompts = static_cast<int64_t>(examples.size());
  stats.filters = enabled_filters(o.filters);
  read_counts(writer.state_json(), stats);
  const bool think_in_prompt = o.prompt_template.opens_think();

  SamplingOptions sampling;
  sampling.group_size = o.samples;
  sampling.settings.sampler = {o.temperature, o.top_k, o.top_p};
  sampling.settings.stop.eos_token_ids = o.eos_token_ids;
  sampling.settings.stop.max_new_tokens = o.max_new_tokens;
  sampling.prompts_per_batch = o.prompts_per_batch;

  sampling.settings.seed = mix(o.seed, 0);
  const int64_t n = stats.prompts, B = std::min(o.prompts_per_batch, std::max<int64_t>(n, 1)) * kRequestBatches;
  int64_t done = writer.complete() ? n : writer.units_done();
  const int64_t resumed_at = done;
  while (done < n) {
    const int64_t end = std::min(n, (done / B + 1) * B);  // windows aligned to multiples of B
    std::vector<Example> batch(examples.begin() + done, examples.begin() + end);
    sampling.first_prompt_index = done;  // the streams of each prompt's place, on resume too
    auto sampled = sample_and_score(engine, tokenizer, o.prompt_template, batch, sampling, runner,
                                    [&](int64_t finished, int64_t, int64_t tokens) {
                                      if (progress) progress((done - resumed_at) * o.samples + finished,
                                                             (n - resumed_at) * o.samples, tokens);
                                    });
    for (size_t i = 0; i < batch.size(); ++i) {
      const size_t index = static_cast<size_t>(done) + i;
      const auto& s = sampled[i];
      std::vector<Candidate> candidates;
      for (size_t j = 0; j < s.completions.size(); ++j) {
        Candidate c;
        c.text = assistant_text(s.completions[j].text, think_in_prompt);
        c.tokens = static_cast<int64_t>(s.completions[j].tokens.size());
        c.truncated = s.completions[j].finish_reason == FinishReason::kLength;
        c.components = s.scores[j].components;
        c.math = batch[i].kind == TaskKind::math;
        candidates.push_back(std::move(c));
      }
      FilterVerdicts verdicts = apply_filters(o.filters, candidates, o.keep);
      std::string lines;
      for (size_t k : verdicts.kept) {
        lines += sft_json_line(batch[i].prompt, candidates[k].text,
                               provenance(o, batch[i], index, static_cast<int64_t>(k), s.scores[k], s.completions[k]),
                               o.layout);
        ++stats.languages[dominant_language(candidates[k].text)];
      }
      for (const auto& why : verdicts.reasons)
        if (!why.empty()) ++stats.dropped[why];
      stats.sampled += static_cast<int64_t>(candidates.size());
      stats.kept += static_cast<int64_t>(verdicts.kept.size());
      stats.prompts_without_kept += verdicts.kept.empty();
      writer.append_unit(lines, counts_json(stats));
    }
    done = end;
  }
  if (!writer.complete()) writer.finish(counts_json(stats));
  stats.prompts_done = n;
  length_figures(out, stats);
  write_file_atomic(stats_path(out), stats_json(stats));
  return stats;
}

}  // namespace aha::recipes
