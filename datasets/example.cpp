#include "datasets/example.h"

#include "core/error.h"
#include "core/json.h"

namespace aha {

const char* task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::math: return "math";
    case TaskKind::code: return "code";
    case TaskKind::custom: return "custom";
  }
  return "math";
}

TaskKind parse_task_kind(std::string_view name, const std::string& what) {
  if (name == "math") return TaskKind::math;
  if (name == "code") return TaskKind::code;
  if (name == "custom") return TaskKind::custom;
  throw Error(what + ": unknown task kind '" + std::string(name) + "'; expected math, code or custom");
}

namespace {

rapidjson::Value string_value(const std::string& s, rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

rapidjson::Value string_list(const std::vector<std::string>& items, rapidjson::Document::AllocatorType& a) {
  rapidjson::Value list(rapidjson::kArrayType);
  for (const auto& s : items) list.PushBack(string_value(s, a), a);
  return list;
}

}  // namespace

std::string example_to_json_line(const Example& example) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("id", string_value(example.id, a), a);
  doc.AddMember("source", string_value(example.source, a), a);
  doc.AddMember("kind", rapidjson::StringRef(task_kind_name(example.kind)), a);
  doc.AddMember("prompt", string_value(example.prompt, a), a);
  doc.AddMember("answer", string_value(example.gold, a), a);
  rapidjson::Document metadata = json::parse(example.metadata, "metadata of example '" + example.id + "'");
  if (!metadata.IsObject()) throw Error("metadata of example '" + example.id + "' must be a JSON object");
  doc.AddMember("metadata", rapidjson::Value(metadata, a), a);
  if (!example.tests.empty()) {
    rapidjson::Value tests(rapidjson::kObjectType);
    if (!example.tests.test.empty()) tests.AddMember("test", string_value(example.tests.test, a), a);
    if (!example.tests.entry_point.empty())
      tests.AddMember("entry_point", string_value(example.tests.entry_point, a), a);
    if (!example.tests.asserts.empty()) tests.AddMember("test_list", string_list(example.tests.asserts, a), a);
    if (!example.tests.imports.empty()) tests.AddMember("test_imports", string_list(example.tests.imports, a), a);
    doc.AddMember("tests", tests, a);
  }
  return json::to_string(doc);
}

}  // namespace aha
