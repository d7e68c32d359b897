#include "recipes/runner/sft_record.h"

#include "core/error.h"
#include "core/json.h"
#include "recipes/runner/rejection_filters.h"

namespace aha::recipes {

std::string assistant_text(std::string_view completion, bool think_in_prompt) {
  std::string out;
  if (think_in_prompt && completion.substr(0, 7) != "<think>") out = "<think>";
  out += completion;
  return out;
}

ReasoningLayout parse_reasoning_layout(const std::string& text, const std::string& what) {
  if (text == "both") return ReasoningLayout::both;
  if (text == "think") return ReasoningLayout::think;
  if (text == "field") return ReasoningLayout::field;
  throw Error(what + " must be both, think or field, got '" + text + "'");
}

AssistantMessage assistant_message(std::string_view response, ReasoningLayout layout) {
  AssistantMessage m;
  m.content = std::string(response);
  m.has_reasoning_field = layout != ReasoningLayout::think;
  size_t close = response.find("</think>");
  if (layout == ReasoningLayout::field && close != std::string_view::npos) {
    std::string_view answer = response.substr(close + 8);
    auto blank = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
    while (!answer.empty() && blank(answer.front())) answer.remove_prefix(1);
    while (!answer.empty() && blank(answer.back())) answer.remove_suffix(1);
    // One <answer> block that is the whole answer is the R1 format's markup, like <think>:
    // the content is what it holds (a trainer's template puts the tags back).
    if (answer.size() >= 17 && answer.substr(0, 8) == "<answer>" && answer.substr(answer.size() - 9) == "</answer>" &&
        answer.find("<answer>", 8) == std::string_view::npos) {
      answer = answer.substr(8, answer.size() - 17);
      while (!answer.empty() && blank(answer.front())) answer.remove_prefix(1);
      while (!answer.empty() && blank(answer.back())) answer.remove_suffix(1);
    }
    m.content = std::string(answer);
  }
  std::string_view r = reasoning_of(response);
  while (!r.empty() && (r.front() == '\n' || r.front() == '\r')) r.remove_prefix(1);
  while (!r.empty() && (r.back() == '\n' || r.back() == '\r')) r.remove_suffix(1);
  m.reasoning_content = std::string(r);
  return m;
}

std::string sft_json_line(std::string_view prompt, std::string_view response, const std::string& provenance_json,
                          ReasoningLayout layout) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  auto str = [&](std::string_view s) {
    return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
  };
  AssistantMessage m = assistant_message(response, layout);
  rapidjson::Value messages(rapidjson::kArrayType), user(rapidjson::kObjectType), assistant(rapidjson::kObjectType);
  user.AddMember("role", "user", a);
  user.AddMember("content", str(prompt), a);
  assistant.AddMember("role", "assistant", a);
  assistant.AddMember("content", str(m.content), a);
  if (m.has_reasoning_field) assistant.AddMember("reasoning_content", str(m.reasoning_content), a);
  messages.PushBack(user, a);
  messages.PushBack(assistant, a);
  doc.AddMember("messages", messages, a);
  rapidjson::Document provenance = json::parse(provenance_json, "provenance");
  doc.AddMember("provenance", rapidjson::Value(provenance, a), a);
  return json::to_string(doc) + "\n";
}

}  // namespace aha::recipes
