// The byte-level BPE model of tokenizer.json ("model": {"type": "BPE"}): turns one
// pre-tokenized word (raw bytes) into token ids by applying merges in rank order.
//
// Contract: encode_word gives the ids Hugging Face tokenizers gives for the byte-level form
// of the word: start from one symbol per byte, repeatedly merge the adjacent pair with the
// lowest merge rank (the leftmost one on ties) until no pair has a rank. With ignore_merges,
// a word that is itself in the vocabulary is that one token (Llama 3, cl100k). Construction
// requires the 256 byte tokens in the vocabulary and every merge result in it; merges whose
// parts are not byte-level strings can never fire and are ignored. Results for words up to
// kMaxCachedWordBytes are cached; the model is safe to use from several threads at once.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aha {

using TokenId = int32_t;

class BpeModel {
 public:
  static constexpr size_t kMaxCachedWordBytes = 256;

  // vocab: (token in byte-level form, id); merges: pairs in rank order (rank = index).
  // `where` names the source in errors ("tokenizer.json: model").
  BpeModel(const std::vector<std::pair<std::string, TokenId>>& vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
           const std::string& where);
  ~BpeModel();

  // Appends the ids of one word (raw bytes, non-empty) to out.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  // Whether the BPE can ever produce token `id` (a byte token or a merge result).
  bool reachable(TokenId id) const;

 private:
  struct MergeTable;
  struct WordCache;
  struct RawVocab;
  void merge_word(std::string_view word, std::vector<TokenId>& out) const;

  std::array<TokenId, 256> byte_ids_{};
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<RawVocab> raw_vocab_;  // byte-level tokens by their raw bytes
  std::unique_ptr<WordCache> cache_;
  std::vector<bool> reachable_;
  bool ignore_merges_;
};

}  // namespace aha
