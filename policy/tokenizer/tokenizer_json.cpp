// Parses tokenizer.json (Hugging Face tokenizers' format) into a TokenizerSpec, accepting
// only the components Tokenizer implements.
#include <cstdio>
#include <map>

#include "core/error.h"
#include "core/json.h"
#include "policy/tokenizer/tokenizer_spec.h"

namespace aha {

const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

std::string type_of(const json::ObjectReader& r) { return r.get_string("type"); }

[[noreturn]] void unsupported(const std::string& where, const std::string& type,
                              const std::string& supported) {
  throw Error(where + ": type '" + type + "' is not supported by aha (supported: " + supported + ")");
}

std::string text_of(const rapidjson::Value& v, const std::string& where) {
  if (!v.IsString()) throw Error(where + ": expected a string, got " + json::to_string(v));
  return std::string(v.GetString(), v.GetStringLength());
}

void parse_normalizer(const rapidjson::Value& v, const std::string& where, TokenizerSpec& spec) {
  if (v.IsNull()) return;
  json::ObjectReader r(v, where);
  std::string type = type_of(r);
  if (type == "NFC") {
    r.reject_unknown({"type"});
    spec.nfc = true;
  } else if (type == "Sequence") {
    r.reject_unknown({"type", "normalizers"});
    const auto& list = r.get("normalizers");
    if (!list.IsArray()) throw Error(where + ": field 'normalizers' must be an array");
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i)
      parse_normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]", spec);
  } else {
    unsupported(where, type, "NFC, Sequence");
  }
}

// Escapes a literal so that the Oniguruma-to-PCRE2 translation reads it as itself.
std::string escape_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    bool plain = u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!plain && u >= 0x20 && u < 0x7F) out += '\\';
    if (!plain && (u < 0x20 || u == 0x7F)) {
      char hex[12];
      snprintf(hex, sizeof(hex), "\\x{%02x}", u);
      out += hex;
      continue;
    }
    out += c;
  }
  return out;
}

void parse_pre_tokenizer(const rapidjson::Value& v, const std::string& where, TokenizerSpec& spec) {
  if (v.IsNull()) return;
  json::ObjectReader r(v, where);
  std::string type = type_of(r);
  PreTokenizerStep step;
  if (type == "Sequence") {
    r.reject_unknown({"type", "pretokenizers"});
    const auto& list = r.get("pretokenizers");
    if (!list.IsArray()) throw Error(where + ": field 'pretokenizers' must be an array");
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i)
      parse_pre_tokenizer(list[i], where + ".pretokenizers[" + std::to_string(i) + "]", spec);
    return;
  }
  if (type == "ByteLevel") {
    r.reject_unknown({"type", "add_prefix_space", "trim_offsets", "use_regex"});
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    step.add_prefix_space = r.get_bool("add_prefix_space", true);
    step.use_regex = r.get_bool("use_regex", true);
  } else if (type == "Split") {
    r.reject_unknown({"type", "pattern", "behavior", "invert"});
    std::string behavior = r.get_string("behavior");
    if (behavior != "Isolated")
      throw Error(where + ": Split behavior '" + behavior + "' is not supported by aha (supported: Isolated)");
    if (r.get_bool("invert", false)) throw Error(where + ": Split with invert: true is not supported by aha");
    json::ObjectReader pattern(r.get("pattern"), where + ".pattern");
    pattern.reject_unknown({"Regex", "String"});
    if (pattern.has("Regex")) step.pattern = pattern.get_string("Regex");
    else step.pattern = escape_literal(pattern.get_string("String"));
  } else {
    unsupported(where, type, "ByteLevel, Split, Sequence");
  }
  spec.pre_tokenizer.push_back(std::move(step));
}

void parse_post_processor(const rapidjson::Value& v, const std::string& where, TokenizerSpec& spec) {
  if (v.IsNull()) return;
  json::ObjectReader r(v, where);
  std::string type = type_of(r);
  if (type == "ByteLevel") return;  // offsets only: no effect on ids
  if (type == "Sequence") {
    r.reject_unknown({"type", "processors"});
    const auto& list = r.get("processors");
    if (!list.IsArray()) throw Error(where + ": field 'processors' must be an array");
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i)
      parse_post_processor(list[i], where + ".processors[" + std::to_string(i) + "]", spec);
    return;
  }
  if (type != "TemplateProcessing") unsupported(where, type, "ByteLevel, TemplateProcessing, Sequence");
  r.reject_unknown({"type", "single", "pair", "special_tokens"});
  std::map<std::string, std::vector<TokenId>> specials;
  json::ObjectReader special_tokens(r.get("special_tokens"), where + ".special_tokens");
  for (auto it = v["special_tokens"].MemberBegin(); it != v["special_tokens"].MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    json::ObjectReader token(it->value, special_tokens.context() + "." + name);
    for (int64_t id : json::int_or_int_list(token.get("ids"), token.context() + ".ids"))
      specials[name].push_back(static_cast<TokenId>(id));
  }
  const auto& single = r.get("single");
  if (!single.IsArray()) throw Error(where + ": field 'single' must be an array");
  bool seen_sequence = false;
  for (rapidjson::SizeType i = 0; i < single.Size(); ++i) {
    std::string at = where + ".single[" + std::to_string(i) + "]";
    json::ObjectReader piece(single[i], at);
    piece.reject_unknown({"SpecialToken", "Sequence"});
    if (piece.has("Sequence")) {
      seen_sequence = true;
      continue;
    }
    std::string name = json::ObjectReader(piece.get("SpecialToken"), at + ".SpecialToken").get_string("id");
    auto found = specials.find(name);
    if (found == specials.end()) throw Error(at + ": special token '" + name + "' is not in special_tokens");
    auto& target = seen_sequence ? spec.suffix_ids : spec.prefix_ids;
    target.insert(target.end(), found->second.begin(), found->second.end());
  }
  if (!seen_sequence) throw Error(where + ".single: the template has no Sequence item");
}

void parse_decoder(const rapidjson::Value& v, const std::string& where) {
  if (v.IsNull()) throw Error(where + ": missing; aha supports the ByteLevel decoder");
  json::ObjectReader r(v, where);
  std::string type = type_of(r);
  if (type != "ByteLevel") unsupported(where, type, "ByteLevel");
  r.reject_unknown({"type", "add_prefix_space", "trim_offsets", "use_regex"});
}

void parse_model(const rapidjson::Value& v, const std::string& where, TokenizerSpec& spec) {
  json::ObjectReader r(v, where);
  std::string type = r.get_string("type", "BPE");
  if (type != "BPE") unsupported(where, type, "BPE");
  r.reject_unknown({"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                    "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"});
  if (r.has("dropout") && r.get_double("dropout") != 0.0)
    throw Error(where + ": dropout is not supported by aha (it makes tokenization random)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!r.get_string(key, "").empty()) throw Error(where + ": " + key + " is not supported by aha");
  if (r.get_bool("byte_fallback", false))
    throw Error(where + ": byte_fallback is not supported by aha (a SentencePiece-style BPE, not byte-level)");
  spec.ignore_merges = r.get_bool("ignore_merges", false);
  const auto& vocab = r.get("vocab");
  if (!vocab.IsObject()) throw Error(where + ": field 'vocab' must be an object of token: id");
  spec.vocab.reserve(vocab.MemberCount());
  for (auto it = vocab.MemberBegin(); it != vocab.MemberEnd(); ++it) {
    if (!it->value.IsInt()) throw Error(where + ".vocab: the id of '" + it->name.GetString() + "' is not an integer");
    spec.vocab.emplace_back(std::string(it->name.GetString(), it->name.GetStringLength()), it->value.GetInt());
  }
  const auto& merges = r.get("merges");
  if (!merges.IsArray()) throw Error(where + ": field 'merges' must be an array");
  spec.merges.reserve(merges.Size());
  for (rapidjson::SizeType i = 0; i < merges.Size(); ++i) {
    std::string at = where + ".merges[" + std::to_string(i) + "]";
    const auto& m = merges[i];
    if (m.IsArray()) {
      if (m.Size() != 2) throw Error(at + ": expected a pair of tokens");
      spec.merges.emplace_back(text_of(m[0], at), text_of(m[1], at));
    } else {
      std::string line = text_of(m, at);
      size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        throw Error(at + ": expected two tokens separated by one space, got '" + line + "'");
      spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
  }
}

void parse_added_tokens(const rapidjson::Value& v, const std::string& where, TokenizerSpec& spec) {
  if (v.IsNull()) return;
  if (!v.IsArray()) throw Error(where + ": expected an array");
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    json::ObjectReader r(v[i], where + "[" + std::to_string(i) + "]");
    r.reject_unknown({"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"});
    if (r.get_bool("single_word", false))
      throw Error(r.context() + ": single_word is not supported by aha");
    AddedToken t;
    t.id = static_cast<TokenId>(r.get_int("id"));
    t.content = r.get_string("content");
    t.special = r.get_bool("special", false);
    t.normalized = r.get_bool("normalized", !t.special);
    t.lstrip = r.get_bool("lstrip", false);
    t.rstrip = r.get_bool("rstrip", false);
    if (t.content.empty()) throw Error(r.context() + ": content is empty");
    spec.added_tokens.push_back(std::move(t));
  }
}

}  // namespace

TokenizerSpec parse_tokenizer_json(std::string_view text, const std::string& source) {
  rapidjson::Document doc = json::parse(text, source);
  json::ObjectReader r(doc, source);
  r.reject_unknown({"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                    "post_processor", "decoder", "model"});
  if (r.has("truncation"))
    throw Error(source + ": truncation is set; aha does not truncate inside the tokenizer (set it to null)");
  if (r.has("padding"))
    throw Error(source + ": padding is set; aha does not pad inside the tokenizer (set it to null)");
  TokenizerSpec spec;
  spec.source = source;
  auto field = [&](const char* key) -> const rapidjson::Value& {
    static const rapidjson::Value null_value;
    auto it = doc.FindMember(key);
    return it == doc.MemberEnd() ? null_value : it->value;
  };
  parse_model(r.get("model"), source + ": model", spec);
  parse_normalizer(field("normalizer"), source + ": normalizer", spec);
  parse_pre_tokenizer(field("pre_tokenizer"), source + ": pre_tokenizer", spec);
  parse_post_processor(field("post_processor"), source + ": post_processor", spec);
  parse_decoder(field("decoder"), source + ": decoder");
  parse_added_tokens(field("added_tokens"), source + ": added_tokens", spec);
  return spec;
}

}  // namespace aha
