// A conversation rendered as training text in one of aha's templates, cut into pieces that
// are either trained (an assistant turn's text and its end token) or not (everything the
// model is given: system, user turns, the assistant header). The pieces concatenate to the
// whole text, so a tokenizer can find each assistant turn's exact token span by encoding
// prefix after prefix (recipes/runner/conversation_tokens.h).
//
//   chatml       <|im_start|>{role}\n{content}<|im_end|>\n per message (the recipe's system
//                message first when the conversation has none); trained: an assistant turn's
//                content and its <|im_end|>.
//   deepseek_r1  <｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜><think>\n, as the
//                prompt template renders it; trained: the reasoning, "\n</think>\n\n", the
//                content and <｜end▁of▁sentence｜> (an empty thought when there is no reasoning).
//   r1_zero, r1_zero_think   one user turn and one assistant turn after the prompt template's
//                text; trained: " <think> {reasoning} </think> <answer> {content} </answer>"
//                (r1_zero_think: its prompt has opened <think>), or " {content}" as written
//                when there is no reasoning_content. No system message.
//   model        the model's Jinja chat template, rendered prefix by prefix as transformers
//                does (each assistant turn: the conversation before it with
//                add_generation_prompt, then with the turn); a template whose earlier turns
//                change once later ones follow is an error (the spans would not be exact).
//
// An assistant turn's reasoning_content is written as "<think>\n{reasoning}\n</think>\n\n"
// before its content in chatml and model (DeepSeek-R1 and Qwen's convention).
//
// Contract: errors are aha::Error naming the example's "<file>:<line>" and the template.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/chat_data.h"

namespace aha {

struct ChatPiece {
  std::string text;
  bool trained = false;
};

struct ChatRendering {
  std::vector<ChatPiece> pieces;
  bool includes_bos = false;  // the text starts with the BOS token as text: encode without specials
  std::string text() const;
};

class ChatRenderer {
 public:
  // template_name: chatml, deepseek_r1, r1_zero, r1_zero_think or model (reads model_dir's
  // chat template); `system` is the default system message (chatml, deepseek_r1, model).
  ChatRenderer(const std::string& template_name, const std::filesystem::path& model_dir = {},
               const std::string& system = "");
  ~ChatRenderer();
  ChatRenderer(ChatRenderer&&) noexcept;

  ChatRendering render(const ChatExample& example) const;
  const std::string& template_name() const { return name_; }

 private:
  struct ModelTemplate;
  std::string name_, system_;
  std::unique_ptr<ModelTemplate> model_;
};

}  // namespace aha
