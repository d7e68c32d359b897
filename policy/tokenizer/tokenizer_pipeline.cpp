#include "policy/tokenizer/tokenizer_pipeline.h"

#include <algorithm>

#include "core/error.h"
#include "policy/tokenizer/byte_level.h"
#include "policy/tokenizer/tokenizer_nfc.h"

namespace aha {

TokenizerPipeline::TokenizerPipeline(const TokenizerSpec& spec)
    : source(spec.source),
      nfc(spec.nfc),
      pre_tokenizer(spec.pre_tokenizer, spec.source),
      model(std::make_unique<BpeModel>(spec.vocab, spec.merges, spec.ignore_merges, spec.source + ": model")),
      prefix_ids(spec.prefix_ids),
      suffix_ids(spec.suffix_ids) {
  TokenId limit = 0;
  for (const auto& [t, id] : spec.vocab) limit = std::max(limit, id + 1);
  for (const auto& a : spec.added_tokens) {
    if (a.id < 0) throw Error(source + ": added token '" + a.content + "' has a negative id");
    limit = std::max(limit, a.id + 1);
  }
  exists.assign(static_cast<size_t>(limit), 0);
  special.assign(static_cast<size_t>(limit), 0);
  text.assign(static_cast<size_t>(limit), std::string());
  for (const auto& [t, id] : spec.vocab) {
    if (exists[static_cast<size_t>(id)])
      throw Error(source + ": model.vocab: id " + std::to_string(id) + " is given to both '" +
                  text[static_cast<size_t>(id)] + "' and '" + t + "'");
    exists[static_cast<size_t>(id)] = 1;
    text[static_cast<size_t>(id)] = t;
    id_of_text.emplace(t, id);
  }
  std::vector<AddedToken> raw, normalized;
  for (const auto& a : spec.added_tokens) {
    auto i = static_cast<size_t>(a.id);
    exists[i] = 1;
    special[i] = a.special;
    text[i] = a.content;
    id_of_text[a.content] = a.id;  // added tokens take precedence, as in Hugging Face
    if (!a.normalized) {
      raw.push_back(a);
    } else {
      AddedToken n = a;
      if (nfc) n.content = aha::nfc(n.content);
      normalized.push_back(std::move(n));
    }
  }
  raw_added = AddedTokenMatcher(std::move(raw));
  normalized_added = AddedTokenMatcher(std::move(normalized));
  // What decode writes for each token: the ByteLevel decoder maps a token whose characters
  // are all in the byte alphabet to those bytes, and keeps any other token's own text.
  bytes.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (!exists[i]) continue;
    ++count;
    auto raw_bytes = byte_level::to_bytes(text[i]);
    bytes[i] = raw_bytes ? std::move(*raw_bytes) : text[i];
  }
  for (TokenId id : prefix_ids)
    if (id < 0 || id >= limit || !exists[static_cast<size_t>(id)])
      throw Error(source + ": post_processor: id " + std::to_string(id) + " is not in the vocabulary");
  for (TokenId id : suffix_ids)
    if (id < 0 || id >= limit || !exists[static_cast<size_t>(id)])
      throw Error(source + ": post_processor: id " + std::to_string(id) + " is not in the vocabulary");
  auto resolve = [&](const std::optional<std::string>& token, const char* field) -> std::optional<TokenId> {
    if (!token) return std::nullopt;
    auto it = id_of_text.find(*token);
    if (it == id_of_text.end())
      throw Error(source + ": tokenizer_config.json: " + field + " '" + *token + "' is not a token of the tokenizer");
    return it->second;
  };
  bos = resolve(spec.bos_token, "bos_token");
  eos = resolve(spec.eos_token, "eos_token");
  pad = resolve(spec.pad_token, "pad_token");
  unk = resolve(spec.unk_token, "unk_token");
}

void TokenizerPipeline::encode(std::string_view input, std::vector<TokenId>& out) const {
  raw_added.split(
      input,
      [&](size_t begin, size_t end) {
        std::string_view piece = input.substr(begin, end - begin);
        if (nfc && !is_nfc_quick(piece)) {
          std::string normalized_piece = aha::nfc(piece);
          encode_normalized(normalized_piece, out);
        } else {
          encode_normalized(piece, out);
        }
      },
      [&](TokenId id) { out.push_back(id); });
}

void TokenizerPipeline::encode_normalized(std::string_view input, std::vector<TokenId>& out) const {
  auto encode_words = [&](size_t begin, size_t end) {
    pre_tokenizer.run(input.substr(begin, end - begin),
                      [&](std::string_view word) { model->encode_word(word, out); });
  };
  normalized_added.split(input, encode_words, [&](TokenId id) { out.push_back(id); });
}

}  // namespace aha
