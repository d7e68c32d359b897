// Chat (SFT) data in JSON Lines, the conventions TRL's SFTTrainer and OpenAI fine-tuning read:
//
//   {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
//                 {"role": "assistant", "content": "...", "reasoning_content": "..."}, ...]}
//   {"prompt": "...", "completion": "..."}        (a user turn and an assistant turn)
//
// An assistant message may carry its chain of thought in `reasoning_content` (as DeepSeek's
// API and `aha distill` write it); templates put it back as <think>...</think>. Other fields
// of a record or a message (ids, names, metadata) are ignored.
//
// Contract: a record is bad when its line is not a JSON object, when it has neither
// `messages` (a non-empty list of objects) nor both `prompt` and `completion` (strings), when a
// message has no string `role` or `content`, when a role is not system, user or assistant, when
// an assistant turn is empty (no content and no reasoning_content, both blank), when
// reasoning_content is on a non-assistant turn, or when there is no assistant turn. A bad
// record is an aha::Error naming "<file>:<line>" and what is wrong, or, with
// BadExamplePolicy::kDrop, skipped and counted by reason in ChatDataStats. Files and lines
// have core/text_lines.h's limits.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace aha {

struct ChatMessage {
  std::string role;  // system, user or assistant
  std::string content;
  std::string reasoning_content;  // assistant only; empty when absent
};

struct ChatExample {
  std::vector<ChatMessage> messages;
  std::string where;  // "<file>:<line>", for messages about it later (e.g. too long)
};

enum class BadExamplePolicy { kError, kDrop };
// "error" or "drop"; anything else is an error naming the choices.
BadExamplePolicy parse_bad_example_policy(const std::string& name);

struct ChatDataStats {
  int64_t records = 0;  // non-blank lines read
  int64_t kept = 0;
  std::map<std::string, int64_t> dropped;  // reason ("no_assistant_turn", ...) -> count
  int64_t dropped_total() const;
  void add(const ChatDataStats& other);
};

// Parses JSON Lines text; `name` names the file in messages.
std::vector<ChatExample> parse_chat_jsonl(std::string_view text, const std::string& name, BadExamplePolicy policy,
                                          ChatDataStats* stats = nullptr);
std::vector<ChatExample> load_chat_jsonl(const std::filesystem::path& path, BadExamplePolicy policy,
                                         ChatDataStats* stats = nullptr);

}  // namespace aha
