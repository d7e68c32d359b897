// Reads a tokenizer directory: tokenizer.json, or the older vocab.json + merges.txt pair,
// then tokenizer_config.json for added tokens and the bos/eos/pad/unk tokens.
#include <unordered_set>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "policy/tokenizer/byte_level.h"
#include "policy/tokenizer/tokenizer_spec.h"

namespace aha {

TokenizerSpec parse_vocab_and_merges(std::string_view vocab_json, std::string_view merges_txt,
                                     const std::string& source) {
  TokenizerSpec spec;
  spec.source = source;
  rapidjson::Document vocab = json::parse(vocab_json, source + ": vocab.json");
  if (!vocab.IsObject()) throw Error(source + ": vocab.json must be an object of token: id");
  for (auto it = vocab.MemberBegin(); it != vocab.MemberEnd(); ++it) {
    if (!it->value.IsInt()) throw Error(source + ": vocab.json: the id of '" + it->name.GetString() + "' is not an integer");
    spec.vocab.emplace_back(std::string(it->name.GetString(), it->name.GetStringLength()), it->value.GetInt());
  }
  size_t line_number = 0, start = 0;
  while (start < merges_txt.size()) {
    size_t end = merges_txt.find('\n', start);
    if (end == std::string_view::npos) end = merges_txt.size();
    std::string_view line = merges_txt.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.starts_with("#version")) continue;
    size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
      throw Error(source + ": merges.txt line " + std::to_string(line_number) +
                  ": expected two tokens separated by one space, got '" + std::string(line) + "'");
    spec.merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
  // GPT-2's pipeline; the vocabulary entries that no merge produces are its special tokens.
  spec.pre_tokenizer.push_back({PreTokenizerStep::Kind::kByteLevel, "", false, true});
  std::unordered_set<std::string> produced;
  for (const auto& [left, right] : spec.merges) produced.insert(left + right);
  for (const auto& [text, id] : spec.vocab) {
    auto bytes = byte_level::to_bytes(text);
    if ((bytes && bytes->size() == 1) || produced.count(text)) continue;
    spec.added_tokens.push_back({text, id, true, false, false, false});
  }
  return spec;
}

namespace {

// "eos_token": "<|im_end|>" or {"content": "<|im_end|>", ...} or null.
std::optional<std::string> token_field(const json::ObjectReader& r, const char* key) {
  if (!r.has(key)) return std::nullopt;
  const auto& v = r.get(key);
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return json::ObjectReader(v, r.context() + "." + key).get_string("content");
}

}  // namespace

void apply_tokenizer_config(TokenizerSpec& spec, std::string_view config_json, const std::string& source) {
  rapidjson::Document doc = json::parse(config_json, source);
  json::ObjectReader r(doc, source);
  if (r.has("added_tokens_decoder")) {
    const auto& decoder = r.get("added_tokens_decoder");
    if (!decoder.IsObject()) throw Error(source + ": added_tokens_decoder must be an object of id: token");
    for (auto it = decoder.MemberBegin(); it != decoder.MemberEnd(); ++it) {
      std::string key = it->name.GetString();
      json::ObjectReader t(it->value, source + ": added_tokens_decoder." + key);
      TokenId id;
      try {
        size_t used = 0;
        id = static_cast<TokenId>(std::stol(key, &used));
        if (used != key.size()) throw std::invalid_argument(key);
      } catch (const std::exception&) {
        throw Error(t.context() + ": the key must be a token id");
      }
      if (t.get_bool("single_word", false)) throw Error(t.context() + ": single_word is not supported by aha");
      AddedToken token{t.get_string("content"), id, t.get_bool("special", false), false,
                       t.get_bool("lstrip", false), t.get_bool("rstrip", false)};
      token.normalized = t.get_bool("normalized", !token.special);
      bool known = false;
      for (const auto& existing : spec.added_tokens) {
        if (existing.content != token.content) continue;
        if (existing.id != id)
          throw Error(t.context() + ": '" + token.content + "' has id " + std::to_string(existing.id) +
                      " in the tokenizer, not " + key);
        known = true;
      }
      if (!known) spec.added_tokens.push_back(std::move(token));
    }
  }
  spec.bos_token = token_field(r, "bos_token");
  spec.eos_token = token_field(r, "eos_token");
  spec.pad_token = token_field(r, "pad_token");
  spec.unk_token = token_field(r, "unk_token");
}

TokenizerSpec read_tokenizer_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  TokenizerSpec spec;
  if (fs::exists(dir / "tokenizer.json")) {
    spec = parse_tokenizer_json(read_file(dir / "tokenizer.json"), (dir / "tokenizer.json").string());
  } else if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
    spec = parse_vocab_and_merges(read_file(dir / "vocab.json"), read_file(dir / "merges.txt"),
                                  (dir / "vocab.json").string() + " + merges.txt");
  } else {
    throw Error(dir.string() + ": not a tokenizer directory (expected tokenizer.json, or vocab.json and merges.txt)");
  }
  if (fs::exists(dir / "tokenizer_config.json"))
    apply_tokenizer_config(spec, read_file(dir / "tokenizer_config.json"), (dir / "tokenizer_config.json").string());
  return spec;
}

}  // namespace aha
