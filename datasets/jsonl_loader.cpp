#include "datasets/jsonl_loader.h"

#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/text_lines.h"

namespace aha {

namespace {

constexpr const char* kFormatNames[] = {"plain", "gsm8k", "math", "aime", "humaneval", "mbpp"};

using Allocator = rapidjson::Document::AllocatorType;

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// A record's id: a string or an integer field, else "<file>:<line>".
std::string record_id(const json::ObjectReader& r, const char* field, const std::string& fallback) {
  if (!r.has(field)) return fallback;
  const rapidjson::Value& v = r.get(field);
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  throw Error(r.context() + ": field '" + field + "' must be a string or an integer, got " + json::to_string(v));
}

// A string field, or an integer written as its digits (answers are stored both ways).
std::string string_or_integer(const json::ObjectReader& r, const char* field) {
  const rapidjson::Value& v = r.get(field);
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  throw Error(r.context() + ": field '" + field + "' must be a string or an integer, got " + json::to_string(v));
}

std::vector<std::string> string_list(const json::ObjectReader& r, const char* field) {
  const rapidjson::Value& v = r.get(field);
  if (!v.IsArray())
    throw Error(r.context() + ": field '" + field + "' must be a list of strings, got " + json::to_string(v));
  std::vector<std::string> out;
  for (const auto& item : v.GetArray()) {
    if (!item.IsString())
      throw Error(r.context() + ": field '" + field + "' must be a list of strings, got an element " +
                  json::to_string(item));
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

// Metadata: every member of the record not in `consumed`; a `metadata` object is merged in.
std::string collect_metadata(const json::ObjectReader& r, const std::set<std::string>& consumed,
                             const std::vector<std::pair<std::string, std::string>>& extra) {
  rapidjson::Document out(rapidjson::kObjectType);
  Allocator& a = out.GetAllocator();
  auto add = [&](const rapidjson::Value& name, const rapidjson::Value& value) {
    if (out.HasMember(name)) out.RemoveMember(name);
    out.AddMember(rapidjson::Value(name, a), rapidjson::Value(value, a), a);
  };
  for (const auto& m : r.value().GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (consumed.count(name)) continue;
    if (name == "metadata" && m.value.IsObject()) {
      for (const auto& inner : m.value.GetObject()) add(inner.name, inner.value);
    } else {
      add(m.name, m.value);
    }
  }
  for (const auto& [name, text] : extra) {
    rapidjson::Value n(name.c_str(), static_cast<rapidjson::SizeType>(name.size()), a);
    rapidjson::Value v(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), a);
    add(n, v);
  }
  return json::to_string(out);
}

Example parse_gsm8k(const json::ObjectReader& r, Example ex) {
  ex.prompt = r.get_string("question");
  std::string solution = r.get_string("answer");
  auto gold = gsm8k_final_answer(solution);
  if (!gold) throw Error(r.context() + ": field 'answer' has no final answer after '####'");
  ex.gold = *gold;
  ex.metadata = collect_metadata(r, {"question", "answer"}, {{"solution", solution}});
  return ex;
}

Example parse_math(const json::ObjectReader& r, Example ex) {
  ex.prompt = r.get_string("problem");
  if (r.has("answer")) {
    ex.gold = string_or_integer(r, "answer");
  } else {
    if (!r.has("solution")) throw Error(r.context() + ": missing field 'answer' (or a 'solution' with \\boxed{...})");
    auto boxed = last_boxed(r.get_string("solution"));
    if (!boxed)
      throw Error(r.context() + ": field 'solution' has no closed \\boxed{...} and there is no 'answer' field");
    ex.gold = trim(*boxed);
  }
  ex.metadata = collect_metadata(r, {"problem", "answer", "id"}, {});
  return ex;
}

Example parse_aime(const json::ObjectReader& r, Example ex) {
  ex.prompt = r.get_string("problem");
  ex.gold = trim(string_or_integer(r, "answer"));
  ex.metadata = collect_metadata(r, {"problem", "answer", "id"}, {});
  return ex;
}

Example parse_humaneval(const json::ObjectReader& r, Example ex) {
  ex.kind = TaskKind::code;
  ex.prompt = r.get_string("prompt");
  ex.tests.test = r.get_string("test");
  ex.tests.entry_point = r.get_string("entry_point");
  ex.metadata = collect_metadata(r, {"prompt", "test", "entry_point", "task_id"}, {});
  return ex;
}

Example parse_mbpp(const json::ObjectReader& r, Example ex) {
  ex.kind = TaskKind::code;
  const char* prompt_field = r.has("prompt") ? "prompt" : "text";
  if (!r.has(prompt_field)) throw Error(r.context() + ": missing required field 'prompt' (or 'text')");
  ex.prompt = r.get_string(prompt_field);
  ex.tests.asserts = string_list(r, "test_list");
  if (r.has("test_imports")) ex.tests.imports = string_list(r, "test_imports");
  ex.metadata = collect_metadata(r, {prompt_field, "test_list", "test_imports", "task_id"}, {});
  return ex;
}

Example parse_plain(const json::ObjectReader& r, Example ex, const JsonlOptions& options) {
  ex.kind = r.has("kind") ? parse_task_kind(r.get_string("kind"), r.context() + ": field 'kind'") : options.plain_kind;
  ex.prompt = r.get_string(options.prompt_field.c_str());
  if (ex.kind != TaskKind::code || r.has(options.answer_field.c_str()))
    ex.gold = string_or_integer(r, options.answer_field.c_str());
  if (r.has("tests")) {
    json::ObjectReader t = r.object("tests");
    t.reject_unknown({"test", "entry_point", "test_list", "test_imports"});
    ex.tests.test = t.get_string("test", "");
    ex.tests.entry_point = t.get_string("entry_point", "");
    if (t.has("test_list")) ex.tests.asserts = string_list(t, "test_list");
    if (t.has("test_imports")) ex.tests.imports = string_list(t, "test_imports");
  }
  // `source` is where this file says it came from; the loader's own source (the file) wins.
  ex.metadata = collect_metadata(r, {options.prompt_field, options.answer_field, "id", "kind", "tests", "source"}, {});
  return ex;
}

Example parse_record(const rapidjson::Value& value, const std::string& context, const std::string& file_name,
                     const std::string& fallback_id, const JsonlOptions& options) {
  json::ObjectReader r(value, context);
  Example ex;
  ex.source = file_name;
  switch (options.format) {
    case JsonlFormat::gsm8k: ex.id = fallback_id; return parse_gsm8k(r, std::move(ex));
    case JsonlFormat::math: ex.id = record_id(r, "id", fallback_id); return parse_math(r, std::move(ex));
    case JsonlFormat::aime: ex.id = record_id(r, "id", fallback_id); return parse_aime(r, std::move(ex));
    case JsonlFormat::humaneval: ex.id = record_id(r, "task_id", fallback_id); return parse_humaneval(r, std::move(ex));
    case JsonlFormat::mbpp: ex.id = record_id(r, "task_id", fallback_id); return parse_mbpp(r, std::move(ex));
    case JsonlFormat::plain: ex.id = record_id(r, "id", fallback_id); return parse_plain(r, std::move(ex), options);
  }
  throw Error(context + ": unknown format");
}

}  // namespace

JsonlFormat parse_jsonl_format(std::string_view name) {
  for (size_t i = 0; i < std::size(kFormatNames); ++i)
    if (name == kFormatNames[i]) return static_cast<JsonlFormat>(i);
  std::string known;
  for (const char* n : kFormatNames) known += (known.empty() ? "" : ", ") + std::string(n);
  throw Error("unknown data format '" + std::string(name) + "'; expected one of: " + known);
}

const char* jsonl_format_name(JsonlFormat format) { return kFormatNames[static_cast<size_t>(format)]; }

std::optional<std::string> gsm8k_final_answer(std::string_view solution) {
  size_t mark = solution.rfind("####");
  if (mark == std::string_view::npos) return std::nullopt;
  std::string answer;
  for (char c : trim(solution.substr(mark + 4)))
    if (c != ',') answer += c;
  if (answer.empty()) return std::nullopt;
  return answer;
}

std::optional<std::string> last_boxed(std::string_view text) {
  size_t best = std::string_view::npos;
  size_t best_len = 0;
  for (std::string_view command : {"\\boxed{", "\\fbox{"}) {
    size_t at = text.rfind(command);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) {
      best = at;
      best_len = command.size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  size_t start = best + best_len;
  int depth = 1;
  for (size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == '{' || text[i + 1] == '}')) {
      ++i;  // an escaped brace is a literal
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return std::string(text.substr(start, i - start));
    }
  }
  return std::nullopt;
}

std::vector<Example> parse_jsonl(std::string_view text, const std::string& file_name, const JsonlOptions& options) {
  require(options.every_nth >= 1, "every_nth must be at least 1, got 0");
  std::vector<Example> out;
  size_t record_index = 0;
  for_each_nonblank_line(text, file_name, [&](std::string_view line, size_t line_number) {
    if (record_index++ % options.every_nth != 0) return true;
    std::string where = file_name + ":" + std::to_string(line_number);
    rapidjson::Document doc = json::parse(line, where);
    out.push_back(parse_record(doc, where, file_name, where, options));
    return !(options.limit && out.size() >= options.limit);
  });
  return out;
}

std::vector<Example> load_jsonl(const std::filesystem::path& path, const JsonlOptions& options) {
  return parse_jsonl(read_jsonl_file(path), path.string(), options);
}

}  // namespace aha
