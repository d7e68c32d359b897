#include "dashboard/api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <set>

#include "core/json.h"
#include "dashboard/http_error.h"

namespace aha::dashboard {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

void write_string(Writer& w, const std::string& s) { w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size())); }
void write_number(Writer& w, double v) {
  if (std::isfinite(v))
    w.Double(v);
  else
    w.Null();
}

// Rejects parameters the endpoint does not know, naming the ones it does.
void check_params(const QueryParams& query, const std::set<std::string>& known) {
  for (const auto& [key, value] : query) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw HttpError(400, "unknown query parameter '" + key + "' (this endpoint takes: " + (list.empty() ? "none" : list) + ")");
  }
}

std::optional<std::string> param(const QueryParams& query, const std::string& key) {
  std::optional<std::string> found;
  for (const auto& [k, v] : query)
    if (k == key) {
      if (found) throw HttpError(400, "query parameter '" + key + "' given twice");
      found = v;
    }
  return found;
}

int64_t integer_param(const QueryParams& query, const std::string& key, int64_t fallback) {
  auto text = param(query, key);
  if (!text) return fallback;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size())
    throw HttpError(400, "query parameter '" + key + "' must be an integer, got '" + *text + "'");
  return value;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The rule of core/run_store.cpp's check_metric_name, so that a malformed name is a 400.
void check_metric_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 256 && name.find('/') != std::string::npos && name.front() != '/' &&
            name.back() != '/';
  for (char c : name) ok = ok && static_cast<unsigned char>(c) > ' ' && c != 0x7f;
  if (!ok)
    throw HttpError(400, "metric name '" + name + "' is not a namespaced name like 'train/kl' (no whitespace, "
                         "at least one '/', none at either end, at most 256 characters)");
}

std::string display_status(const StageSummary& stage, double now, double stale_after) {
  if (stage.status == "running") return now - stage.updated_at > stale_after ? "stale" : "running";
  if (stage.status == "done") return "finished";
  return stage.status;
}

const StageSummary& choose_stage(const std::vector<StageSummary>& stages, const QueryParams& query,
                                 const std::string& id) {
  if (stages.empty()) throw HttpError(404, "run '" + id + "' has no stage yet");
  auto name = param(query, "stage");
  if (!name) return stages.back();
  for (const auto& s : stages)
    if (s.name == *name) return s;
  std::string list;
  for (const auto& s : stages) list += (list.empty() ? "" : ", ") + s.name;
  throw HttpError(404, "run '" + id + "' has no stage '" + *name + "' (its stages: " + list + ")");
}

void write_stage(Writer& w, const StageSummary& s, double now, double stale_after) {
  w.StartObject();
  w.Key("name"); write_string(w, s.name);
  w.Key("kind"); write_string(w, s.kind);
  w.Key("status"); write_string(w, display_status(s, now, stale_after));
  w.Key("started_at"); write_number(w, s.started_at);
  w.Key("finished_at"); write_number(w, s.finished_at);
  w.Key("updated_at"); write_number(w, s.updated_at);
  w.Key("last_step");
  if (s.last_step) w.Int64(*s.last_step); else w.Null();
  w.Key("headline");
  w.StartObject();
  for (const auto& [name, value] : s.headline) {
    w.Key(name.c_str());
    write_number(w, value);
  }
  w.EndObject();
  w.EndObject();
}

// The fields /api/runs shows for a run (and /api/runs/<id> repeats).
void write_run_fields(Writer& w, const RunLocation& location, const RunSummary& run, double now, double stale_after) {
  w.Key("id"); write_string(w, location.id);
  w.Key("recipe"); write_string(w, run.recipe_name);
  w.Key("accuracy_reward"); write_string(w, run.accuracy_reward);
  w.Key("total_steps");
  if (run.total_steps) w.Int64(*run.total_steps); else w.Null();
  std::string status = run.stages.empty() ? "starting" : display_status(run.stages.back(), now, stale_after);
  for (const auto& s : run.stages)
    if (s.status == "failed") status = "failed";
  w.Key("status"); write_string(w, status);
  w.Key("stage"); write_string(w, run.stages.empty() ? "" : run.stages.back().name);
  w.Key("step");
  if (!run.stages.empty() && run.stages.back().last_step) w.Int64(*run.stages.back().last_step); else w.Null();
  double eval = NAN, started = NAN, updated = NAN;
  for (const auto& s : run.stages) {
    if (s.headline.count("eval/accuracy")) eval = s.headline.at("eval/accuracy");
    if (std::isnan(started)) started = s.started_at;
    updated = std::isnan(updated) ? s.updated_at : std::max(updated, s.updated_at);
  }
  w.Key("eval_accuracy"); write_number(w, eval);
  w.Key("started_at"); write_number(w, started);
  w.Key("updated_at"); write_number(w, updated);
  w.Key("duration_s"); write_number(w, updated - started);
}

ApiReply json_reply(const rapidjson::StringBuffer& buffer) { return {200, "application/json", json::text_of(buffer)}; }

}  // namespace

DashboardApi::DashboardApi(RunCatalog& catalog, ApiOptions options) : catalog_(catalog), options_(std::move(options)) {}

ApiReply DashboardApi::handle(const std::string& path, const QueryParams& query) {
  if (path == "/api/runs" || path == "/api/runs/") return list_runs(query);
  const std::string prefix = "/api/runs/";
  if (path.rfind(prefix, 0) != 0)
    throw HttpError(404, "no API endpoint " + path + " (endpoints: /api/runs, /api/runs/<id>[/metrics|/samples|/reflection])");
  std::string rest = path.substr(prefix.size());
  for (const char* endpoint : {"/metrics", "/samples", "/reflection"}) {
    const std::string suffix = endpoint;
    if (rest.size() > suffix.size() && rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const RunLocation run = catalog_.find(rest.substr(0, rest.size() - suffix.size()));
      if (suffix == "/metrics") return metrics(run, query);
      if (suffix == "/samples") return samples(run, query);
      return reflection(run, query);
    }
  }
  return run_detail(catalog_.find(rest), query);
}

ApiReply DashboardApi::list_runs(const QueryParams& query) {
  check_params(query, {});
  const double now = now_seconds();
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("now"); write_number(w, now);
  w.Key("runs");
  w.StartArray();
  for (const auto& location : catalog_.runs()) {
    w.StartObject();
    try {
      auto run = readers_.acquire(location.db_path)->summary();
      write_run_fields(w, location, run, now, options_.stale_after_seconds);
    } catch (const Error& e) {  // one unreadable run.db does not hide the others
      w.Key("id"); write_string(w, location.id);
      w.Key("status"); write_string(w, "unreadable");
      w.Key("error"); write_string(w, e.what());
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json_reply(buffer);
}

ApiReply DashboardApi::run_detail(const RunLocation& location, const QueryParams& query) {
  check_params(query, {"stage"});
  const double now = now_seconds();
  auto reader = readers_.acquire(location.db_path);
  const RunSummary run = reader->summary();
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  write_run_fields(w, location, run, now, options_.stale_after_seconds);
  w.Key("stages");
  w.StartArray();
  for (const auto& s : run.stages) write_stage(w, s, now, options_.stale_after_seconds);
  w.EndArray();
  w.Key("reflection_words");
  w.StartArray();
  for (const auto& word : options_.reflection_words) write_string(w, word);
  w.EndArray();
  if (!run.stages.empty()) {
    const StageSummary& stage = choose_stage(run.stages, query, location.id);
    w.Key("selected_stage"); write_string(w, stage.name);
    w.Key("metric_names");
    w.StartArray();
    for (const auto& name : reader->metric_names(stage.id)) write_string(w, name);
    w.EndArray();
    w.Key("sample_steps");
    w.StartArray();
    for (int64_t step : reader->sample_steps(stage.id)) w.Int64(step);
    w.EndArray();
  }
  w.EndObject();
  return json_reply(buffer);
}

ApiReply DashboardApi::metrics(const RunLocation& location, const QueryParams& query) {
  check_params(query, {"names", "since_step", "stage", "format"});
  const std::string format = param(query, "format").value_or("json");
  if (format != "json" && format != "csv") throw HttpError(400, "format must be json or csv, got '" + format + "'");
  std::vector<std::string> names;
  if (auto text = param(query, "names"))
    for (auto& name : split_list(*text)) {
      check_metric_name(name);
      names.push_back(name);
    }
  const int64_t since = integer_param(query, "since_step", INT64_MIN);
  auto reader = readers_.acquire(location.db_path);
  const auto stages = reader->stage_list();
  const StageSummary& stage = choose_stage(stages, query, location.id);
  if (!names.empty()) {
    const auto known = reader->metric_names(stage.id);
    const std::set<std::string> have(known.begin(), known.end());
    for (const auto& name : names)
      if (!have.count(name))
        throw HttpError(404, "run '" + location.id + "' stage '" + stage.name + "' has no metric '" + name + "'");
  }
  const auto series = reader->metrics(stage.id, names, since);
  if (format == "csv") {
    std::string csv = "name,step,value,time\n";
    char number[64];
    for (const auto& s : series)
      for (const auto& p : s.points) {
        csv += s.name + "," + std::to_string(p.step) + ",";
        if (std::isfinite(p.value)) csv.append(number, std::to_chars(number, number + sizeof number, p.value).ptr);
        csv += ",";
        csv.append(number, std::to_chars(number, number + sizeof number, p.time).ptr);
        csv += "\n";
      }
    return {200, "text/csv; charset=utf-8", csv};
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("run"); write_string(w, location.id);
  w.Key("stage"); write_string(w, stage.name);
  w.Key("series");
  w.StartObject();
  for (const auto& s : series) {
    w.Key(s.name.c_str(), static_cast<rapidjson::SizeType>(s.name.size()));
    w.StartObject();
    w.Key("step");
    w.StartArray();
    for (const auto& p : s.points) w.Int64(p.step);
    w.EndArray();
    w.Key("value");
    w.StartArray();
    for (const auto& p : s.points) write_number(w, p.value);
    w.EndArray();
    w.Key("time");
    w.StartArray();
    for (const auto& p : s.points) write_number(w, p.time);
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return json_reply(buffer);
}

ApiReply DashboardApi::samples(const RunLocation& location, const QueryParams& query) {
  check_params(query, {"step", "stage"});
  auto reader = readers_.acquire(location.db_path);
  const auto stages = reader->stage_list();
  const StageSummary& stage = choose_stage(stages, query, location.id);
  const auto steps = reader->sample_steps(stage.id);
  if (steps.empty()) throw HttpError(404, "run '" + location.id + "' stage '" + stage.name + "' has no samples yet");
  const int64_t step = integer_param(query, "step", steps.back());
  auto samples = reader->samples(stage.id, step);
  if (samples.empty())
    throw HttpError(404, "run '" + location.id + "' has no samples at step " + std::to_string(step) +
                             " (the latest step with samples is " + std::to_string(steps.back()) + ")");
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("run"); write_string(w, location.id);
  w.Key("stage"); write_string(w, stage.name);
  w.Key("step"); w.Int64(step);
  w.Key("steps");
  w.StartArray();
  for (int64_t s : steps) w.Int64(s);
  w.EndArray();
  w.Key("samples");
  w.StartArray();
  for (const auto& s : samples) {
    w.StartObject();
    w.Key("index"); w.Int64(s.index);
    w.Key("group"); w.Int64(s.group_index);
    w.Key("prompt"); write_string(w, s.prompt);
    w.Key("completion"); write_string(w, s.completion);
    w.Key("reward"); write_number(w, s.reward);
    w.Key("components");
    w.StartObject();
    for (const auto& [name, value] : s.reward_components) {
      w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
      write_number(w, value);
    }
    w.EndObject();
    w.Key("advantage"); write_number(w, s.advantage);
    w.Key("length"); w.Int64(s.length);
    w.Key("finish_reason"); write_string(w, s.finish_reason);
    w.Key("reflection_words"); w.Int64(count_reflection_words(s.completion, options_.reflection_words));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return json_reply(buffer);
}

ApiReply DashboardApi::reflection(const RunLocation& location, const QueryParams& query) {
  check_params(query, {"since_step", "stage", "words"});
  std::vector<std::string> words = options_.reflection_words;
  if (auto text = param(query, "words")) {
    words = split_list(*text);
    for (const auto& word : words)
      if (word.empty() || word.size() > 64) throw HttpError(400, "reflection words must be 1 to 64 characters each");
  }
  const int64_t since = integer_param(query, "since_step", INT64_MIN);
  auto reader = readers_.acquire(location.db_path);
  const auto stages = reader->stage_list();
  const StageSummary& stage = choose_stage(stages, query, location.id);
  const auto series = reader->reflection(stage.id, words, since);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("words");
  w.StartArray();
  for (const auto& word : words) write_string(w, word);
  w.EndArray();
  w.Key("step");
  w.StartArray();
  for (int64_t s : series.steps) w.Int64(s);
  w.EndArray();
  w.Key("rate");
  w.StartArray();
  for (double v : series.rate) write_number(w, v);
  w.EndArray();
  w.Key("per_completion");
  w.StartArray();
  for (double v : series.per_completion) write_number(w, v);
  w.EndArray();
  w.EndObject();
  return json_reply(buffer);
}

}  // namespace aha::dashboard
