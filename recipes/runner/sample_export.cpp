#include "recipes/runner/sample_export.h"

#include <charconv>
#include <cstring>
#include <optional>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/files.h"
#include "core/json.h"
#include "core/run_store.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using rapidjson::Value;

// The stage's template name from its stored recipe ("" when unknown).
std::string template_of(const StageRecord& stage) {
  rapidjson::Document d;
  d.Parse(stage.config.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("template") || !d["template"].IsString()) return "";
  return d["template"].GetString();
}

bool opens_think(const std::string& template_name) {
  return template_name == "r1_zero_think" || template_name == "deepseek_r1";
}

std::optional<double> value_of(const SampleCondition& c, const Sample& s) {
  if (c.name == "reward") return s.reward;
  if (c.name == "advantage") return s.advantage;
  if (c.name == "tokens") return static_cast<double>(s.length);
  const std::string component = c.name.substr(7);  // after "reward/"
  for (const auto& [name, value] : s.reward_components)
    if (name == component) return value;
  return std::nullopt;
}

bool holds(const SampleCondition& c, double v) {
  switch (c.op) {
    case SampleCondition::Op::eq: return v == c.value;
    case SampleCondition::Op::ge: return v >= c.value;
    case SampleCondition::Op::le: return v <= c.value;
    case SampleCondition::Op::gt: return v > c.value;
    case SampleCondition::Op::lt: return v < c.value;
  }
  return false;
}

std::string provenance(const fs::path& run_dir, const StageRecord& stage, int64_t step, const Sample& s,
                       const std::string& template_name) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto str = [&](const std::string& t) { return Value(t.c_str(), static_cast<rapidjson::SizeType>(t.size()), a); };
  d.AddMember("prompt_id",
              str(stage.name + "/step-" + std::to_string(step) + "/group-" + std::to_string(s.group_index)), a);
  d.AddMember("run", str(run_dir.string()), a);
  d.AddMember("stage", str(stage.name), a);
  d.AddMember("step", step, a);
  d.AddMember("sample_index", s.index, a);
  d.AddMember("group_index", s.group_index, a);
  d.AddMember("template", str(template_name), a);
  d.AddMember("reward", static_cast<double>(s.reward), a);
  Value rewards(rapidjson::kObjectType);
  for (const auto& [name, value] : s.reward_components) rewards.AddMember(str(name), Value(static_cast<double>(value)), a);
  d.AddMember("rewards", rewards, a);
  d.AddMember("advantage", static_cast<double>(s.advantage), a);
  d.AddMember("tokens", s.length, a);
  d.AddMember("finish_reason", str(s.finish_reason), a);
  return json::to_string(d);
}

}  // namespace

SampleCondition parse_sample_condition(const std::string& text, const std::string& what) {
  SampleCondition c;
  static const std::pair<const char*, SampleCondition::Op> kOps[] = {
      {">=", SampleCondition::Op::ge}, {"<=", SampleCondition::Op::le}, {"=", SampleCondition::Op::eq},
      {">", SampleCondition::Op::gt},  {"<", SampleCondition::Op::lt}};
  size_t at = text.find_first_of("=<>");
  require(at != std::string::npos, what + " '" + text + "': expected NAME OP NUMBER with OP one of = >= <= > <");
  std::string op_text;
  for (const auto& [op, code] : kOps)
    if (text.compare(at, std::strlen(op), op) == 0) {
      op_text = op;
      c.op = code;
      break;
    }
  auto trim = [](std::string s) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
  };
  c.name = trim(text.substr(0, at));
  std::string number = trim(text.substr(at + op_text.size()));
  require(c.name == "reward" || c.name == "advantage" || c.name == "tokens" ||
              (c.name.rfind("reward/", 0) == 0 && c.name.size() > 7),
          what + " '" + text + "': '" + c.name +
              "' is not reward, reward/<component>, advantage or tokens");
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), c.value);
  require(!number.empty() && ec == std::errc() && end == number.data() + number.size() && std::isfinite(c.value),
          what + " '" + text + "': '" + number + "' is not a number");
  return c;
}

SampleExportStats export_samples(const fs::path& run_dir, const SampleExportOptions& options, const fs::path& out) {
  const fs::path db = run_dir / "run.db";
  require(fs::is_regular_file(db), "--run " + run_dir.string() + " holds no run.db (not a run directory)");
  check_output_file({"--out", out}, {{"--run", db}}, options.overwrite);
  RunStore store(db, {.read_only = true});
  std::vector<StageRecord> stages;
  std::string names;
  for (const auto& s : store.stages()) {
    names += (names.empty() ? "" : ", ") + s.name;
    if (options.stage.empty() || s.name == options.stage) stages.push_back(s);
  }
  require(!stages.empty(), "--stage " + options.stage + ": the run has no such stage; stages: " +
                               (names.empty() ? "none" : names));
  // Every component the samples have, to name an unknown one before anything is written.
  std::set<std::string> known = {"reward", "advantage", "tokens"};
  for (const auto& stage : stages)
    for (int64_t step : store.sample_steps(stage.id))
      for (const auto& s : store.samples(stage.id, step))
        for (const auto& kv : s.reward_components) known.insert("reward/" + kv.first);
  for (const auto& c : options.where) {
    if (known.count(c.name)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw Error("--where: the samples have no '" + c.name + "'; they have: " + list);
  }
  SampleExportStats stats;
  AtomicFileWriter writer(out);
  for (const auto& stage : stages) {
    const std::string template_name = template_of(stage);
    const bool think = opens_think(template_name);
    for (int64_t step : store.sample_steps(stage.id))
      for (const auto& s : store.samples(stage.id, step)) {
        ++stats.samples;
        bool ok = true;
        for (const auto& c : options.where) {
          auto v = value_of(c, s);
          ok = ok && v && holds(c, *v);
        }
        if (!ok) continue;
        std::string line = sft_json_line(s.prompt, assistant_text(s.completion, think),
                                         provenance(run_dir, stage, step, s, template_name), options.layout);
        writer.write(line.data(), line.size());
        ++stats.exported;
      }
  }
  writer.commit();
  return stats;
}

}  // namespace aha::recipes
