// TokenizerSpec: what a tokenizer's files say, as plain data, between parsing
// (tokenizer_json.cpp, tokenizer_files.cpp) and building the Tokenizer.
//
// Contract: the parsers accept only what Tokenizer supports and throw aha::Error naming the
// file and component for anything else. Building the Tokenizer checks the rest (every merge
// and its result in the vocabulary, the 256 byte tokens, config tokens that exist).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/tokenizer/bpe_model.h"

namespace aha {

struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;
  bool normalized = false;  // matched after normalization, instead of on the raw text
  bool lstrip = false;      // the match takes the white space on its left
  bool rstrip = false;      // and on its right
};

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel } kind = Kind::kSplit;
  std::string pattern;            // kSplit: Oniguruma syntax
  bool add_prefix_space = false;  // kByteLevel
  bool use_regex = false;         // kByteLevel: split with GPT-2's pattern
};

struct TokenizerSpec {
  std::string source;  // names the files in errors
  std::vector<std::pair<std::string, TokenId>> vocab;             // byte-level form
  std::vector<std::pair<std::string, std::string>> merges;        // in rank order
  bool ignore_merges = false;
  bool nfc = false;
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<AddedToken> added_tokens;
  std::vector<TokenId> prefix_ids, suffix_ids;  // added around the text by add_special_tokens
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
};

// GPT-2's pre-tokenizer pattern (ByteLevel with use_regex).
extern const char* const kGpt2SplitPattern;

TokenizerSpec parse_tokenizer_json(std::string_view text, const std::string& source);
TokenizerSpec parse_vocab_and_merges(std::string_view vocab_json, std::string_view merges_txt,
                                     const std::string& source);
// Adds tokenizer_config.json's added_tokens_decoder and its bos/eos/pad/unk tokens.
void apply_tokenizer_config(TokenizerSpec& spec, std::string_view config_json, const std::string& source);
// Reads a directory: tokenizer.json, or vocab.json + merges.txt; then tokenizer_config.json.
TokenizerSpec read_tokenizer_dir(const std::filesystem::path& dir);

}  // namespace aha
