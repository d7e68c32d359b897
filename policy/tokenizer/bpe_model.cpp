#include "policy/tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "policy/tokenizer/byte_level.h"

namespace aha {

// Open addressing from a pair of ids to (rank, merged id): the hot lookup of the merge loop.
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    TokenId merged = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<Slot> slots;
  size_t mask = 0;

  explicit MergeTable(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    slots.resize(capacity);
    mask = capacity - 1;
  }
  static uint64_t key(TokenId a, TokenId b) {
    return (uint64_t{static_cast<uint32_t>(a)} << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 20); }
  // A pair listed twice keeps its last rank, as in the Hugging Face map (later entries win).
  void insert(TokenId a, TokenId b, uint32_t rank, TokenId merged) {
    uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == k) {
        slots[i] = {k, rank, merged};
        return;
      }
    }
  }
  const Slot* find(TokenId a, TokenId b) const {
    uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BpeModel::RawVocab {
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> ids;
};

// Sharded so that threads encoding a batch rarely wait on each other. Each shard stops
// accepting words when full: frequent words arrive early, and memory stays bounded.
struct BpeModel::WordCache {
  static constexpr size_t kShards = 64;
  static constexpr size_t kWordsPerShard = 4096;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> words;
  };
  std::array<Shard, kShards> shards;

  Shard& shard_of(std::string_view word) { return shards[StringHash{}(word) % kShards]; }
};

BpeModel::BpeModel(const std::vector<std::pair<std::string, TokenId>>& vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   bool ignore_merges, const std::string& where)
    : merges_(std::make_unique<MergeTable>(merges.size())),
      raw_vocab_(std::make_unique<RawVocab>()),
      cache_(std::make_unique<WordCache>()),
      ignore_merges_(ignore_merges) {
  std::unordered_map<std::string_view, TokenId> by_text;
  by_text.reserve(vocab.size());
  TokenId max_id = -1;
  for (const auto& [text, id] : vocab) {
    if (id < 0) throw Error(where + ": vocab: token '" + text + "' has a negative id");
    if (!by_text.emplace(text, id).second)
      throw Error(where + ": vocab: token '" + text + "' appears twice");
    max_id = std::max(max_id, id);
    if (auto raw = byte_level::to_bytes(text)) raw_vocab_->ids.emplace(std::move(*raw), id);
  }
  reachable_.assign(static_cast<size_t>(max_id + 1), false);
  for (int b = 0; b < 256; ++b) {
    const std::string& text = byte_level::char_for_byte(static_cast<uint8_t>(b));
    auto it = by_text.find(text);
    if (it == by_text.end()) {
      char hex[8];
      snprintf(hex, sizeof(hex), "0x%02X", b);
      throw Error(where + ": vocab has no token for byte " + hex + " ('" + text +
                  "'); aha supports byte-level BPE vocabularies only");
    }
    byte_ids_[b] = it->second;
    reachable_[static_cast<size_t>(it->second)] = true;
  }
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto l = by_text.find(left), r = by_text.find(right);
    std::string at = where + ": merges[" + std::to_string(rank) + "] ('" + left + " " + right + "')";
    if (l == by_text.end() || r == by_text.end())
      throw Error(at + ": '" + (l == by_text.end() ? left : right) + "' is not in the vocab");
    joined = left + right;
    auto m = by_text.find(joined);
    if (m == by_text.end()) throw Error(at + ": the merged token '" + joined + "' is not in the vocab");
    if (!byte_level::to_bytes(left) || !byte_level::to_bytes(right)) continue;  // never fires
    merges_->insert(l->second, r->second, static_cast<uint32_t>(rank), m->second);
    reachable_[static_cast<size_t>(m->second)] = true;
  }
}

BpeModel::~BpeModel() = default;

bool BpeModel::reachable(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < reachable_.size() && reachable_[static_cast<size_t>(id)];
}

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = raw_vocab_->ids.find(word);
    if (it != raw_vocab_->ids.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  WordCache::Shard& shard = cache_->shard_of(word);
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.words.find(word);
    if (it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t first = out.size();
  merge_word(word, out);
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.words.size() < WordCache::kWordsPerShard)
    shard.words.emplace(std::string(word), std::vector<TokenId>(out.begin() + static_cast<long>(first), out.end()));
}

namespace {

struct Symbol {
  TokenId id;
  int32_t prev, next;  // -1 at the ends
  bool alive;
};

struct Candidate {
  uint32_t rank;
  int32_t pos;  // the left symbol
  TokenId merged;
  // Heap order: the lowest rank first, then the leftmost position.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

void BpeModel::merge_word(std::string_view word, std::vector<TokenId>& out) const {
  // Reused buffers: no allocation in the merge loop once they have grown.
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();
  auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i)
    symbols.push_back({byte_ids_[static_cast<unsigned char>(word[static_cast<size_t>(i)])], i - 1,
                       i + 1 < n ? i + 1 : -1, true});
  auto push_pair = [&](int32_t left) {
    int32_t right = symbols[static_cast<size_t>(left)].next;
    if (right < 0) return;
    if (const auto* m = merges_->find(symbols[static_cast<size_t>(left)].id, symbols[static_cast<size_t>(right)].id)) {
      heap.push_back({m->rank, left, m->merged});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    // Skip stale candidates: the pair at this position changed since it was pushed.
    const auto* m = merges_->find(left.id, right.id);
    if (!m || m->merged != top.merged) continue;
    left.id = top.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) out.push_back(symbols[static_cast<size_t>(i)].id);
}

}  // namespace aha
