// Prompt templates: turn a dataset prompt into the text the policy continues, and name the
// strings that end a completion. Used by datasets and recipes.
//
//   r1_zero      DeepSeek-R1-Zero's template (DeepSeek-R1 report, table 1): the conversation
//                preamble, then "User: {prompt}" and "Assistant:" on lines of their own; the
//                reasoning goes in <think> </think>, the answer in <answer> </answer>.
//                Stops at "</answer>".
//   r1_zero_think  the same with "<think>" already written after "Assistant:", as many R1-Zero
//                reproductions prompt small base models (TinyZero, Open-Reasoner-Zero): the
//                completion starts inside the reasoning and must close it with </think> and
//                give <answer> </answer>. Score its format with the format reward's
//                think_in_prompt option. Stops at "</answer>".
//   chatml       Qwen's ChatML: [<|im_start|>system\n{system}<|im_end|>\n]
//                <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n
//                Stops at "<|im_end|>" and "<|endoftext|>".
//   deepseek_r1  DeepSeek-R1's chat format: <｜begin▁of▁sentence｜>{system}<｜User｜>{prompt}
//                <｜Assistant｜><think>\n (as its chat template's generation prompt).
//                Stops at "<｜end▁of▁sentence｜>". The text carries the BOS token, so encode it
//                with add_special_tokens = false.
//   custom       any string with exactly one "{prompt}"; the caller gives the stop strings.
//   model        the model's own chat template (datasets/model_chat_template.h), rendered with
//                jinja/ as transformers' apply_chat_template renders it: [a system message,] the
//                prompt as the user message, add_generation_prompt=true. Stops at the model's
//                eos_token; includes_bos when the rendered text starts with its bos_token.
//
// Contract: render() substitutes the prompt verbatim (no escaping, no trimming). A completion
// ends at the first occurrence of any stop string; whether the stop string is kept is the
// rollout's choice. Unknown names and custom strings without exactly one {prompt} are errors.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace aha {

struct ModelChatTemplate;

class PromptTemplate {
 public:
  static PromptTemplate r1_zero();
  static PromptTemplate r1_zero_think();
  static PromptTemplate chatml(const std::string& system = "");
  static PromptTemplate deepseek_r1(const std::string& system = "");
  static PromptTemplate custom(const std::string& pattern, std::vector<std::string> stop_strings);
  // The chat template of the model in model_dir, with a system message when `system` is not empty.
  static PromptTemplate from_model(const std::filesystem::path& model_dir, const std::string& system = "");
  // "r1_zero", "r1_zero_think", "chatml", "deepseek_r1", "model" (needs model_dir), or a custom
  // pattern (recognised by its "{prompt}"). `system` is the system message of chatml,
  // deepseek_r1 and model, an error for the others.
  static PromptTemplate from_name(const std::string& name_or_pattern,
                                  std::vector<std::string> custom_stop_strings = {},
                                  const std::filesystem::path& model_dir = {}, const std::string& system = "");
  // The names from_name knows (a custom pattern aside), for help texts and errors.
  static constexpr const char* kNames = "r1_zero, r1_zero_think, chatml, deepseek_r1, model";

  std::string render(std::string_view prompt) const;
  const std::string& name() const { return name_; }
  const std::vector<std::string>& stop_strings() const { return stop_strings_; }
  // True when the rendered text begins with the model's BOS token written as text.
  bool includes_bos() const { return includes_bos_; }
  // True for the R1-Zero templates, whose completions are <think>..</think><answer>..</answer>.
  bool r1_format() const { return name_ == "r1_zero" || name_ == "r1_zero_think"; }
  // True when the rendered text ends inside an opened <think> block (r1_zero_think, deepseek_r1).
  bool opens_think() const;

 private:
  PromptTemplate(std::string name, std::string before, std::string after,
                 std::vector<std::string> stop_strings, bool includes_bos);
  std::string name_, before_, after_;  // the text around {prompt} (for "model": of a probe render)
  std::shared_ptr<const ModelChatTemplate> chat_;  // "model" only: rendered for every prompt
  std::string system_;
  std::vector<std::string> stop_strings_;
  bool includes_bos_;
};

// The R1-Zero preamble, word for word from the DeepSeek-R1 report.
extern const char* const kR1ZeroPreamble;

}  // namespace aha
