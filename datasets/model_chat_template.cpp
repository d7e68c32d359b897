#include "datasets/model_chat_template.h"

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"

namespace aha {
namespace fs = std::filesystem;

namespace {

// A special token written as a string or as an AddedToken object {"content": ...}.
std::optional<std::string> token_text(const rapidjson::Value& config, const char* key, const std::string& where) {
  if (!config.HasMember(key) || config[key].IsNull()) return std::nullopt;
  const auto& value = config[key];
  if (value.IsString()) return std::string(value.GetString(), value.GetStringLength());
  if (value.IsObject() && value.HasMember("content") && value["content"].IsString())
    return std::string(value["content"].GetString(), value["content"].GetStringLength());
  throw Error(where + ": '" + key + "' must be a string or an object with a \"content\" string");
}

// tokenizer_config.json's chat_template: a string, or [{"name", "template"}] ("default" used).
std::optional<std::string> config_template(const rapidjson::Value& config, const std::string& where) {
  if (!config.HasMember("chat_template") || config["chat_template"].IsNull()) return std::nullopt;
  const auto& value = config["chat_template"];
  if (value.IsString()) return std::string(value.GetString(), value.GetStringLength());
  if (value.IsArray()) {
    std::string names;
    for (const auto& entry : value.GetArray()) {
      if (!entry.IsObject() || !entry.HasMember("name") || !entry["name"].IsString() || !entry.HasMember("template") ||
          !entry["template"].IsString())
        throw Error(where + ": 'chat_template' list entries must be {\"name\": string, \"template\": string}");
      const std::string name = entry["name"].GetString();
      if (name == "default") return std::string(entry["template"].GetString(), entry["template"].GetStringLength());
      names += (names.empty() ? "" : ", ") + name;
    }
    throw Error(where + ": 'chat_template' lists no template named \"default\" (it has: " + names + ")");
  }
  throw Error(where + ": 'chat_template' must be a string or a list of {name, template}");
}

}  // namespace

ModelChatTemplate load_model_chat_template(const fs::path& model_dir) {
  const fs::path jinja_file = model_dir / "chat_template.jinja";
  const fs::path config_file = model_dir / "tokenizer_config.json";
  ModelChatTemplate out;
  std::optional<std::string> source;
  if (fs::exists(config_file)) {
    const auto config = json::parse(read_file(config_file), config_file.string());
    require(config.IsObject(), config_file.string() + ": expected a JSON object");
    out.bos_token = token_text(config, "bos_token", config_file.string());
    out.eos_token = token_text(config, "eos_token", config_file.string());
    source = config_template(config, config_file.string());
    out.origin = config_file.string() + " (chat_template)";
  }
  if (fs::exists(jinja_file)) {
    source = read_file(jinja_file);
    out.origin = jinja_file.string();
  }
  if (!source)
    throw Error("template 'model': " + model_dir.string() + " has no chat template (looked at " + jinja_file.string() +
                " and the \"chat_template\" of " + config_file.string() + ")");
  out.parsed = std::make_shared<const jinja::Template>(*source, out.origin);
  return out;
}

std::string apply_chat_template(const ModelChatTemplate& chat_template, const jinja::List& messages,
                                bool add_generation_prompt, const jinja::Dict& extra_variables) {
  jinja::Dict variables = {{"messages", jinja::Value(messages)},
                           {"tools", jinja::Value::none()},
                           {"documents", jinja::Value::none()},
                           {"add_generation_prompt", jinja::Value(add_generation_prompt)}};
  if (chat_template.bos_token) variables.emplace_back("bos_token", jinja::Value(*chat_template.bos_token));
  if (chat_template.eos_token) variables.emplace_back("eos_token", jinja::Value(*chat_template.eos_token));
  for (const auto& v : extra_variables) variables.push_back(v);
  return chat_template.parsed->render(variables);
}

}  // namespace aha
