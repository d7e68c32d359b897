#include "policy/tokenizer/bpe_trainer.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <set>
#include <unordered_set>

#include "core/error.h"
#include "core/files.h"
#include "policy/tokenizer/byte_level.h"
#include "policy/tokenizer/tokenizer_nfc.h"
#include "policy/tokenizer/tokenizer_pre_tokenizer.h"

namespace aha {

const char* const kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

using Symbol = int32_t;
using PairKey = uint64_t;

PairKey key_of(Symbol a, Symbol b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
Symbol left_of(PairKey k) { return Symbol(k >> 32); }
Symbol right_of(PairKey k) { return Symbol(k & 0xFFFFFFFFu); }

struct Word {
  std::vector<Symbol> symbols;
  int64_t count = 0;
};

// Pair counts over all words, with the words each pair may occur in (a superset: entries are
// added when a pair appears and never removed, so a merge rechecks each listed word).
struct PairIndex {
  std::unordered_map<PairKey, int64_t> counts;
  std::unordered_map<PairKey, std::vector<uint32_t>> where;

  void add_word(const Word& w, uint32_t index, int64_t sign) {
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      PairKey k = key_of(w.symbols[i], w.symbols[i + 1]);
      int64_t& c = counts[k];
      c += sign * w.count;
      if (c == 0) counts.erase(k);
      if (sign > 0) {
        auto& list = where[k];
        if (list.empty() || list.back() != index) list.push_back(index);
      }
    }
  }
};

// Replaces every non-overlapping (a, b), left to right, by `merged`.
void merge_in(Word& w, Symbol a, Symbol b, Symbol merged) {
  size_t out = 0;
  for (size_t i = 0; i < w.symbols.size(); ++i) {
    if (i + 1 < w.symbols.size() && w.symbols[i] == a && w.symbols[i + 1] == b) {
      w.symbols[out++] = merged;
      ++i;
    } else {
      w.symbols[out++] = w.symbols[i];
    }
  }
  w.symbols.resize(out);
}

bool contains_pair(const Word& w, Symbol a, Symbol b) {
  for (size_t i = 0; i + 1 < w.symbols.size(); ++i)
    if (w.symbols[i] == a && w.symbols[i + 1] == b) return true;
  return false;
}

void write_added_token(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w, const std::string& content,
                       int64_t id, bool with_id) {
  w.StartObject();
  if (with_id) {
    w.Key("id");
    w.Int64(id);
  }
  w.Key("content");
  w.String(content.c_str(), static_cast<rapidjson::SizeType>(content.size()));
  for (const char* key : {"single_word", "lstrip", "rstrip", "normalized"}) {
    w.Key(key);
    w.Bool(false);
  }
  w.Key("special");
  w.Bool(true);
  w.EndObject();
}

void write_byte_level(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w) {
  w.StartObject();
  w.Key("type");
  w.String("ByteLevel");
  for (const char* key : {"add_prefix_space", "trim_offsets", "use_regex"}) {
    w.Key(key);
    w.Bool(false);
  }
  w.EndObject();
}

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  require(o.min_frequency >= 1, "tokenizer: min_frequency must be >= 1, got " + std::to_string(o.min_frequency));
  require(o.vocab_size > 256 + int64_t(o.special_tokens.size()),
          "tokenizer: vocab_size must exceed the 256 byte tokens plus " + std::to_string(o.special_tokens.size()) +
              " special token(s), got " + std::to_string(o.vocab_size));
  require(o.model_max_length >= 1, "tokenizer: model_max_length must be >= 1");
  std::set<std::string> seen;
  for (const auto& s : o.special_tokens) {
    require(!s.empty(), "tokenizer: special_tokens holds an empty string");
    require(seen.insert(s).second, "tokenizer: special token '" + s + "' is listed twice");
  }
  PreTokenizerStep split;
  split.kind = PreTokenizerStep::Kind::kSplit;
  split.pattern = kQwen2SplitPattern;
  pre_tokenizer_ = std::make_unique<PreTokenizer>(std::vector<PreTokenizerStep>{split}, "BPE trainer");
}

BpeTrainer::~BpeTrainer() = default;

void BpeTrainer::add_text(std::string_view raw) {
  const std::string text = nfc(raw);
  auto count_words = [&](std::string_view piece) {
    pre_tokenizer_->run(piece, [&](std::string_view word) {
      ++word_counts_[std::string(word)];
      ++total_words_;
    });
  };
  // Cut out special tokens (leftmost, then longest), as the tokenizer's added-token pass does.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string::npos, best_len = 0;
    for (const auto& s : options_.special_tokens) {
      size_t at = text.find(s, pos);
      if (at != std::string::npos && (at < best || (at == best && s.size() > best_len))) {
        best = at;
        best_len = s.size();
      }
    }
    if (best == std::string::npos) break;
    count_words(std::string_view(text).substr(pos, best - pos));
    pos = best + best_len;
  }
  count_words(std::string_view(text).substr(pos));
}

TrainedBpe BpeTrainer::train() const {
  TrainedBpe out;
  out.special_tokens = options_.special_tokens;
  out.model_max_length = options_.model_max_length;
  std::vector<std::string> bytes_of;  // raw bytes of each symbol
  std::unordered_map<std::string, Symbol> id_of;
  for (int b = 0; b < 256; ++b) {
    bytes_of.emplace_back(1, static_cast<char>(b));
    id_of[bytes_of.back()] = b;
  }
  // Words in sorted order, so that indices (and so everything after) never depend on hashing.
  std::vector<std::pair<std::string, int64_t>> sorted(word_counts_.begin(), word_counts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, count] : sorted) {
    Word w;
    w.count = count;
    for (unsigned char c : text) w.symbols.push_back(c);
    words.push_back(std::move(w));
  }
  PairIndex index;
  for (uint32_t i = 0; i < words.size(); ++i) index.add_word(words[i], i, +1);

  const int64_t learned_limit = options_.vocab_size - int64_t(options_.special_tokens.size());
  while (int64_t(bytes_of.size()) < learned_limit && !index.counts.empty()) {
    PairKey best = 0;
    int64_t best_count = 0;
    for (const auto& [k, c] : index.counts) {
      if (c < best_count) continue;
      if (c == best_count) {
        const auto& bl = bytes_of[left_of(best)];
        const auto& kl = bytes_of[left_of(k)];
        if (kl > bl || (kl == bl && bytes_of[right_of(k)] >= bytes_of[right_of(best)])) continue;
      }
      best = k;
      best_count = c;
    }
    if (best_count < options_.min_frequency) break;
    const Symbol a = left_of(best), b = right_of(best);
    std::string merged_bytes = bytes_of[a] + bytes_of[b];
    auto [it, inserted] = id_of.emplace(merged_bytes, Symbol(bytes_of.size()));
    if (inserted) bytes_of.push_back(merged_bytes);
    const Symbol merged = it->second;
    out.merges.emplace_back(byte_level::from_bytes(bytes_of[a]), byte_level::from_bytes(bytes_of[b]));
    const std::vector<uint32_t> candidates = index.where[best];  // copy: add_word appends to where
    for (uint32_t i : candidates) {
      Word& w = words[i];
      if (!contains_pair(w, a, b)) continue;
      index.add_word(w, i, -1);
      merge_in(w, a, b, merged);
      index.add_word(w, i, +1);
    }
    index.where.erase(best);
  }
  for (const auto& bytes : bytes_of) out.vocab.push_back(byte_level::from_bytes(bytes));
  return out;
}

std::string TrainedBpe::tokenizer_json() const {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.SetFormatOptions(rapidjson::kFormatSingleLineArray);
  auto str = [&](const std::string& s) { w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  w.Key("version");
  w.String("1.0");
  w.Key("truncation");
  w.Null();
  w.Key("padding");
  w.Null();
  w.Key("added_tokens");
  w.StartArray();
  for (size_t i = 0; i < special_tokens.size(); ++i)
    write_added_token(w, special_tokens[i], int64_t(vocab.size() + i), /*with_id=*/true);
  w.EndArray();
  w.Key("normalizer");
  w.StartObject();
  w.Key("type");
  w.String("NFC");
  w.EndObject();
  w.Key("pre_tokenizer");
  w.StartObject();
  w.Key("type");
  w.String("Sequence");
  w.Key("pretokenizers");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.String("Split");
  w.Key("pattern");
  w.StartObject();
  w.Key("Regex");
  w.String(kQwen2SplitPattern);
  w.EndObject();
  w.Key("behavior");
  w.String("Isolated");
  w.Key("invert");
  w.Bool(false);
  w.EndObject();
  write_byte_level(w);
  w.EndArray();
  w.EndObject();
  w.Key("post_processor");
  write_byte_level(w);
  w.Key("decoder");
  write_byte_level(w);
  w.Key("model");
  w.StartObject();
  w.Key("type");
  w.String("BPE");
  for (const char* key : {"dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"}) {
    w.Key(key);
    w.Null();
  }
  for (const char* key : {"fuse_unk", "byte_fallback", "ignore_merges"}) {
    w.Key(key);
    w.Bool(false);
  }
  w.Key("vocab");
  w.StartObject();
  for (size_t id = 0; id < vocab.size(); ++id) {
    str(vocab[id]);
    w.Int64(int64_t(id));
  }
  w.EndObject();
  w.Key("merges");
  w.StartArray();
  for (const auto& [left, right] : merges) {
    w.StartArray();
    str(left);
    str(right);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string TrainedBpe::tokenizer_config_json() const {
  require(!special_tokens.empty(), "tokenizer_config.json needs a special token for BOS/EOS/pad");
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("add_bos_token");
  w.Bool(false);
  w.Key("add_eos_token");
  w.Bool(false);
  w.Key("add_prefix_space");
  w.Bool(false);
  w.Key("added_tokens_decoder");
  w.StartObject();
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    w.Key(std::to_string(vocab.size() + i).c_str());
    write_added_token(w, special_tokens[i], 0, /*with_id=*/false);
  }
  w.EndObject();
  const std::string& first = special_tokens.front();
  for (const char* key : {"bos_token", "eos_token", "pad_token"}) {
    w.Key(key);
    w.String(first.c_str(), static_cast<rapidjson::SizeType>(first.size()));
  }
  w.Key("unk_token");
  w.Null();
  w.Key("clean_up_tokenization_spaces");
  w.Bool(false);
  w.Key("model_max_length");
  w.Int64(model_max_length);
  w.Key("tokenizer_class");
  w.String("Qwen2Tokenizer");
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

void TrainedBpe::write(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  write_file_atomic(dir / "tokenizer.json", tokenizer_json());
  write_file_atomic(dir / "tokenizer_config.json", tokenizer_config_json());
}

}  // namespace aha
