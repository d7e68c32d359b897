// BpeTrainer: learns a byte-level BPE tokenizer from text and writes it in Hugging Face's
// format (tokenizer.json + tokenizer_config.json), Qwen2 style: NFC, Qwen2's split pattern
// (letters with one leading non-letter, every digit on its own, punctuation runs, white
// space), ByteLevel, then BPE; special tokens after the learned vocabulary.
//
// Contract:
//   * add_text() normalises (NFC), cuts out the special tokens, pre-tokenizes exactly as the
//     written tokenizer.json will, and counts the words. train() then starts from the 256
//     byte tokens (id = byte value) and repeatedly merges the adjacent pair with the highest
//     count over all words (every adjacent position counts, weighted by the word's count),
//     ties going to the pair whose (left, right) raw bytes compare smallest. It stops when
//     bytes + merge results + special tokens reach vocab_size, or when the best pair occurs
//     fewer than min_frequency times. Deterministic: no hash order or threads decide anything.
//   * Special tokens take the ids after the learned vocabulary, in the order given; the first
//     is the BOS, EOS and pad token of tokenizer_config.json.
//   * The files load in policy/Tokenizer and in Hugging Face tokenizers / transformers with
//     the same ids (tests/fixtures/make_bpe_trainer_fixtures.py checks the latter).
//   * Bad options (vocab_size <= 256 + specials, min_frequency < 1, empty or duplicate
//     special tokens) throw aha::Error naming the option.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace aha {

class PreTokenizer;

// Qwen2's pre-tokenizer split pattern (Oniguruma syntax, as tokenizer.json writes it).
extern const char* const kQwen2SplitPattern;

struct BpeTrainerOptions {
  int64_t vocab_size = 1024;  // bytes + merge results + special tokens
  int64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  int64_t model_max_length = 2048;  // written to tokenizer_config.json
};

// A trained tokenizer: the learned vocabulary (ids 0..vocab.size()-1) and merges in rank
// order, both in byte-level form ("Ġthe"), and the special tokens that follow.
struct TrainedBpe {
  std::vector<std::string> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::string> special_tokens;
  int64_t model_max_length = 2048;

  int64_t size() const { return static_cast<int64_t>(vocab.size() + special_tokens.size()); }
  std::string tokenizer_json() const;
  std::string tokenizer_config_json() const;
  // Writes DIR/tokenizer.json and DIR/tokenizer_config.json (each atomically).
  void write(const std::filesystem::path& dir) const;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();

  void add_text(std::string_view text);
  TrainedBpe train() const;

  // Distinct pre-tokenized words seen so far, and their total count.
  size_t distinct_words() const { return word_counts_.size(); }
  int64_t total_words() const { return total_words_; }

 private:
  BpeTrainerOptions options_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unordered_map<std::string, int64_t> word_counts_;  // raw bytes -> count
  int64_t total_words_ = 0;
};

}  // namespace aha
