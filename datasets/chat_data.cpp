#include "datasets/chat_data.h"

#include <rapidjson/document.h>

#include "core/error.h"
#include "core/file_checks.h"
#include "core/json.h"
#include "core/text_lines.h"

namespace aha {
namespace {

// A bad record: the reason is the key it is counted under when dropped.
struct BadRecord {
  std::string reason, detail;
};

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

std::string string_field(const rapidjson::Value& object, const char* key, const std::string& reason,
                         const std::string& what) {
  auto found = object.FindMember(key);
  if (found == object.MemberEnd()) throw BadRecord{reason, what + " has no '" + key + "'"};
  if (!found->value.IsString()) throw BadRecord{reason, what + ": '" + key + "' must be a string"};
  return std::string(found->value.GetString(), found->value.GetStringLength());
}

ChatExample parse_record(std::string_view line, const std::string& where) {
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject()) throw BadRecord{"not_json_object", "not a JSON object"};
  ChatExample ex;
  ex.where = where;
  auto messages = doc.FindMember("messages");
  if (messages != doc.MemberEnd()) {
    if (!messages->value.IsArray() || messages->value.Empty())
      throw BadRecord{"bad_messages", "'messages' must be a non-empty list of {\"role\", \"content\"} objects"};
    for (rapidjson::SizeType i = 0; i < messages->value.Size(); ++i) {
      const auto& m = messages->value[i];
      const std::string what = "messages[" + std::to_string(i) + "]";
      if (!m.IsObject()) throw BadRecord{"bad_messages", what + " is not an object"};
      ChatMessage msg;
      msg.role = string_field(m, "role", "missing_role", what);
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
        throw BadRecord{"unknown_role", what + ": role '" + msg.role + "' is not system, user or assistant"};
      msg.content = string_field(m, "content", "missing_content", what);
      if (m.HasMember("reasoning_content") && !m["reasoning_content"].IsNull()) {
        if (msg.role != "assistant")
          throw BadRecord{"bad_messages", what + ": 'reasoning_content' belongs to assistant turns only"};
        msg.reasoning_content = string_field(m, "reasoning_content", "bad_messages", what);
      }
      if (msg.role == "assistant" && blank(msg.content) && blank(msg.reasoning_content))
        throw BadRecord{"empty_assistant_turn", what + ": the assistant turn is empty"};
      ex.messages.push_back(std::move(msg));
    }
  } else if (doc.HasMember("prompt") || doc.HasMember("completion")) {
    ChatMessage user{"user", string_field(doc, "prompt", "bad_prompt_completion", "the record"), ""};
    ChatMessage assistant{"assistant", string_field(doc, "completion", "bad_prompt_completion", "the record"), ""};
    if (blank(assistant.content)) throw BadRecord{"empty_assistant_turn", "'completion' is empty"};
    ex.messages = {std::move(user), std::move(assistant)};
  } else {
    throw BadRecord{"bad_messages", "neither 'messages' nor 'prompt' and 'completion'"};
  }
  bool any_assistant = false;
  for (const auto& m : ex.messages) any_assistant = any_assistant || m.role == "assistant";
  if (!any_assistant) throw BadRecord{"no_assistant_turn", "no assistant turn (nothing to train on)"};
  return ex;
}

}  // namespace

BadExamplePolicy parse_bad_example_policy(const std::string& name) {
  if (name == "error") return BadExamplePolicy::kError;
  if (name == "drop") return BadExamplePolicy::kDrop;
  throw Error("bad-example policy '" + name + "' is unknown; expected \"error\" or \"drop\"");
}

int64_t ChatDataStats::dropped_total() const {
  int64_t n = 0;
  for (const auto& [reason, count] : dropped) n += count;
  return n;
}

void ChatDataStats::add(const ChatDataStats& other) {
  records += other.records;
  kept += other.kept;
  for (const auto& [reason, count] : other.dropped) dropped[reason] += count;
}

std::vector<ChatExample> parse_chat_jsonl(std::string_view text, const std::string& name, BadExamplePolicy policy,
                                          ChatDataStats* stats) {
  ChatDataStats local;
  std::vector<ChatExample> out;
  for_each_nonblank_line(text, name, [&](std::string_view line, size_t number) {
    const std::string where = name + ":" + std::to_string(number);
    ++local.records;
    try {
      out.push_back(parse_record(line, where));
      ++local.kept;
    } catch (const BadRecord& bad) {
      if (policy == BadExamplePolicy::kError)
        throw Error(where + ": " + bad.detail + " (or drop such records with \"on_bad_example\": \"drop\")");
      ++local.dropped[bad.reason];
    }
    return true;
  });
  if (stats) stats->add(local);
  return out;
}

std::vector<ChatExample> load_chat_jsonl(const std::filesystem::path& path, BadExamplePolicy policy,
                                         ChatDataStats* stats) {
  require_regular_file({"chat data", path});
  return parse_chat_jsonl(read_jsonl_file(path), path.string(), policy, stats);
}

}  // namespace aha
