// One SFT example in the `messages` JSON Lines convention (TRL's SFTTrainer, OpenAI fine-tuning),
// as rejection sampling (`aha distill`) and `aha export samples` write it:
//
//   {"messages": [{"role": "user", "content": PROMPT},
//                 {"role": "assistant", "content": "<think>REASONING</think>ANSWER",
//                  "reasoning_content": "REASONING"}],
//    "provenance": {...}}
//
// Where the chain of thought goes (ReasoningLayout):
//   both    (default, issue 14's format) in the content as <think>...</think> (how OpenR1-Math and
//           other R1-distilled sets store it, and what a chat template without a reasoning field
//           trains on) and also as `reasoning_content`.
//   think   only in the content, as <think>...</think>; no reasoning_content key.
//   field   DeepSeek's API convention: content is the answer alone (after </think>, trimmed; an
//           <answer>...</answer> block that is the whole answer gives its inside) and the
//           reasoning is `reasoning_content`. aha's own SFT (datasets/chat_render.h) reads this:
//           it writes reasoning_content back as <think> and wraps the content per template. Use this for Qwen3's chat
//           template: given a reasoning_content string it renders it and then the content as
//           it is, so with `both` it would show the reasoning twice.
// Without a </think> in the response, the reasoning is "" and the content the whole response.
// The prompt is the data set's raw prompt, without the template the model was sampled with (a
// trainer applies its own chat template); the template's name is in the provenance.
// Every record has the same keys and value types, so Arrow (datasets.load_dataset("json"))
// infers one schema: reward components are always floats.
#pragma once
#include <string>
#include <string_view>

namespace aha::recipes {

// The assistant's text as sampled, made whole: a response that closes a <think> its prompt
// opened gets the "<think>" back in front.
std::string assistant_text(std::string_view completion, bool think_in_prompt);

enum class ReasoningLayout { both, think, field };
// "both", "think" or "field"; anything else is an error naming `what`.
ReasoningLayout parse_reasoning_layout(const std::string& text, const std::string& what);

struct AssistantMessage {
  std::string content;
  std::string reasoning_content;  // inside <think>...</think>, leading/trailing newlines trimmed
  bool has_reasoning_field = true;
};
AssistantMessage assistant_message(std::string_view response, ReasoningLayout layout = ReasoningLayout::both);

// The JSON line (ending in '\n') of one record; provenance_json must be a JSON object's text.
std::string sft_json_line(std::string_view prompt, std::string_view response, const std::string& provenance_json,
                          ReasoningLayout layout = ReasoningLayout::both);

}  // namespace aha::recipes
