// Tokenizer: Hugging Face byte-level BPE tokenizers (GPT-2, Qwen2/Qwen2.5, Llama 3,
// DeepSeek V3/R1), loaded from a model or tokenizer directory, giving the same ids as the
// Hugging Face `tokenizers` library.
//
// Contract:
//   * from_dir reads DIR/tokenizer.json, or else DIR/vocab.json + DIR/merges.txt (GPT-2's
//     pre-tokenizer; vocabulary entries that no merge can produce become special tokens),
//     and DIR/tokenizer_config.json when present (added_tokens_decoder, bos/eos/pad/unk
//     tokens). Supported: normalizer none / NFC; pre-tokenizer ByteLevel, Split (Isolated)
//     and Sequence of them; model BPE (merges as "a b" strings or [a, b] pairs,
//     ignore_merges); added_tokens with special/normalized/lstrip/rstrip; post-processor
//     none / ByteLevel / TemplateProcessing (single sequence); decoder ByteLevel. Anything
//     else is an aha::Error naming the component: never a silently different tokenization.
//   * encode(text): added tokens are split out first (special tokens in the text are
//     recognised), the rest is normalized, pre-tokenized and BPE-encoded; with
//     add_special_tokens the post-processor's tokens (e.g. Llama 3's BOS) are added, as
//     Hugging Face's default does. text may hold any bytes: invalid UTF-8 never matches a
//     split pattern and is encoded as the byte-level tokens of those bytes.
//   * decode(ids) returns the exact bytes the tokens stand for, so decode(encode(x)) == x for
//     every byte string x (no normalizer, or x already NFC). Hugging Face returns the same
//     text after replacing invalid UTF-8 with U+FFFD: apply utf8::lossy for that. An id that
//     is not in the vocabulary (e.g. cl100k's 100256) is an error.
//   * Copies share one immutable model; every method is safe to call from several threads.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tokenizer/bpe_model.h"  // TokenId

namespace aha {

class ThreadPool;
struct TokenizerSpec;
struct TokenizerPipeline;

class Tokenizer {
 public:
  // A model or tokenizer directory (see the contract above).
  static Tokenizer from_dir(const std::filesystem::path& dir);
  // The text of a tokenizer.json; `source` names it in errors.
  static Tokenizer from_json(std::string_view tokenizer_json, const std::string& source);
  explicit Tokenizer(const TokenizerSpec& spec);

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = true) const;
  // Encodes every text on `pool` (a shared pool with one thread per core when null).
  std::vector<std::vector<TokenId>> encode_batch(const std::vector<std::string>& texts,
                                                 bool add_special_tokens = true,
                                                 ThreadPool* pool = nullptr) const;
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

  // Whether `id` names a token. Models often have more embedding rows than the tokenizer has
  // tokens (Qwen2.5: 151936 rows for 151665 tokens); the ids past it, and gaps, name none.
  bool has_token(TokenId id) const;
  // The bytes one token stands for (what decode concatenates).
  const std::string& token_bytes(TokenId id) const;
  // Token strings as the vocabulary writes them ("Ġthe", "<|im_end|>").
  std::optional<TokenId> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(TokenId id) const;
  bool is_special(TokenId id) const;

  // The number of distinct tokens (vocabulary plus added tokens), as Hugging Face's
  // get_vocab_size(with_added_tokens=True). Ids can have gaps: id_limit() is the largest
  // id + 1, the size an embedding table needs.
  size_t vocab_size() const;
  TokenId id_limit() const;

  // From tokenizer_config.json when it names them.
  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;
  std::optional<TokenId> pad_id() const;
  std::optional<TokenId> unk_id() const;

 private:
  std::shared_ptr<const TokenizerPipeline> pipeline_;
};

}  // namespace aha
