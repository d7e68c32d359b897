#include "reward/scored_jsonl.h"

#include "core/error.h"
#include "core/json.h"

namespace aha::reward {
namespace {

// A string, or a list of strings joined by newlines (when join) / kept as elements.
std::vector<std::string> string_or_list(const json::ObjectReader& reader, const char* key) {
  const auto& value = reader.get(key);
  std::vector<std::string> out;
  if (value.IsString()) {
    out.push_back(value.GetString());
    return out;
  }
  require(value.IsArray(), reader.context() + ": field '" + key + "' must be a string or a list of strings");
  for (auto& item : value.GetArray()) {
    require(item.IsString(),
            reader.context() + ": field '" + key + "' must be a string or a list of strings");
    out.push_back(item.GetString());
  }
  return out;
}

}  // namespace

ScoringInput scoring_input_from_json_line(std::string_view line, const std::string& what) {
  auto doc = json::parse(line, what);
  json::ObjectReader reader(doc, what);
  ScoringInput input;
  input.completion.text = reader.get_string("completion");
  input.example.gold = reader.get_string("gold");
  input.example.prompt = reader.get_string("prompt", "");
  input.example.entry_point = reader.get_string("entry_point", "");
  if (reader.has("tests")) input.example.tests = string_or_list(reader, "tests");
  for (const char* key : {"test_setup", "test_imports"}) {
    if (!reader.has(key)) continue;
    for (auto& setup_line : string_or_list(reader, key)) input.example.test_setup += setup_line + "\n";
  }
  input.example.task = reader.has("task")            ? parse_task_kind(reader.get_string("task"), what)
                       : input.example.tests.empty() ? TaskKind::math
                                                     : TaskKind::code;
  if (reader.has("metadata")) input.example.metadata_json = json::to_string(reader.get("metadata"));
  input.completion.num_tokens = reader.get_int("num_tokens", -1);
  return input;
}

std::string scored_json_line(std::string_view input_line, const ScoredSample& scored) {
  auto doc = json::parse(input_line, "input line");
  auto& a = doc.GetAllocator();
  auto set = [&](const char* key, rapidjson::Value value) {
    if (doc.HasMember(key)) doc.RemoveMember(key);
    doc.AddMember(rapidjson::StringRef(key), value, a);
  };
  set("reward", rapidjson::Value(scored.total));
  rapidjson::Value components(rapidjson::kObjectType);
  for (auto& [name, value] : scored.components) {
    components.AddMember(rapidjson::Value(name.c_str(), a), rapidjson::Value(value), a);
  }
  set("components", std::move(components));
  rapidjson::Value diagnostics(rapidjson::kObjectType);
  for (auto& [name, text] : scored.diagnostics) {
    diagnostics.AddMember(rapidjson::Value(name.c_str(), a), rapidjson::Value(text.c_str(), a), a);
  }
  set("diagnostics", std::move(diagnostics));
  return json::to_string(doc);
}

}  // namespace aha::reward
