#include "recipes/runner/eval_report.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/error.h"
#include "core/files.h"
#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

template <typename Writer>
void text(Writer& w, const std::string& s) {
  const std::string valid = utf8::lossy(s);
  w.String(valid.c_str(), static_cast<rapidjson::SizeType>(valid.size()));
}

template <typename Writer>
void optional_text(Writer& w, const std::optional<std::string>& s) {
  if (s)
    text(w, *s);
  else
    w.Null();
}

template <typename Writer>
void summary(Writer& w, const EvalSummary& s) {
  w.StartObject();
  w.Key("examples");
  w.Int64(s.examples);
  w.Key("samples_per_example");
  w.Int64(s.samples);
  w.Key("pass_at_1");
  w.Double(s.pass_at_1);
  w.Key("pass_at");
  w.StartObject();
  for (const auto& [j, value] : s.pass_at) {
    w.Key(std::to_string(j).c_str());
    w.Double(value);
  }
  w.EndObject();
  w.Key("maj_at_k");
  w.Double(s.maj_at_k);
  w.Key("format_rate");
  if (s.format_rate)
    w.Double(*s.format_rate);
  else
    w.Null();
  w.Key("mean_response_tokens");
  w.Double(s.mean_response_tokens);
  w.Key("max_response_tokens");
  w.Int64(s.max_response_tokens);
  w.Key("truncated_rate");
  w.Double(s.truncated_rate);
  w.Key("reflection_rate");
  w.Double(s.reflection_rate);
  w.Key("reflection_words_per_completion");
  w.Double(s.reflection_words_per_completion);
  w.Key("verifier_errors");
  w.Int64(s.verifier_errors);
  w.EndObject();
}

template <typename Writer>
void options_json(Writer& w, const EvalOptions& o) {
  w.StartObject();
  w.Key("template");
  text(w, o.prompt_template.name());
  w.Key("template_text");
  text(w, o.prompt_template.render("{prompt}"));
  w.Key("stop_strings");
  w.StartArray();
  for (const auto& s : o.prompt_template.stop_strings()) text(w, s);
  w.EndArray();
  w.Key("samples");
  w.Int64(o.samples);
  w.Key("temperature");
  w.Double(o.temperature);
  w.Key("top_p");
  w.Double(o.top_p);
  w.Key("max_new_tokens");
  w.Int64(o.max_new_tokens);
  w.Key("seed");
  w.Uint64(o.seed);
  w.Key("prompts_per_batch");
  w.Int64(o.prompts_per_batch);
  w.Key("eos_token_ids");
  w.StartArray();
  for (auto id : o.eos_token_ids) w.Int64(id);
  w.EndArray();
  w.Key("verifier");
  text(w, o.correctness_reward);
  w.Key("require_answer_tag");
  w.Bool(requires_answer_tag(o));
  w.Key("extraction");
  text(w, o.extraction.value_or("strict"));
  w.EndObject();
}

}  // namespace

std::string eval_report_json(const EvalResult& result, const EvalOptions& options, const EvalReportInfo& info) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("model");
  text(w, info.model);
  w.Key("created");
  text(w, info.created);
  w.Key("seconds");
  w.Double(result.seconds);
  w.Key("options");
  options_json(w, options);
  w.Key("overall");
  summary(w, result.overall);
  w.Key("datasets");
  w.StartArray();
  for (size_t i = 0; i < result.datasets.size(); ++i) {
    const auto& d = result.datasets[i];
    w.StartObject();
    w.Key("name");
    text(w, d.name);
    w.Key("source");
    text(w, i < info.sources.size() ? info.sources[i] : "");
    w.Key("summary");
    summary(w, d.summary);
    w.Key("group_by");  // the metadata field of the groups below, or null
    if (d.group_field.empty())
      w.Null();
    else
      text(w, d.group_field);
    w.Key("groups");
    w.StartArray();
    for (const auto& g : d.groups) {
      w.StartObject();
      w.Key("value");
      text(w, g.value);
      w.Key("summary");
      summary(w, g.summary);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string eval_samples_jsonl(const EvalResult& result) {
  std::string out;
  for (const auto& d : result.datasets) {
    for (const auto& r : d.records) {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
      w.StartObject();
      w.Key("dataset");
      text(w, d.name);
      w.Key("id");
      text(w, r.id);
      w.Key("prompt");
      text(w, r.prompt);
      w.Key("gold");
      text(w, r.gold);
      w.Key("majority_answer");
      optional_text(w, r.majority_answer);
      w.Key("majority_correct");
      w.Bool(r.majority_correct);
      w.Key("samples");
      w.StartArray();
      for (size_t j = 0; j < r.completions.size(); ++j) {
        w.StartObject();
        w.Key("text");
        text(w, r.completions[j]);
        w.Key("answer");
        optional_text(w, r.answers[j]);
        w.Key("correct");
        w.Bool(r.correct[j]);
        w.Key("well_formed");
        if (j < r.well_formed.size())
          w.Bool(r.well_formed[j]);
        else
          w.Null();
        w.Key("tokens");
        w.Int64(r.response_tokens[j]);
        w.Key("finish_reason");
        w.String(finish_reason_name(r.finish_reasons[j]));
        if (!r.verifier_errors[j].empty()) {
          w.Key("verifier_error");
          text(w, r.verifier_errors[j]);
        }
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      out.append(buffer.GetString(), buffer.GetSize());
      out += '\n';
    }
  }
  return out;
}

void write_eval_report(const fs::path& dir, const EvalResult& result, const EvalOptions& options,
                       const EvalReportInfo& info) {
  require(!fs::exists(dir), "eval report: " + dir.string() + " already exists; choose another name");
  const std::string report = eval_report_json(result, options, info);
  const std::string samples = eval_samples_jsonl(result);
  std::error_code error;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), error);
  require(!error, "eval report: cannot create " + dir.parent_path().string() + ": " + error.message());
  const fs::path tmp = unique_sibling(dir, "tmp");
  fs::create_directory(tmp, error);
  require(!error, "eval report: cannot create " + tmp.string() + ": " + error.message());
  try {
    write_file_atomic(tmp / "samples.jsonl", samples);
    write_file_atomic(tmp / "report.json", report);
    fs::rename(tmp, dir, error);
    require(!error, "eval report: cannot move " + tmp.string() + " to " + dir.string() + ": " + error.message());
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
}

}  // namespace aha::recipes
