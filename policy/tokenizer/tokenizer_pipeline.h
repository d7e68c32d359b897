// TokenizerPipeline: the built, immutable state behind a Tokenizer (internal to policy/).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/tokenizer/bpe_model.h"
#include "policy/tokenizer/tokenizer_added_tokens.h"
#include "policy/tokenizer/tokenizer_pre_tokenizer.h"
#include "policy/tokenizer/tokenizer_spec.h"

namespace aha {

struct TokenizerPipeline {
  explicit TokenizerPipeline(const TokenizerSpec& spec);

  // Appends the ids of text (no post-processor tokens).
  void encode(std::string_view text, std::vector<TokenId>& out) const;

  std::string source;
  bool nfc = false;
  AddedTokenMatcher raw_added;         // matched on the text as given
  AddedTokenMatcher normalized_added;  // matched after normalization
  PreTokenizer pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::vector<TokenId> prefix_ids, suffix_ids;

  // By id (size id_limit): whether it exists, is special, its text and its bytes.
  std::vector<uint8_t> exists, special;
  std::vector<std::string> text, bytes;
  std::unordered_map<std::string, TokenId> id_of_text;
  size_t count = 0;
  std::optional<TokenId> bos, eos, pad, unk;

 private:
  void encode_normalized(std::string_view text, std::vector<TokenId>& out) const;
};

}  // namespace aha
