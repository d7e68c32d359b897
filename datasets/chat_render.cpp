#include "datasets/chat_render.h"

#include "core/error.h"
#include "datasets/model_chat_template.h"
#include "datasets/prompt_template.h"

namespace aha {
namespace {

const char* const kBos = "<｜begin▁of▁sentence｜>";
const char* const kEos = "<｜end▁of▁sentence｜>";

// Content with its chain of thought in front, as DeepSeek-R1 and Qwen write it.
std::string with_thought(const ChatMessage& m) {
  if (m.reasoning_content.empty()) return m.content;
  return "<think>\n" + m.reasoning_content + "\n</think>\n\n" + m.content;
}

// Appends text to the last piece when it has the same trained flag, else a new piece.
void add(ChatRendering& r, const std::string& text, bool trained) {
  if (text.empty()) return;
  if (!r.pieces.empty() && r.pieces.back().trained == trained) {
    r.pieces.back().text += text;
  } else {
    r.pieces.push_back({text, trained});
  }
}

std::string system_of(const ChatExample& ex, const std::string& fallback, size_t* first) {
  *first = 0;
  if (!ex.messages.empty() && ex.messages[0].role == "system") {
    *first = 1;
    return ex.messages[0].content;
  }
  return fallback;
}

void require_no_late_system(const ChatExample& ex, size_t first, const std::string& where) {
  for (size_t i = first; i < ex.messages.size(); ++i)
    if (ex.messages[i].role == "system")
      throw Error(where + ": a system message is only allowed first (messages[" + std::to_string(i) + "])");
}

ChatRendering chatml(const ChatExample& ex, const std::string& default_system, const std::string& where) {
  ChatRendering r;
  size_t first = 0;
  const std::string system = system_of(ex, default_system, &first);
  require_no_late_system(ex, first, where);
  if (!system.empty()) add(r, "<|im_start|>system\n" + system + "<|im_end|>\n", false);
  for (size_t i = first; i < ex.messages.size(); ++i) {
    const auto& m = ex.messages[i];
    add(r, "<|im_start|>" + m.role + "\n", false);
    if (m.role == "assistant") {
      add(r, with_thought(m) + "<|im_end|>", true);
      add(r, "\n", false);
    } else {
      add(r, m.content + "<|im_end|>\n", false);
    }
  }
  return r;
}

ChatRendering deepseek_r1(const ChatExample& ex, const std::string& default_system, const std::string& where) {
  ChatRendering r;
  r.includes_bos = true;
  size_t first = 0;
  const std::string system = system_of(ex, default_system, &first);
  require_no_late_system(ex, first, where);
  add(r, kBos + system, false);
  for (size_t i = first; i < ex.messages.size(); ++i) {
    const auto& m = ex.messages[i];
    if (m.role == "user") {
      add(r, "<｜User｜>" + m.content, false);
    } else {
      add(r, "<｜Assistant｜><think>\n", false);  // the prompt template's generation prompt
      add(r, m.reasoning_content + "\n</think>\n\n" + m.content + kEos, true);
    }
  }
  return r;
}

ChatRendering r1_zero(const ChatExample& ex, const std::string& name, const std::string& where) {
  if (ex.messages.size() != 2 || ex.messages[0].role != "user" || ex.messages[1].role != "assistant")
    throw Error(where + ": the " + name + " template renders one user turn and one assistant turn, nothing else");
  const PromptTemplate t = PromptTemplate::from_name(name);
  const auto& a = ex.messages[1];
  ChatRendering r;
  add(r, t.render(ex.messages[0].content), false);
  std::string completion;
  if (a.reasoning_content.empty()) {
    const bool spaced = !a.content.empty() && (a.content[0] == ' ' || a.content[0] == '\n');
    completion = (spaced ? "" : " ") + a.content;
  } else {
    completion = std::string(name == "r1_zero" ? " <think> " : " ") + a.reasoning_content + " </think> <answer> " +
                 a.content + " </answer>";
  }
  add(r, completion, true);
  return r;
}

jinja::Value message_value(const ChatMessage& m) {
  return jinja::Value(jinja::Dict{{"role", jinja::Value(m.role)}, {"content", jinja::Value(with_thought(m))}});
}

}  // namespace

std::string ChatRendering::text() const {
  std::string out;
  for (const auto& p : pieces) out += p.text;
  return out;
}

struct ChatRenderer::ModelTemplate {
  ModelChatTemplate chat;
};

ChatRenderer::ChatRenderer(const std::string& template_name, const std::filesystem::path& model_dir,
                           const std::string& system)
    : name_(template_name), system_(system) {
  if (name_ == "model") {
    require(!model_dir.empty(), "chat template 'model' needs the model directory");
    model_ = std::make_unique<ModelTemplate>(ModelTemplate{load_model_chat_template(model_dir)});
  } else if (name_ == "r1_zero" || name_ == "r1_zero_think") {
    require(system_.empty(), "chat template '" + name_ + "' has no system message; give one with chatml, "
                             "deepseek_r1 or model");
  } else if (name_ != "chatml" && name_ != "deepseek_r1") {
    throw Error("chat template '" + name_ + "' is unknown for conversations; expected chatml, deepseek_r1, "
                "r1_zero, r1_zero_think or model");
  }
}

ChatRenderer::~ChatRenderer() = default;
ChatRenderer::ChatRenderer(ChatRenderer&&) noexcept = default;

ChatRendering ChatRenderer::render(const ChatExample& ex) const {
  const std::string where = ex.where + " (template " + name_ + ")";
  if (name_ == "chatml") return chatml(ex, system_, where);
  if (name_ == "deepseek_r1") return deepseek_r1(ex, system_, where);
  if (name_ != "model") return r1_zero(ex, name_, where);

  // The model's template, prefix by prefix: before each assistant turn the conversation so far
  // with the generation prompt, then with the turn; each rendering must extend the previous.
  jinja::List so_far;
  if (!system_.empty() && (ex.messages.empty() || ex.messages[0].role != "system"))
    so_far.push_back(jinja::Value(jinja::Dict{{"role", jinja::Value("system")}, {"content", jinja::Value(system_)}}));
  ChatRendering r;
  std::string done;  // the text of the pieces so far
  auto extend = [&](const std::string& text, bool trained) {
    if (text.compare(0, done.size(), done) != 0)
      throw Error(where + ": the chat template renders the conversation before a turn differently once the turn "
                  "follows, so the assistant spans cannot be found exactly (train on single-turn conversations "
                  "or use another template)");
    add(r, text.substr(done.size()), trained);
    done = text;
  };
  for (size_t i = 0; i < ex.messages.size(); ++i) {
    const auto& m = ex.messages[i];
    if (m.role == "assistant") extend(apply_chat_template(model_->chat, so_far, true), false);
    so_far.push_back(message_value(m));
    extend(apply_chat_template(model_->chat, so_far, false), m.role == "assistant");
    // Some templates (DeepSeek-R1's) drop the thought from every assistant turn: training
    // on what is left would teach answers without reasoning, silently.
    if (m.role == "assistant" && !m.reasoning_content.empty() &&
        (r.pieces.empty() || !r.pieces.back().trained ||
         r.pieces.back().text.find(m.reasoning_content) == std::string::npos))
      throw Error(where + ": messages[" + std::to_string(i) + "]: the chat template leaves out the turn's "
                  "reasoning_content, so it would not be trained; use the chatml or deepseek_r1 template");
  }
  const auto& bos = model_->chat.bos_token;
  r.includes_bos = bos && !bos->empty() && done.rfind(*bos, 0) == 0;
  return r;
}

}  // namespace aha
