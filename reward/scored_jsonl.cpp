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
  return scoring_input_from_json(doc, what);
}

ScoringInput scoring_input_from_json(const rapidjson::Value& object, const std::string& what) {
  json::ObjectReader reader(object, what);
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

rapidjson::Value scoring_input_to_json(const ScoringInput& input, rapidjson::Document::AllocatorType& a) {
  auto text = [&](const std::string& s) { return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a); };
  const RewardExample& e = input.example;
  rapidjson::Value out(rapidjson::kObjectType);
  out.AddMember("completion", text(input.completion.text), a);
  out.AddMember("gold", text(e.gold), a);
  out.AddMember("prompt", text(e.prompt), a);
  out.AddMember("task", rapidjson::StringRef(to_string(e.task)), a);
  if (!e.tests.empty()) {
    rapidjson::Value tests(rapidjson::kArrayType);
    for (auto& t : e.tests) tests.PushBack(text(t), a);
    out.AddMember("tests", tests, a);
  }
  if (!e.test_setup.empty()) {
    rapidjson::Value lines(rapidjson::kArrayType);
    std::string_view rest = e.test_setup;
    while (!rest.empty()) {
      const size_t end = rest.find('\n');
      lines.PushBack(text(std::string(rest.substr(0, end))), a);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
    out.AddMember("test_setup", lines, a);
  }
  if (!e.entry_point.empty()) out.AddMember("entry_point", text(e.entry_point), a);
  if (!e.metadata_json.empty()) {
    auto metadata = json::parse(e.metadata_json, "metadata");
    out.AddMember("metadata", rapidjson::Value(metadata, a), a);
  }
  if (input.completion.num_tokens >= 0) out.AddMember("num_tokens", rapidjson::Value(input.completion.num_tokens), a);
  return out;
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
