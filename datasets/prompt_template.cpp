#include "datasets/prompt_template.h"

#include "core/error.h"
#include "datasets/model_chat_template.h"

namespace aha {

const char* const kR1ZeroPreamble =
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>.";

PromptTemplate::PromptTemplate(std::string name, std::string before, std::string after,
                               std::vector<std::string> stop_strings, bool includes_bos)
    : name_(std::move(name)),
      before_(std::move(before)),
      after_(std::move(after)),
      stop_strings_(std::move(stop_strings)),
      includes_bos_(includes_bos) {}

PromptTemplate PromptTemplate::r1_zero() {
  return PromptTemplate("r1_zero", std::string(kR1ZeroPreamble) + "\nUser: ", "\nAssistant:", {"</answer>"}, false);
}

PromptTemplate PromptTemplate::r1_zero_think() {
  return PromptTemplate("r1_zero_think", std::string(kR1ZeroPreamble) + "\nUser: ", "\nAssistant: <think>", {"</answer>"},
                        false);
}

bool PromptTemplate::opens_think() const {
  const auto end = after_.find_last_not_of(" \n");
  return end != std::string::npos && end + 1 >= 7 && after_.compare(end + 1 - 7, 7, "<think>") == 0;
}

PromptTemplate PromptTemplate::chatml(const std::string& system) {
  std::string before;
  if (!system.empty()) before = "<|im_start|>system\n" + system + "<|im_end|>\n";
  before += "<|im_start|>user\n";
  return PromptTemplate("chatml", before, "<|im_end|>\n<|im_start|>assistant\n", {"<|im_end|>", "<|endoftext|>"},
                        false);
}

PromptTemplate PromptTemplate::deepseek_r1(const std::string& system) {
  return PromptTemplate("deepseek_r1", "<｜begin▁of▁sentence｜>" + system + "<｜User｜>", "<｜Assistant｜><think>\n",
                        {"<｜end▁of▁sentence｜>"}, true);
}

PromptTemplate PromptTemplate::custom(const std::string& pattern, std::vector<std::string> stop_strings) {
  constexpr std::string_view kSlot = "{prompt}";
  size_t at = pattern.find(kSlot);
  if (at == std::string::npos || pattern.find(kSlot, at + 1) != std::string::npos)
    throw Error("prompt template '" + pattern + "': expected exactly one {prompt}");
  for (const auto& s : stop_strings)
    if (s.empty()) throw Error("prompt template '" + pattern + "': a stop string is empty");
  return PromptTemplate("custom", pattern.substr(0, at), pattern.substr(at + kSlot.size()), std::move(stop_strings),
                        false);
}

PromptTemplate PromptTemplate::from_model(const std::filesystem::path& model_dir, const std::string& system) {
  auto chat = std::make_shared<const ModelChatTemplate>(load_model_chat_template(model_dir));
  std::vector<std::string> stops;
  if (chat->eos_token && !chat->eos_token->empty()) stops.push_back(*chat->eos_token);
  PromptTemplate t("model", "", "", std::move(stops), false);
  t.chat_ = chat;
  t.system_ = system;
  // A probe render checks the template now (not at the first batch) and finds what follows the
  // prompt (opens_think) and whether the text starts with the BOS token.
  const std::string probe = "\x01aha-probe\x01";
  const std::string text = t.render(probe);
  const size_t at = text.find(probe);
  if (at != std::string::npos) {
    t.before_ = text.substr(0, at);
    t.after_ = text.substr(at + probe.size());
  }
  t.includes_bos_ = chat->bos_token && !chat->bos_token->empty() && text.rfind(*chat->bos_token, 0) == 0;
  return t;
}

PromptTemplate PromptTemplate::from_name(const std::string& name, std::vector<std::string> custom_stop_strings,
                                         const std::filesystem::path& model_dir, const std::string& system) {
  if (name.find("{prompt}") != std::string::npos) {
    if (!system.empty()) throw Error("prompt template '" + name + "': a system prompt needs chatml, deepseek_r1 or model");
    return custom(name, std::move(custom_stop_strings));
  }
  if (!custom_stop_strings.empty())
    throw Error("prompt template '" + name + "': stop strings can only be given with a custom template");
  if (name == "chatml") return chatml(system);
  if (name == "deepseek_r1") return deepseek_r1(system);
  if (name == "model") {
    if (model_dir.empty()) throw Error("prompt template 'model' needs the model directory");
    return from_model(model_dir, system);
  }
  if (!system.empty() && (name == "r1_zero" || name == "r1_zero_think"))
    throw Error("prompt template '" + name + "': a system prompt needs chatml, deepseek_r1 or model");
  if (name == "r1_zero") return r1_zero();
  if (name == "r1_zero_think") return r1_zero_think();
  throw Error("prompt template '" + name + "' is unknown; expected " + kNames +
              ", or a template string containing {prompt}");
}

std::string PromptTemplate::render(std::string_view prompt) const {
  if (chat_) {
    jinja::List messages;
    if (!system_.empty()) messages.push_back(jinja::Value(jinja::Dict{{"role", jinja::Value("system")}, {"content", jinja::Value(system_)}}));
    messages.push_back(jinja::Value(jinja::Dict{{"role", jinja::Value("user")}, {"content", jinja::Value(std::string(prompt))}}));
    return apply_chat_template(*chat_, messages, true);
  }
  std::string out;
  out.reserve(before_.size() + prompt.size() + after_.size());
  out += before_;
  out += prompt;
  out += after_;
  return out;
}

}  // namespace aha
