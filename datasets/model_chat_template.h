// The chat template a Hugging Face model directory ships, read from its files (not from the
// tokenizer object: datasets/ knows no policy/): chat_template.jinja when present (transformers
// saves templates there and prefers it on loading), else tokenizer_config.json's
// "chat_template", a string or a list of {"name", "template"} of which "default" is used; and the
// bos_token / eos_token of tokenizer_config.json (a string or an {"content": ...} object).
//
// Contract: a directory with no template is an aha::Error naming the files looked at; a
// template that does not parse is an aha::Error naming its file and line.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "jinja/template.h"

namespace aha {

struct ModelChatTemplate {
  std::shared_ptr<const jinja::Template> parsed;
  std::string origin;  // "DIR/chat_template.jinja" or "DIR/tokenizer_config.json (chat_template)"
  std::optional<std::string> bos_token, eos_token;
};

ModelChatTemplate load_model_chat_template(const std::filesystem::path& model_dir);

// Renders messages (a JSON-like list of {"role", "content"}) as transformers' apply_chat_template
// does: with tools and documents None, the special tokens, and add_generation_prompt.
std::string apply_chat_template(const ModelChatTemplate& chat_template, const jinja::List& messages,
                                bool add_generation_prompt, const jinja::Dict& extra_variables = {});

}  // namespace aha
